import json
import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import safetensors.numpy

import deltaprop as dp
from deltaprop import fileformat


def network(rng, dtype=np.float32):
    return dp.Sequential(
        dp.Dense(4, 8, rng=rng, dtype=dtype),
        dp.ReLU(),
        dp.Dense(8, 6, rng=rng, dtype=dtype),
        dp.LeakyReLU(0.2),
        dp.Dense(6, 3, rng=rng, dtype=dtype),
    )


@pytest.fixture
def saved(tmp_path, rng):
    net = network(rng)
    path = tmp_path / "model.safetensors"
    dp.save(net, path, loss=dp.SoftmaxCrossEntropy())
    return net, path


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


def test_truncated_files(saved, tmp_path):
    _, path = saved
    data = path.read_bytes()
    header = int.from_bytes(data[:8], "little")
    for cut, message in [
        (4, "truncated or not a deltaprop file: only 4 bytes"),
        (8 + header // 2, "is truncated: the header needs"),
        (8 + header + 10, "is truncated: tensor"),
        (len(data) - 1, "is truncated: tensor"),
    ]:
        bad = tmp_path / f"cut{cut}.safetensors"
        bad.write_bytes(data[:cut])
        with pytest.raises(dp.ModelFileError, match=message):
            dp.load(bad)


def test_flipped_byte_in_payload_names_the_tensor(saved, tmp_path):
    _, path = saved
    data = bytearray(path.read_bytes())
    header = int.from_bytes(data[:8], "little")
    entry = json.loads(data[8 : 8 + header])["2.weight"]
    data[8 + header + entry["data_offsets"][0] + 5] ^= 0x40
    bad = tmp_path / "flip.safetensors"
    bad.write_bytes(bytes(data))
    with pytest.raises(dp.ModelFileError, match=r"checksum mismatch in tensor '2.weight'"):
        dp.load(bad)


def test_any_flipped_byte_in_the_header_is_detected(saved, tmp_path):
    _, path = saved
    data = path.read_bytes()
    header = int.from_bytes(data[:8], "little")
    rng = np.random.default_rng(0)
    for position in rng.choice(np.arange(8, 8 + header), size=40, replace=False):
        flipped = bytearray(data)
        flipped[position] ^= 0x01
        bad = tmp_path / "h.safetensors"
        bad.write_bytes(bytes(flipped))
        with pytest.raises(dp.ModelFileError):
            dp.load(bad)


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


def test_newer_format_version_is_refused(saved, tmp_path, monkeypatch):
    _, path = saved
    monkeypatch.setattr(fileformat, "FORMAT_VERSION", fileformat.FORMAT_VERSION + 1)
    newer = tmp_path / "newer.safetensors"
    dp.save(dp.load(path)[0], newer)
    monkeypatch.undo()
    with pytest.raises(
        dp.ModelFileError,
        match=r"format version 2, newer than this library reads "
        r"\(up to 1\); upgrade",
    ):
        dp.load(newer)


def test_pickle_is_never_executed(tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    bad = tmp_path / "model.safetensors"
    bad.write_bytes(pickle.dumps(Exploit()))
    with pytest.raises(dp.ModelFileError, match="is a Python pickle.*never unpickles"):
        dp.load(bad)
    with pytest.raises(dp.ModelFileError):
        dp.inspect_file(bad)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", r"is empty \(0 bytes\)"),
        (b"PK\x03\x04" + bytes(100), "is a zip archive"),
        (np.random.default_rng(0).bytes(4096), "not a deltaprop file"),
        (b"\x10\x00\x00\x00\x00\x00\x00\x00" + b'{"a": 1}        ', "not written by deltaprop"),
    ],
)
def test_not_deltaprop_files(tmp_path, content, message):
    bad = tmp_path / "x.safetensors"
    bad.write_bytes(content)
    with pytest.raises(dp.ModelFileError, match=message):
        dp.load(bad)


def test_plain_safetensors_file_is_not_a_deltaprop_file(tmp_path):
    path = tmp_path / "plain.safetensors"
    safetensors.numpy.save_file({"w": np.zeros(3, np.float32)}, str(path))
    with pytest.raises(
        dp.ModelFileError, match="safetensors file but was not written by deltaprop"
    ):
        dp.load(path)


def test_directory_and_oversized_header(tmp_path):
    with pytest.raises(dp.ModelFileError, match="is a directory"):
        dp.load(tmp_path)
    big = tmp_path / "big.safetensors"
    size = fileformat.HEADER_CAP + 1
    big.write_bytes(size.to_bytes(8, "little") + b"{" + b" " * (size - 1))
    with pytest.raises(dp.ModelFileError, match="over the cap"):
        dp.load(big)
    with pytest.raises(FileNotFoundError, match="no such model file"):
        dp.load(tmp_path / "missing.safetensors")


def test_crash_mid_write_leaves_the_old_file_intact(saved, tmp_path, monkeypatch, rng):
    net, path = saved
    before = path.read_bytes()
    calls = []

    def failing_write(file, chunk):
        calls.append(len(chunk))
        file.write(chunk[: len(chunk) // 2])
        raise OSError("disk full")

    monkeypatch.setattr(fileformat, "_write_chunk", failing_write)
    with pytest.raises(OSError, match="disk full"):
        dp.save(network(rng), path)
    assert calls and path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]
    dp.load(path)


# --- checkpoints and exact resume -------------------------------------------------------------

RESUME_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import deltaprop as dp

    def setup(kind):
        rng = np.random.default_rng(3)
        X = rng.standard_normal((240, 6)).astype(np.float32)
        y = np.argmax(X[:, :3] + 0.3 * rng.standard_normal((240, 3)), axis=1)
        net = dp.Sequential(dp.Dense(6, 16, rng=rng), dp.ReLU(), dp.Dense(16, 3, rng=rng))
        if kind == "sgd":
            opt = dp.SGD(net.parameters(), lr=0.05, momentum=0.9, nesterov=True)
            callbacks = []
        else:
            opt = dp.Adam(net.parameters(), lr=dp.CosineDecay(0.01, total_steps=120,
                                                              warmup_steps=10))
            callbacks = [dp.EarlyStopping(patience=50, restore_best_weights=True),
                         dp.ReduceLROnPlateau(patience=1, factor=0.5)]
        return net, opt, callbacks, X, y

    kind, epochs, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    resume = sys.argv[4] if len(sys.argv) > 4 else None
    net, opt, callbacks, X, y = setup(kind)
    ckpt = out + ".ckpt.safetensors"
    history = dp.fit(net, dp.SoftmaxCrossEntropy(), opt, X, y, epochs=epochs, batch_size=32,
                     rng=np.random.default_rng(11), validation_split=0.2, verbose=0,
                     callbacks=[*callbacks, dp.ModelCheckpoint(ckpt)], resume_from=resume)
    np.save(out, net.flat_values)
    print(len(history["loss"]), history["val_loss"][-1])
""")


@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_resume_in_another_process_equals_uninterrupted_run(kind, tmp_path):
    script = tmp_path / "run.py"
    script.write_text(RESUME_SCRIPT)

    def run(*args):
        result = subprocess.run(
            [sys.executable, str(script), kind, *map(str, args)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.split()

    full = run(8, tmp_path / "full.npy")
    run(3, tmp_path / "part.npy")  # stops after epoch 3, its checkpoint says so
    resumed = run(8, tmp_path / "resumed.npy", tmp_path / "part.npy.ckpt.safetensors")
    assert full == resumed  # same number of epochs and same last validation loss
    np.testing.assert_array_equal(np.load(tmp_path / "full.npy"), np.load(tmp_path / "resumed.npy"))
    info = dp.inspect_file(tmp_path / "part.npy.ckpt.safetensors")
    assert info.kind == "checkpoint" and info.epoch == 3


def _widths(rng, hidden):
    return dp.Sequential(dp.Dense(4, hidden, rng=rng), dp.ReLU(), dp.Dense(hidden, 3, rng=rng))


@pytest.mark.parametrize(
    ("hidden", "make_optimizer", "loss", "message"),
    [
        (
            9,
            dp.Adam,
            dp.SoftmaxCrossEntropy(),
            r"different architecture: layer 0: file has Dense\(4, 8, bias=True.*model has "
            r"Dense\(4, 9",
        ),
        (
            8,
            dp.SGD,
            dp.SoftmaxCrossEntropy(),
            r"different optimizer: type: file has 'Adam', given 'SGD'",
        ),
        (
            8,
            lambda params: dp.Adam(params, lr=0.01),
            dp.SoftmaxCrossEntropy(),
            r"lr: file has 0.001, given 0.01",
        ),
        (
            8,
            dp.Adam,
            dp.MeanSquaredError(),
            r"trained with loss SoftmaxCrossEntropy, not MeanSquaredError",
        ),
    ],
    ids=["architecture", "optimizer", "lr", "loss"],
)
def test_resume_with_a_different_setup_is_refused(tmp_path, hidden, make_optimizer, loss, message):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 4)).astype(np.float32)
    y = rng.integers(0, 3, 40)
    net = _widths(rng, 8)
    ckpt = tmp_path / "c.safetensors"
    dp.fit(
        net,
        dp.SoftmaxCrossEntropy(),
        dp.Adam(net.parameters()),
        X,
        y,
        epochs=1,
        rng=rng,
        verbose=0,
        callbacks=[dp.ModelCheckpoint(ckpt)],
    )
    other = _widths(rng, hidden)
    targets = np.eye(3)[y] if isinstance(loss, dp.MeanSquaredError) else y
    before = other.flat_values.copy()
    with pytest.raises(dp.ModelFileError, match=message):
        dp.fit(
            other,
            loss,
            make_optimizer(other.parameters()),
            X,
            targets,
            epochs=2,
            rng=rng,
            verbose=0,
            resume_from=ckpt,
        )
    np.testing.assert_array_equal(other.flat_values, before)  # nothing was loaded
