"""Checkpoints: a resumed run equals an uninterrupted one; a different setup is refused."""

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import deltaprop as dp

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


@pytest.mark.slow
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


def test_a_checkpoint_written_by_the_first_release_resumes_exactly(tmp_path):
    """tests/data/checkpoint-format1.safetensors: 2 of 4 epochs, written by deltaprop 0.1.0
    before the architecture-for-growth changes; the weights after resuming to epoch 4 were
    recorded then."""
    data = Path(__file__).parents[1] / "data"
    expected = np.load(data / "format1-expected.npz")
    rng = np.random.default_rng(5)
    net = dp.Sequential(dp.Dense(4, 8, rng=rng), dp.ReLU(), dp.Dense(8, 3, rng=rng))
    opt = dp.Adam(net.parameters(), lr=dp.CosineDecay(0.01, total_steps=20, warmup_steps=2))
    history = dp.fit(
        net,
        dp.SoftmaxCrossEntropy(),
        opt,
        expected["X_train"],
        expected["y_train"],
        epochs=4,
        batch_size=8,
        rng=np.random.default_rng(2),
        validation_split=0.25,
        verbose=0,
        callbacks=[
            dp.EarlyStopping(patience=5, restore_best_weights=True),
            dp.ModelCheckpoint(tmp_path / "c.safetensors"),
        ],
        resume_from=data / "checkpoint-format1.safetensors",
    )
    np.testing.assert_array_equal(net.flat_values, expected["resumed_weights"])
    np.testing.assert_array_equal(history["val_loss"], expected["val_loss"])


def _checkpointed_run(tmp_path, X, y):
    rng = np.random.default_rng(0)
    net = _widths(rng, 8)
    dp.fit(
        net,
        dp.SoftmaxCrossEntropy(),
        dp.Adam(net.parameters()),
        X,
        y,
        epochs=1,
        rng=rng,
        validation_split=0.2,
        verbose=0,
        callbacks=[dp.ModelCheckpoint(tmp_path / "c.safetensors")],
    )
    return tmp_path / "c.safetensors"


@pytest.mark.parametrize(
    ("rows", "change", "message"),
    [
        (100, None, r"written while training on 50 rows, this fit has 100"),
        (20, None, r"written while training on 50 rows, this fit has 20"),
        (50, "values", r"other data of the same shape \(50 rows\): the fingerprint"),
    ],
)
def test_resume_with_other_data_is_refused(tmp_path, rows, change, message):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((100, 4)).astype(np.float32)
    y = rng.integers(0, 3, 100)
    checkpoint = _checkpointed_run(tmp_path, X[:50], y[:50])
    X_new, y_new = X[:rows].copy(), y[:rows]
    if change == "values":
        X_new[17, 2] += 1.0
    net = _widths(np.random.default_rng(0), 8)
    before = net.flat_values.copy()
    with pytest.raises(dp.ModelFileError, match=message):
        dp.fit(
            net,
            dp.SoftmaxCrossEntropy(),
            dp.Adam(net.parameters()),
            X_new,
            y_new,
            epochs=2,
            rng=np.random.default_rng(0),
            validation_split=0.2,
            verbose=0,
            resume_from=checkpoint,
        )
    np.testing.assert_array_equal(net.flat_values, before)
    assert dp.inspect_file(checkpoint).epoch == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"batch_size": 16}, r"batch_size differs: it was written with 32, this fit has 16"),
        ({"validation_split": 0.3}, r"validation_split differs: it was written with 0.2, .* 0.3"),
        ({"shuffle": False}, r"shuffle differs: it was written with True, this fit has False"),
        ({"sample_weight": np.ones(50)}, "written without sample_weight, this fit is with"),
    ],
)
def test_resume_with_other_fit_settings_is_refused_naming_the_setting(tmp_path, change, message):
    """Another batch size, split, shuffle or weights would no longer be an exact resume."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((50, 4)).astype(np.float32)
    y = rng.integers(0, 3, 50)
    checkpoint = _checkpointed_run(tmp_path, X, y)
    net = _widths(np.random.default_rng(0), 8)
    before = net.flat_values.copy()
    settings = {"batch_size": 32, "validation_split": 0.2, **change}
    with pytest.raises(dp.ModelFileError, match=message):
        dp.fit(
            net,
            dp.SoftmaxCrossEntropy(),
            dp.Adam(net.parameters()),
            X,
            y,
            epochs=2,
            rng=np.random.default_rng(0),
            verbose=0,
            resume_from=checkpoint,
            **settings,
        )
    np.testing.assert_array_equal(net.flat_values, before)
    history = dp.fit(  # the same settings resume
        net,
        dp.SoftmaxCrossEntropy(),
        dp.Adam(net.parameters()),
        X,
        y,
        epochs=2,
        rng=np.random.default_rng(0),
        verbose=0,
        resume_from=checkpoint,
        batch_size=32,
        validation_split=0.2,
    )
    assert history.n_epochs == 2


def _crafted(tmp_path, change):
    """A real checkpoint, its state changed by ``change(info, tensors)``, checksums recomputed."""
    from deltaprop.files import format as fileformat

    rng = np.random.default_rng(3)
    X = rng.standard_normal((50, 4)).astype(np.float32)
    y = rng.integers(0, 3, 50)
    net = _widths(np.random.default_rng(0), 8)
    stopper = dp.EarlyStopping("loss", patience=3, restore_best_weights=True)
    path = tmp_path / "c.safetensors"
    dp.fit(
        net,
        dp.SoftmaxCrossEntropy(),
        dp.Adam(net.parameters(), lr=dp.CosineDecay(1e-3, total_steps=20)),
        X,
        y,
        epochs=1,
        rng=np.random.default_rng(0),
        verbose=0,
        callbacks=[stopper, dp.ModelCheckpoint(path)],
    )
    contents = fileformat.read_file(path)
    info, tensors = contents.info, dict(contents.tensors)
    change(info, tensors)
    info.pop("tensor_sha256", None)
    crafted = tmp_path / "crafted.safetensors"
    crafted.write_bytes(fileformat.encode(tensors, info))
    return crafted, X, y


def _best_weights_of_one_number(info, tensors):
    name = next(k for k in tensors if k.startswith("callbacks.") and k.endswith("best_weights"))
    tensors[name] = np.array([7.0], dtype=np.float32)


def _negative_step_count(info, tensors):
    info["checkpoint"]["optimizer"]["step_count"] = -5


def _bad_random_state(info, tensors):
    info["checkpoint"]["rng"] = {"bit_generator": "PCG64", "state": "nonsense"}


def _early_stopping_without_its_fields(info, tensors):
    for entry in info["checkpoint"]["callbacks"]:
        if entry["type"] == "EarlyStopping":
            entry["state"] = {"wait": "many"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_best_weights_of_one_number, r"the saved best weights are \(shape, dtype\) \[\(\(1,\)"),
        (_negative_step_count, r"step_count -5 and lr_scale"),
        (_bad_random_state, "its training state is malformed"),
        (_early_stopping_without_its_fields, r"training state is malformed \(KeyError"),
    ],
)
def test_a_crafted_training_state_is_refused_and_changes_nothing(tmp_path, change, message):
    path, X, y = _crafted(tmp_path, change)
    net = _widths(np.random.default_rng(9), 8)
    opt = dp.Adam(net.parameters(), lr=dp.CosineDecay(1e-3, total_steps=20))
    stopper = dp.EarlyStopping("loss", patience=3, restore_best_weights=True)
    weights, rng = net.flat_values.copy(), np.random.default_rng(0)
    rng_state = rng.bit_generator.state
    with pytest.raises(dp.ModelFileError, match=message):
        dp.fit(
            net,
            dp.SoftmaxCrossEntropy(),
            opt,
            X,
            y,
            epochs=3,
            rng=rng,
            verbose=0,
            callbacks=[stopper],
            resume_from=path,
        )
    np.testing.assert_array_equal(net.flat_values, weights)
    assert opt.step_count == 0 and not opt.state["exp_avg"].any()
    assert rng.bit_generator.state == rng_state
    assert stopper.best_state is None and stopper.wait == 0


def _architecture(description):
    def change(info, tensors):
        info["architecture"] = description

    return change


@pytest.mark.parametrize(
    ("description", "message"),
    [
        ({"type": "Sequential", "layers": [5]}, "malformed"),
        ({"type": "Sequential"}, r"invalid arguments for Sequential"),
        ({"type": "Dense", "in_features": []}, r"invalid arguments for Dense"),
        ([1], "expected a layer description with a 'type'"),
    ],
)
def test_a_malformed_architecture_in_a_checkpoint_is_a_model_file_error(
    tmp_path, description, message
):
    path, X, y = _crafted(tmp_path, _architecture(description))
    net = _widths(np.random.default_rng(9), 8)
    weights = net.flat_values.copy()
    with pytest.raises(dp.ModelFileError, match=message):
        dp.fit(
            net,
            dp.SoftmaxCrossEntropy(),
            dp.Adam(net.parameters()),
            X,
            y,
            epochs=2,
            verbose=0,
            resume_from=path,
        )
    np.testing.assert_array_equal(net.flat_values, weights)


def test_bad_validation_data_is_refused_before_a_checkpoint_is_restored(tmp_path):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((50, 4)).astype(np.float32)
    y = rng.integers(0, 3, 50)
    checkpoint = _checkpointed_run(tmp_path, X, y)
    net = _widths(np.random.default_rng(0), 8)
    weights = net.flat_values.copy()
    with pytest.raises(ValueError, match="X_val"):
        dp.fit(
            net,
            dp.SoftmaxCrossEntropy(),
            dp.Adam(net.parameters()),
            X,
            y,
            epochs=2,
            rng=np.random.default_rng(0),
            verbose=0,
            validation_split=0.2,
            validation_data=(X[:5, :3], y[:5]),  # one feature short
            resume_from=checkpoint,
        )
    np.testing.assert_array_equal(net.flat_values, weights)
