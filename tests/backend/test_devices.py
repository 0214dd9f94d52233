"""The whole API on a device other than the CPU, compared with the same work on the CPU.

The suite runs on the emulated device (``gpu_emulation.py``: arrays that refuse to meet host
arrays, the GPU's CUDA kernels compiled for the CPU) everywhere, and on a real GPU through
CuPy where there is one (``-m gpu`` selects those runs alone).
"""

import copy

import numpy as np
import pytest

import deltaprop as dp
import gpu_emulation
from conftest import CUDA
from deltaprop import registry
from deltaprop.backend import arrays as backend
from deltaprop.backend.memory import reusing
from deltaprop.errors import DeviceUnavailableError
from deltaprop.training.loop import train_step
from gpu_emulation import EmulatedArray, emulated_device
from support import classification_data


def _on(device, array) -> bool:
    return backend.device_of(array) == device


def _pair(device, build, seed=0):
    """The same network built twice from one seed: on the CPU, and on ``device``."""
    cpu = build(np.random.default_rng(seed))
    return cpu, build(np.random.default_rng(seed)).to(device)


def _mlp(widths, **kwargs):
    return lambda rng: dp.mlp(widths, rng=rng, **kwargs)


F32 = {"rtol": 1e-5, "atol": 1e-6}  # one step: equal to float32 rounding


def _close(device_model, cpu_model, **tolerance):
    for (name, a), b in zip(
        device_model.state_dict().items(), cpu_model.state_dict().values(), strict=True
    ):
        assert _on(device_model.device, a), name
        np.testing.assert_allclose(backend.to_host(a), b, err_msg=name, **(tolerance or F32))


# --- moving a model -----------------------------------------------------------------------------


def test_a_model_moves_with_its_flat_buffers_and_comes_back(device, rng):
    net = dp.mlp([5, 8, 3], rng=rng)
    before = net.flat_values.copy()
    assert net.device is backend.CPU
    assert net.to(device) is net and net.device == device
    assert _on(device, net.flat_values) and _on(device, net.flat_grads)
    for p in net.parameters():  # still views into the flat buffers, on the device
        assert _on(device, p.value) and _on(device, p.grad)
    assert dp.Adam(net.parameters()).flat_buffers() is not None
    net.to("cpu")
    assert type(net.flat_values) is np.ndarray
    np.testing.assert_array_equal(net.flat_values, before)
    built = dp.Sequential(dp.Dense(5, 3, rng=rng), device=device)
    assert built.device == device
    assert dp.mlp([5, 3], rng=rng, device=device).device == device


def test_an_optimizer_built_before_the_move_is_refused(device, rng):
    net = dp.mlp([5, 8, 3], rng=rng)
    opt = dp.Adam(net.parameters())
    net.to(device)
    X, y = classification_data(rng, n=32)
    with pytest.raises(TypeError, match="build the optimizer again after .to"):
        dp.fit(net, dp.SoftmaxCrossEntropy(), opt, X, y, epochs=1, verbose=0)


# --- one step and a few epochs equal the CPU's ----------------------------------------------

STEPS = [
    ("adam", lambda p: dp.Adam(p, lr=1e-2), dp.SoftmaxCrossEntropy, "labels"),
    ("adamw", lambda p: dp.AdamW(p, lr=1e-2, weight_decay=0.1), dp.SoftmaxCrossEntropy, "one-hot"),
    (
        "sgd",
        lambda p: dp.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
        dp.SigmoidBinaryCrossEntropy,
        "multi",
    ),
    ("rmsprop", lambda p: dp.RMSprop(p, lr=1e-2, centered=True), dp.MeanSquaredError, "values"),
    ("adagrad", lambda p: dp.Adagrad(p, lr=0.1, clip_norm=0.5), dp.SoftmaxCrossEntropy, "labels"),
]


def _targets(kind, rng, n=48, k=3):
    labels = rng.integers(0, k, n)
    if kind == "labels":
        return labels
    if kind == "one-hot":
        return np.eye(k)[labels]
    if kind == "multi":
        return (rng.random((n, k)) > 0.5).astype(float)
    return rng.standard_normal((n, k))


@pytest.mark.parametrize("name, make_opt, make_loss, kind", STEPS, ids=[s[0] for s in STEPS])
def test_one_training_step_equals_the_cpu_step(device, rng, name, make_opt, make_loss, kind):
    X = rng.standard_normal((48, 6)).astype(np.float32)
    y = _targets(kind, rng)
    build = _mlp([6, 16, 12, 3], activation=dp.Tanh if name == "sgd" else dp.ReLU)
    cpu, gpu = _pair(device, build)
    results = []
    for net in (cpu, gpu):
        loss, opt = make_loss(), make_opt(net.parameters())
        results.append(
            dp.fit(net, loss, opt, X, y, epochs=1, batch_size=48, rng=np.random.default_rng(3))
        )
    _close(gpu, cpu)
    assert results[1]["loss"][0] == pytest.approx(results[0]["loss"][0], rel=1e-5)


@pytest.mark.parametrize("activation", sorted(registry.ACTIVATIONS))
def test_every_activation_and_the_poisson_loss_step_as_on_the_cpu(device, rng, activation):
    X = rng.standard_normal((32, 6)).astype(np.float32)
    y = rng.poisson(2.0, (32, 2)).astype(float)
    make = registry.ACTIVATIONS.get(activation)
    cpu, gpu = _pair(device, lambda r: dp.Sequential(
        dp.Dense(6, 10, rng=r), make(), dp.Dense(10, 8, rng=r), dp.Softmax(),
        dp.Dense(8, 2, rng=r),
    ))  # fmt: skip
    for net in (cpu, gpu):
        opt = dp.SGD(net.parameters(), lr=0.05)
        dp.fit(
            net, dp.PoissonLoss(), opt, X, y, epochs=2, batch_size=16, rng=np.random.default_rng(1)
        )
    _close(gpu, cpu)


def test_ten_epochs_with_dropout_batch_norm_and_validation_equal_the_cpu_run(device):
    X, y = classification_data(np.random.default_rng(1), n=300)

    def build(rng):
        return dp.Sequential(
            dp.Dense(5, 32, rng=rng),
            dp.BatchNorm(32),
            dp.GELU(),
            dp.Dropout(0.2),
            dp.Dense(32, 16, rng=rng),
            dp.LayerNorm(16),
            dp.LeakyReLU(0.1),
            dp.Dense(16, 3, rng=rng, l2=1e-3),
        )

    cpu, gpu = _pair(device, build)
    histories = []
    for net in (cpu, gpu):
        opt = dp.Adam(net.parameters(), lr=1e-2)
        histories.append(
            dp.fit(
                net,
                dp.SoftmaxCrossEntropy(),
                opt,
                X,
                y,
                epochs=10,
                batch_size=32,
                validation_split=0.2,
                rng=np.random.default_rng(7),
                verbose=0,
            )
        )
    cpu_h, gpu_h = histories
    np.testing.assert_allclose(gpu_h["loss"], cpu_h["loss"], rtol=1e-4)
    np.testing.assert_allclose(gpu_h["val_accuracy"], cpu_h["val_accuracy"], atol=0.01)
    _close(gpu, cpu, rtol=1e-3, atol=1e-4)
    assert _on(device, gpu[1].running_mean)  # the buffers travel with the model


def test_predict_and_evaluate_take_and_give_numpy(device, rng):
    X, y = classification_data(rng, n=100)
    cpu, gpu = _pair(device, _mlp([5, 8, 3]))
    loss = dp.SoftmaxCrossEntropy()
    for net in (cpu, gpu):
        opt = dp.Adam(net.parameters())
        dp.fit(net, loss, opt, X, y, epochs=2, batch_size=10, rng=np.random.default_rng(2))
    probabilities = dp.predict(gpu, loss, X, batch_size=32)
    assert type(probabilities) is np.ndarray
    np.testing.assert_allclose(probabilities, dp.predict(cpu, loss, X), **F32)
    assert dp.evaluate(gpu, loss, X, y)["accuracy"] == dp.evaluate(cpu, loss, X, y)["accuracy"]
    logits = gpu.forward(X)  # a model's own forward stays on its device
    assert _on(device, logits)


def test_a_gpu_trained_model_file_loads_on_the_cpu_and_back(device, rng, tmp_path):
    X, y = classification_data(rng, n=100)
    net = dp.mlp([5, 8, 3], rng=rng, device=device)
    loss = dp.SoftmaxCrossEntropy()
    dp.fit(net, loss, dp.Adam(net.parameters()), X, y, epochs=2, verbose=0)
    path = tmp_path / "m.safetensors"
    dp.save(net, path, loss=loss)
    on_cpu, _ = dp.load(path)
    assert on_cpu.device is backend.CPU
    np.testing.assert_array_equal(on_cpu.flat_values, backend.to_host(net.flat_values))
    back = dp.load(path)[0].to(device)
    np.testing.assert_array_equal(backend.to_host(back.flat_values), on_cpu.flat_values)


def test_resume_on_the_device_is_bit_exact(device, tmp_path):
    X, y = classification_data(np.random.default_rng(1))

    def run(epochs, resume=None, checkpoint=None):
        rng = np.random.default_rng(0)
        net = dp.mlp([5, 16, 3], rng=rng, device=device)
        opt = dp.Adam(net.parameters(), lr=1e-2)
        callbacks = [] if checkpoint is None else [dp.ModelCheckpoint(checkpoint)]
        dp.fit(
            net,
            dp.SoftmaxCrossEntropy(),
            opt,
            X,
            y,
            epochs=epochs,
            batch_size=16,
            rng=rng,
            verbose=0,
            callbacks=callbacks,
            resume_from=resume,
        )
        return backend.to_host(net.flat_values), backend.to_host(opt.state["exp_avg"])

    whole = run(4)
    path = tmp_path / "ckpt.safetensors"
    run(2, checkpoint=path)
    resumed = run(4, resume=path, checkpoint=path)
    np.testing.assert_array_equal(resumed[0], whole[0])
    np.testing.assert_array_equal(resumed[1], whole[1])


def test_gradient_check_in_float64_on_the_device(device, rng):
    net = dp.mlp([4, 6, 3], rng=rng, dtype=np.float64, activation=dp.Tanh, device=device)
    X = rng.standard_normal((5, 4))
    y = rng.integers(0, 3, 5)
    report = dp.gradcheck.check_model(net, dp.SoftmaxCrossEntropy(), X, y)
    assert report.ok, report
    assert _on(device, net.flat_values)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_a_non_finite_step_is_rolled_back_on_the_device(device, rng):
    X, y = classification_data(rng, n=64)
    cpu, gpu = _pair(device, _mlp([5, 8, 3]))
    for net in (cpu, gpu):
        opt = dp.SGD(net.parameters(), lr=1e6)
        with pytest.warns(RuntimeWarning, match="non-finite gradient"):
            history = dp.fit(net, dp.SoftmaxCrossEntropy(), opt, X * 1e30, y, epochs=3, verbose=0)
        assert history.diverged
    assert np.isfinite(backend.to_host(gpu.flat_values)).all()
    _close(gpu, cpu)  # the same weights kept


def test_parameters_on_two_devices_are_refused(device, rng):
    first = dp.Dense(4, 3, rng=rng).to(device)
    with pytest.raises(TypeError, match="several devices"):
        dp.Sequential(first, dp.ReLU(), dp.Dense(3, 2, rng=rng))


def test_a_steady_state_training_step_allocates_nothing_on_the_device(rng):
    device = emulated_device()
    net = dp.mlp([20, 32, 16, 4], rng=rng, device=device)
    loss, opt = dp.SoftmaxCrossEntropy(), dp.Adam(net.parameters(), clip_norm=1.0)
    X = device.asarray(rng.standard_normal((64, 20)).astype(np.float32))
    y = device.asarray(rng.integers(0, 4, 64))
    counts = []
    with reusing(*net.workspaces(), loss.workspace):
        for _ in range(3):
            before = gpu_emulation.ALLOCATIONS[0]
            train_step(net, loss, opt, X, y)
            loss.n_correct(net.forward(X), y)  # the accuracy count, as fit keeps it
            counts.append(gpu_emulation.ALLOCATIONS[0] - before)
    assert counts[0] > 0 and counts[1:] == [0, 0]  # storage made once, then reused


def test_the_emulated_device_refuses_host_arrays(rng):
    device = emulated_device()
    net = dp.mlp([5, 3], rng=rng).to(device)
    assert isinstance(net.flat_values, EmulatedArray)
    with pytest.raises(TypeError, match="host array"):
        net.flat_values + rng.standard_normal(net.flat_values.shape)


# --- without a GPU --------------------------------------------------------------------------------


@pytest.mark.skipif(CUDA, reason="this machine has a GPU")
def test_cuda_without_cupy_or_a_gpu_says_what_to_install(rng):
    net = dp.mlp([5, 3], rng=rng)
    with pytest.raises(DeviceUnavailableError, match=r"pip install 'deltaprop\[cuda12\]'"):
        net.to("cuda")
    assert net.device is backend.CPU  # nothing moved
    with pytest.raises(ValueError, match="device must be 'cpu', 'cuda' or 'cuda:N', got 'tpu'"):
        net.to("tpu")


def test_a_deep_copy_stays_on_its_device(device, rng):
    net = dp.mlp([5, 8, 3], rng=rng, device=device)
    clone = copy.deepcopy(net)
    assert clone.device == device
    assert dp.Adam(clone.parameters()).flat_buffers() is not None


# --- callbacks, traces and estimators on the device ---------------------------------------------


def test_callbacks_see_the_same_training_as_on_the_cpu(device, tmp_path):
    X, y = classification_data(np.random.default_rng(1), n=200)
    cpu, gpu = _pair(device, _mlp([5, 16, 3]))
    logs = []
    for net, name in ((cpu, "cpu"), (gpu, "device")):
        callbacks = [
            dp.Diagnostics(),
            dp.EarlyStopping(patience=2, restore_best_weights=True),
            dp.ReduceLROnPlateau(patience=1),
            dp.CSVLogger(tmp_path / f"{name}.csv"),
        ]
        history = dp.fit(
            net,
            dp.SoftmaxCrossEntropy(),
            dp.Adam(net.parameters(), lr=1e-2),
            X,
            y,
            epochs=6,
            batch_size=20,
            validation_split=0.25,
            rng=np.random.default_rng(4),
            verbose=0,
            callbacks=callbacks,
        )
        logs.append(history)
    for key in ("loss", "val_loss", "grad_norm/0.W", "dead_fraction/1", "act_std/2"):
        np.testing.assert_allclose(logs[1][key], logs[0][key], rtol=1e-4, err_msg=key)
    _close(gpu, cpu, rtol=1e-4, atol=1e-5)


def test_trace_and_explain_follow_a_model_on_the_device(device, rng):
    X, y = classification_data(rng, n=4)
    cpu, gpu = _pair(device, _mlp([5, 6, 3], dtype=np.float64))
    loss = dp.SoftmaxCrossEntropy()
    traces = [dp.trace(net, loss, X, y) for net in (cpu, gpu)]
    assert traces[1].loss == pytest.approx(traces[0].loss, rel=1e-12)
    for mine, theirs in zip(traces[1].layers, traces[0].layers, strict=True):
        assert type(mine.delta) is np.ndarray  # host copies, for display
        np.testing.assert_allclose(mine.delta, theirs.delta, rtol=1e-12)
        np.testing.assert_allclose(mine.grads["W"], theirs.grads["W"], rtol=1e-12)
    np.testing.assert_allclose(backend.to_host(gpu[0].W.grad), cpu[0].W.grad, rtol=1e-12)
    assert str(dp.explain(gpu, loss, X[:1], y[:1])) == str(dp.explain(cpu, loss, X[:1], y[:1]))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_estimators_take_a_device_and_give_the_cpu_answers(device, solver):
    X, y = classification_data(np.random.default_rng(2), n=150)
    settings = dict(hidden_layer_sizes=(12,), max_iter=20, random_state=0, solver=solver)
    on_cpu = dp.MLPClassifier(**settings).fit(X, y)
    with np.errstate(all="ignore"):
        on_device = dp.MLPClassifier(**settings, device=device).fit(X, y)
    assert on_device.model_.device == device
    np.testing.assert_allclose(on_device.predict_proba(X), on_cpu.predict_proba(X), atol=1e-4)
    np.testing.assert_allclose(on_device.loss_curve_ if solver == "adam" else [on_device.loss_],
                               on_cpu.loss_curve_ if solver == "adam" else [on_cpu.loss_],
                               rtol=1e-4)  # fmt: skip
    coefs = on_device.coefs_
    assert all(type(c) is np.ndarray for c in coefs)
    np.testing.assert_allclose(coefs[0], on_cpu.coefs_[0], atol=1e-4)
    regressor = dp.MLPRegressor(hidden_layer_sizes=(8,), max_iter=5, random_state=0, device=device)
    assert regressor.fit(X, X[:, 0]).predict(X).shape == (150,)


def test_the_compiled_epoch_says_it_runs_on_the_cpu(device, rng):
    X, y = classification_data(rng, n=64)
    net = dp.mlp([5, 8, 3], rng=rng, device=device)
    with pytest.raises(ValueError, match=f"the model is on {device.name}"):
        dp.fit(net, dp.SoftmaxCrossEntropy(), dp.Adam(net.parameters()), X, y, engine="compiled")


def test_data_already_on_the_device_is_taken_too(device, rng):
    X, y = classification_data(rng, n=64)
    cpu, gpu = _pair(device, _mlp([5, 8, 3]))
    for net, (data, labels) in ((cpu, (X, y)), (gpu, (device.asarray(X), device.asarray(y)))):
        opt = dp.Adam(net.parameters())
        dp.fit(net, dp.SoftmaxCrossEntropy(), opt, data, labels, rng=np.random.default_rng(0))
    _close(gpu, cpu)
    probabilities = dp.predict(gpu, dp.SoftmaxCrossEntropy(), device.asarray(X))
    assert type(probabilities) is np.ndarray
