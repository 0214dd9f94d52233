"""Model files: round trips, PyTorch's names, what a file holds, and semantic faults."""

import json
import os
import stat
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy

import deltaprop as dp
from deltaprop.files import format as fileformat
from support import network


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_is_bit_exact(dtype, tmp_path, rng):
    net = network(rng, dtype)
    path = tmp_path / "m.safetensors"
    dp.save(net, path, loss=dp.SoftmaxCrossEntropy())
    net2, loss2 = dp.load(path)
    assert isinstance(loss2, dp.SoftmaxCrossEntropy)
    assert repr(net2) == repr(net)
    for p, q in zip(net.parameters(), net2.parameters(), strict=True):
        assert p.name == q.name and q.value.dtype == dtype
        np.testing.assert_array_equal(p.value, q.value)
    X = rng.standard_normal((20, 4))
    np.testing.assert_array_equal(net.forward(X), net2.forward(X))
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left behind


def test_tensor_names_follow_pytorch_state_dicts(saved):
    _, path = saved
    tensors = safetensors.numpy.load_file(str(path))
    assert sorted(tensors) == ["0.bias", "0.weight", "2.bias", "2.weight", "4.bias", "4.weight"]
    assert tensors["0.weight"].shape == (8, 4)  # (out, in), as nn.Linear


@pytest.mark.slow
def test_weights_load_into_pytorch(saved):
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file

    net, path = saved
    model = torch.nn.Sequential(
        torch.nn.Linear(4, 8),
        torch.nn.ReLU(),
        torch.nn.Linear(8, 6),
        torch.nn.LeakyReLU(0.2),
        torch.nn.Linear(6, 3),
    )
    model.load_state_dict(load_file(str(path)))
    X = np.random.default_rng(1).standard_normal((5, 4)).astype(np.float32)
    np.testing.assert_allclose(
        model(torch.tensor(X)).detach().numpy(), net.forward(X), rtol=1e-5, atol=1e-6
    )


def test_inspect_reports_without_building(saved):
    _, path = saved
    info = dp.inspect_file(path)
    assert info.kind == "model" and info.format_version == 1 and info.loss == "SoftmaxCrossEntropy"
    assert info.n_parameters == 4 * 8 + 8 + 8 * 6 + 6 + 6 * 3 + 3
    assert info.tensors["0.weight"] == ((8, 4), "float32")
    text = str(info)
    assert "(0) Dense(4, 8, bias=True, dtype='float32')" in text
    assert "LeakyReLU(negative_slope=0.2)" in text


# --- fault injection: each gets one plain ModelFileError message ------------------------------


def _rewrite(path, target, edit):
    """Re-save ``path``'s tensors with its metadata document edited (checksums kept valid)."""
    tensors = safetensors.numpy.load_file(str(path))
    with open(path, "rb") as f:
        header = json.loads(f.read(8 + int.from_bytes(open(path, "rb").read(8), "little"))[8:])
    info = json.loads(header["__metadata__"]["deltaprop"])
    for key in ("tensor_sha256", "payload_sha256"):
        info.pop(key)
    tensors, info = edit(tensors, info)
    fileformat.write_file(target, tensors, info)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda t, i: (
                t,
                {
                    **i,
                    "architecture": {
                        "type": "Sequential",
                        "layers": [{"type": "os.system", "in_features": 4}],
                    },
                },
            ),
            r"unknown layer 'os.system'",
        ),
        (lambda t, i: (t, {**i, "loss": {"type": "Evil"}}), r"unknown loss"),
        (
            lambda t, i: ({**t, "0.weight": t["0.weight"][:5]}, i),
            r"tensor '0.weight' has shape \(5, 4\), but the architecture needs \(8, 4\)",
        ),
        (
            lambda t, i: ({**t, "2.bias": t["2.bias"].astype(np.float64)}, i),
            r"tensor '2.bias' has dtype float64, but the architecture needs float32",
        ),
        (
            lambda t, i: ({k: v for k, v in t.items() if k != "4.bias"}, i),
            r"tensor '4.bias' is missing",
        ),
        (
            lambda t, i: ({**t, "9.weight": np.zeros(2, np.float32)}, i),
            r"tensors \['9.weight'\] do not belong to the architecture",
        ),
        (
            lambda t, i: ({**t, "0.bias": np.full(8, np.nan, np.float32)}, i),
            r"tensor '0.bias' holds 8 non-finite values",
        ),
    ],
)
def test_semantic_faults(saved, tmp_path, edit, message):
    _, path = saved
    bad = tmp_path / "bad.safetensors"
    _rewrite(path, bad, edit)
    with pytest.raises(dp.ModelFileError, match=message):
        dp.load(bad)


DATA = Path(__file__).parents[1] / "data"


def test_a_model_file_written_by_the_first_release_still_loads():
    """tests/data/model-format1.safetensors was written by deltaprop 0.1.0 before the
    architecture-for-growth changes; its predictions were recorded then."""
    expected = np.load(DATA / "format1-expected.npz")
    net, loss = dp.load(DATA / "model-format1.safetensors")
    assert isinstance(loss, dp.SoftmaxCrossEntropy)
    assert [type(layer).__name__ for layer in net] == [
        "Dense",
        "ReLU",
        "Dense",
        "LeakyReLU",
        "Dense",
    ]
    assert net[3].negative_slope == 0.2
    np.testing.assert_array_equal(dp.predict(net, loss, expected["X"]), expected["probabilities"])


# --- saving: nothing written that would not load again, nothing good lost -----------------


def test_nan_weights_are_refused_and_the_good_file_is_kept(saved):
    net, path = saved
    before = path.read_bytes()
    net[2].W.value[0, :3] = np.nan
    with pytest.raises(ValueError, match=r"tensor '2.weight' holds 3 NaN or inf values"):
        dp.save(net, path)
    assert path.read_bytes() == before


def test_an_unregistered_loss_is_refused_and_the_good_file_is_kept(saved):
    class Custom(dp.MeanSquaredError):
        pass

    net, path = saved
    before = path.read_bytes()
    with pytest.raises(dp.UnknownNameError, match="loss Custom is not registered"):
        dp.save(net, path, loss=Custom())
    assert path.read_bytes() == before


def test_a_file_that_would_not_load_again_is_never_written(saved):
    class Forgetful(dp.Identity):
        """Its config names an argument its constructor does not take."""

        def config(self):
            return {"scale": 2.0}

    dp.registry.LAYERS.register(Forgetful)
    net, path = saved
    before = path.read_bytes()
    model = dp.Sequential(dp.Dense(4, 3, rng=np.random.default_rng(0)), Forgetful())
    with pytest.raises(dp.ModelFileError, match="refusing to write .*would not load again"):
        dp.save(model, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_saving_through_a_symbolic_link_writes_the_file_it_points_to(tmp_path, rng):
    target = tmp_path / "models" / "real.safetensors"
    target.parent.mkdir()
    link = tmp_path / "current.safetensors"
    link.symlink_to(target)
    dp.save(network(rng), link)
    assert link.is_symlink() and target.is_file()
    assert dp.load(link)[0].state_dict().keys() == dp.load(target)[0].state_dict().keys()


def test_file_modes_follow_the_umask_and_an_existing_file_keeps_its_own(tmp_path, rng):
    old = os.umask(0o027)
    try:
        fresh = tmp_path / "new.safetensors"
        dp.save(network(rng), fresh)
        assert stat.S_IMODE(fresh.stat().st_mode) == 0o640
        fresh.chmod(0o604)
        dp.save(network(rng), fresh)
        assert stat.S_IMODE(fresh.stat().st_mode) == 0o604
    finally:
        os.umask(old)


@pytest.mark.parametrize(
    ("name", "error", "message"),
    [
        ("notadir/", IsADirectoryError, r"ends with a separator; name a file, such as"),
        ("missing/m.safetensors", FileNotFoundError, r"the directory '.*missing' does not exist"),
        (".", IsADirectoryError, "it is a directory"),
    ],
)
def test_bad_places_to_save_are_named(tmp_path, rng, name, error, message, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(error, match=message):
        dp.save(network(rng), name)
    assert list(tmp_path.iterdir()) == []


# --- loading: the architecture is checked against the tensors before anything is built ------


def test_a_small_file_claiming_a_huge_layer_is_refused_before_building(saved, tmp_path):
    _, path = saved
    bad = tmp_path / "huge.safetensors"

    def claim(tensors, info):
        info["architecture"]["layers"][0].update(in_features=20000, out_features=20000)
        return tensors, info

    _rewrite(path, bad, claim)
    tracemalloc.start()
    with pytest.raises(
        dp.ModelFileError, match=r"'0.weight' has shape \(8, 4\), but the architecture needs"
    ):
        dp.load(bad)
    with pytest.raises(dp.ModelFileError, match="architecture needs"):
        dp.inspect_file(bad)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1 << 20  # not the 1.6 GB of a 20000 × 20000 weight


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda i: {**i, "architecture": [1, 2]}, "expected a layer description"),
        (lambda i: {**i, "architecture": "Sequential"}, "expected a layer description"),
        (lambda i: {**i, "loss": ["SoftmaxCrossEntropy"]}, "expected a loss description"),
        (
            lambda i: {**i, "architecture": {"type": "Sequential", "layers": 5}},
            "malformed|invalid arguments",
        ),
        (lambda i: {**i, "kind": "checkpoint", "checkpoint": []}, None),
    ],
)
def test_malformed_descriptions_give_one_model_file_error(saved, tmp_path, edit, message):
    _, path = saved
    bad = tmp_path / "bad.safetensors"
    _rewrite(path, bad, lambda t, i: (t, edit(i)))
    for read in (dp.load, dp.inspect_file):
        if message is None:  # a model file with a broken checkpoint record still loads
            continue
        with pytest.raises(dp.ModelFileError, match=message):
            read(bad)


@pytest.mark.parametrize("depth", [600, 3000])  # deeper than the builder, than JSON's parser
def test_architectures_nested_too_deeply_give_one_model_file_error(saved, tmp_path, depth):
    _, path = saved
    tensors = safetensors.numpy.load_file(str(path))
    document = (
        '{"kind": "model", "architecture": '
        + '{"type": "Sequential", "layers": [' * depth
        + '{"type": "Identity"}'
        + "]}" * depth
        + "}"
    )
    metadata = {
        "format": "deltaprop",
        "format_version": "1",
        "deltaprop": document,
        "deltaprop_sha256": fileformat.sha256(document.encode()),
    }
    bad = tmp_path / "deep.safetensors"
    bad.write_bytes(safetensors.numpy.save(tensors, metadata=metadata))
    for read in (dp.load, dp.inspect_file):
        with pytest.raises(dp.ModelFileError, match="nested too deeply"):
            read(bad)


def test_a_negative_running_variance_is_refused_at_load(tmp_path):
    """Each buffer's domain is checked: a variance below 0 would predict NaN for every row."""
    from deltaprop.files import model_files

    rng = np.random.default_rng(0)
    net = dp.Sequential(
        dp.Dense(3, 4, rng=rng), dp.BatchNorm(4), dp.ReLU(), dp.Dense(4, 2, rng=rng)
    )
    tensors = {k: np.array(v) for k, v in net.state_dict().items()}
    tensors["1.running_var"][2] = -0.5
    data = fileformat.encode(tensors, model_files.base_info(net, None, "model"))
    path = tmp_path / "bad.safetensors"
    path.write_bytes(data)
    with pytest.raises(dp.ModelFileError, match=r"tensor 1.running_var holds 1 negative values"):
        dp.load(path)
    net[1].running_var[2] = -0.5  # and such a model is never written: it would not load again
    with pytest.raises(dp.ModelFileError, match="1.running_var holds 1 negative"):
        dp.save(net, tmp_path / "never.safetensors")
    assert not (tmp_path / "never.safetensors").exists()


def test_an_architecture_over_the_layer_cap_is_refused_before_building(tmp_path, monkeypatch):
    from deltaprop.files import model_files

    rng = np.random.default_rng(0)
    net = dp.Sequential(dp.Dense(2, 2, rng=rng), dp.Sequential(dp.ReLU(), dp.Dense(2, 2, rng=rng)))
    path = tmp_path / "m.safetensors"
    dp.save(net, path)
    monkeypatch.setattr(model_files, "MAX_LAYERS", 3)  # four: Dense, Sequential, ReLU, Dense
    with pytest.raises(dp.ModelFileError, match="its architecture has 4 layers, over the cap of 3"):
        dp.load(path)
    monkeypatch.setattr(model_files, "MAX_LAYERS", 4)
    dp.load(path)


def test_a_long_chain_of_layers_loads_with_each_layer_in_place(tmp_path):
    """Many layers (building them was quadratic in their count): every tensor lands."""
    rng = np.random.default_rng(0)
    layers = [layer for _ in range(3000) for layer in (dp.Dense(2, 2, rng=rng), dp.ReLU())]
    net = dp.Sequential(*layers)
    path = tmp_path / "long.safetensors"
    dp.save(net, path)
    back, _ = dp.load(path)
    assert len(back) == 6000
    np.testing.assert_array_equal(back.flat_values, net.flat_values)
