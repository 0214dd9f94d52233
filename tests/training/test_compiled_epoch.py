"""The compiled epoch against the reference path: the same numbers to rounding, the same rules."""

import os

import numpy as np
import pytest

import deltaprop as dp
from deltaprop.training.compiled_epoch import CompiledEpochs, compiled_epochs

RTOL = {np.float32: 2e-5, np.float64: 1e-12}


def problem(widths, dtype=np.float32, n=96, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, widths[0])).astype(dtype)
    y = rng.integers(0, widths[-1], n)
    return X, y


def train(engine, widths, optimizer, X, y, *, dtype=np.float32, epochs=1, batch_size=32, **fit):
    net = dp.mlp(widths, rng=np.random.default_rng(1), dtype=dtype)
    name, options = optimizer
    opt = getattr(dp, name)(net.parameters(), **options)
    history = dp.fit(
        net,
        dp.SoftmaxCrossEntropy(),
        opt,
        X,
        y,
        epochs=epochs,
        batch_size=batch_size,
        rng=np.random.default_rng(2),
        verbose=0,
        engine=engine,
        **fit,
    )
    return net, opt, history


OPTIMIZERS = [
    ("Adam", {"lr": 0.01}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.1}),
    ("Adam", {"lr": 0.01, "weight_decay": 0.05, "clip_norm": 0.3}),
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.1, "momentum": 0.5, "dampening": 0.2}),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("widths", [[6, 3], [6, 8, 3], [7, 9, 5, 4]])
def test_an_epoch_equals_the_reference_path_to_rounding(dtype, optimizer, widths):
    X, y = problem(widths, dtype)
    compiled, opt_c, history_c = train("compiled", widths, optimizer, X, y, dtype=dtype, epochs=2)
    reference, opt_r, history_r = train("reference", widths, optimizer, X, y, dtype=dtype, epochs=2)
    for a, b in zip(compiled.parameters(), reference.parameters(), strict=True):
        np.testing.assert_allclose(a.value, b.value, rtol=RTOL[dtype], atol=RTOL[dtype] / 10)
    for a, b in zip(opt_c.state.values(), opt_r.state.values(), strict=True):
        np.testing.assert_allclose(a, b, rtol=RTOL[dtype] * 10, atol=1e-12)
    assert opt_c.step_count == opt_r.step_count == 6
    np.testing.assert_allclose(history_c["loss"], history_r["loss"], rtol=RTOL[dtype])
    assert history_c["accuracy"] == history_r["accuracy"]


def test_identity_between_layers_and_a_last_batch_of_one_row():
    widths = [5, 4, 3]
    X, y = problem(widths, n=65)
    nets = []
    for engine in ("compiled", "reference"):
        net = dp.Sequential(
            dp.Dense(5, 4, rng=np.random.default_rng(3)),
            dp.Identity(),
            dp.Dense(4, 3, rng=np.random.default_rng(4)),
        )
        dp.fit(
            net,
            dp.SoftmaxCrossEntropy(),
            dp.Adam(net.parameters(), lr=0.05),
            X,
            y,
            epochs=3,
            batch_size=32,
            rng=np.random.default_rng(0),
            verbose=0,
            engine=engine,
        )
        nets.append(net)
    np.testing.assert_allclose(nets[0].flat_values, nets[1].flat_values, rtol=2e-5, atol=1e-7)


@pytest.mark.slow
def test_ten_epochs_on_digits_stay_within_a_small_tolerance():
    X_train, X_test, y_train, y_test = dp.datasets.digits().train_test_split()
    scores = {}
    for engine in ("compiled", "reference"):
        net, _, history = train(
            engine,
            [64, 64, 10],
            ("Adam", {"lr": 1e-3}),
            X_train,
            y_train,
            epochs=10,
            validation_split=0.1,
        )
        scores[engine] = (
            history["loss"][-1],
            dp.evaluate(net, dp.SoftmaxCrossEntropy(), X_test, y_test)["accuracy"],
        )
    assert scores["compiled"][0] == pytest.approx(scores["reference"][0], rel=1e-3)
    assert abs(scores["compiled"][1] - scores["reference"][1]) <= 0.01


@pytest.mark.parametrize("cores", [2, 8])
@pytest.mark.parametrize("widths", [[6, 8, 3], [150, 200, 70, 10]])
def test_the_same_numbers_to_the_bit_on_any_number_of_threads(widths, cores, monkeypatch):
    # tiles by the machine's cores: on 8, 200 units are 4 tiles (the last 8 wide) and 150 are
    # 3; every thread count shares them out differently, and none may change a bit
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    X, y = problem(widths, n=300)
    runs = [
        train("compiled", widths, ("Adam", {"lr": 0.01}), X, y, epochs=2, n_threads=t)[0]
        for t in (2, 2, 1, 3, 5)
    ]
    for other in runs[1:]:
        np.testing.assert_array_equal(other.flat_values, runs[0].flat_values)


def test_a_thread_count_below_one_is_refused():
    X, y = problem([6, 3])
    with pytest.raises(ValueError, match="n_threads must be >= 1, got 0"):
        train("compiled", [6, 3], ("Adam", {}), X, y, n_threads=0)


def test_a_schedule_and_reduce_lr_on_plateau_give_the_same_rates():
    X, y = problem([6, 8, 3], n=100)
    histories = []
    for engine in ("compiled", "reference"):
        net = dp.mlp([6, 8, 3], rng=np.random.default_rng(1))
        opt = dp.Adam(net.parameters(), lr=dp.CosineDecay(0.05, total_steps=30, warmup_steps=5))
        history = dp.fit(
            net,
            dp.SoftmaxCrossEntropy(),
            opt,
            X,
            y,
            epochs=6,
            batch_size=16,
            rng=np.random.default_rng(0),
            verbose=0,
            engine=engine,
            callbacks=[dp.ReduceLROnPlateau("loss", patience=0, factor=0.5)],
        )
        histories.append(history)
    np.testing.assert_allclose(histories[0]["lr"], histories[1]["lr"], rtol=1e-12)
    np.testing.assert_allclose(histories[0]["loss"], histories[1]["loss"], rtol=1e-4)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_a_non_finite_loss_stops_both_paths_at_the_same_batch():
    X, y = problem([6, 8, 3], n=64)
    X[40] = 3e38  # row 40 overflows the logits in float32: the loss of batch 3 is NaN
    results = []
    for engine in ("compiled", "reference"):
        net = dp.mlp([6, 8, 3], rng=np.random.default_rng(1))
        with pytest.warns(RuntimeWarning, match="not finite"):
            history = dp.fit(
                net,
                dp.SoftmaxCrossEntropy(),
                dp.SGD(net.parameters(), lr=0.1),
                X,
                y,
                epochs=2,
                batch_size=16,
                shuffle=False,
                verbose=0,
                engine=engine,
            )
        results.append((history.diverged, history.stop_reason, net.flat_values.copy()))
    assert results[0][0] and results[1][0]
    assert results[0][1] == results[1][1] and "batch 3" in results[0][1]
    np.testing.assert_allclose(results[0][2], results[1][2], rtol=1e-5)


def test_resume_is_bit_exact_on_the_compiled_path(tmp_path):
    X, y = problem([6, 8, 3], n=100)
    whole, _, _ = train("compiled", [6, 8, 3], ("Adam", {"lr": 0.01}), X, y, epochs=4)
    path = tmp_path / "c.safetensors"
    train(
        "compiled",
        [6, 8, 3],
        ("Adam", {"lr": 0.01}),
        X,
        y,
        epochs=2,
        callbacks=[dp.ModelCheckpoint(path)],
    )
    net = dp.mlp([6, 8, 3], rng=np.random.default_rng(9))
    dp.fit(
        net,
        dp.SoftmaxCrossEntropy(),
        dp.Adam(net.parameters(), lr=0.01),
        X,
        y,
        epochs=4,
        batch_size=32,
        rng=np.random.default_rng(7),
        verbose=0,
        engine="compiled",
        callbacks=[dp.ModelCheckpoint(path)],
        resume_from=path,
    )
    np.testing.assert_array_equal(net.flat_values, whole.flat_values)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"layers": "dropout"}, "it has a Dropout layer"),
        (
            {"loss": dp.SigmoidBinaryCrossEntropy},
            "its loss is not softmax cross-entropy on class labels",
        ),
        ({"y": "one-hot"}, "its loss is not softmax cross-entropy on class labels"),
        ({"optimizer": "RMSprop"}, "RMSprop has no compiled rule"),
        ({"sample_weight": True}, "the rows are weighted"),
        ({"layers": "l2"}, "a Dense layer has an L2 penalty"),
        ({"layers": "tanh"}, "it has a Tanh layer"),
    ],
)
def test_what_it_cannot_train_falls_back_or_is_named(change, reason):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 5)).astype(np.float32)
    y = rng.integers(0, 2, 40)
    layers = change.get("layers")
    middle = {"dropout": [dp.ReLU(), dp.Dropout(0.2)], "tanh": [dp.Tanh()]}.get(layers, [dp.ReLU()])
    net = dp.Sequential(
        dp.Dense(5, 4, rng=rng, l2=0.1 if layers == "l2" else 0.0),
        *middle,
        dp.Dense(4, 2 if change.get("loss") is None else 1, rng=rng),
    )
    loss = change.get("loss", dp.SoftmaxCrossEntropy)()
    targets = np.eye(2)[y] if change.get("y") else (y if change.get("loss") is None else y[:, None])
    opt = getattr(dp, change.get("optimizer", "Adam"))(net.parameters())
    fit = {"sample_weight": np.ones(40)} if change.get("sample_weight") else {}
    callbacks = change.get("callbacks", [])
    with pytest.raises(ValueError, match=f"engine='compiled' cannot train this: {reason}"):
        dp.fit(net, loss, opt, X, targets, verbose=0, engine="compiled", callbacks=callbacks, **fit)
    dp.fit(net, loss, opt, X, targets, verbose=0, callbacks=callbacks, **fit)  # auto: reference


def test_a_progress_bar_still_sees_every_batch():
    class Counter(dp.ProgressBar):
        def __init__(self):
            super().__init__()
            self.losses = []

        def on_batch_end(self, run, batch, loss):
            self.losses.append((batch, loss))

    X, y = problem([6, 8, 3], n=700)
    seen = {}
    for engine in ("compiled", "reference"):
        counter = Counter()
        train(engine, [6, 8, 3], ("Adam", {"lr": 0.01}), X, y, callbacks=[counter])
        seen[engine] = counter.losses
    assert [b for b, _ in seen["compiled"]] == list(range(22))
    np.testing.assert_allclose(
        [v for _, v in seen["compiled"]], [v for _, v in seen["reference"]], rtol=1e-5
    )


def test_engine_names_are_checked_and_rows_out_of_range_refused():
    X, y = problem([6, 3])
    with pytest.raises(ValueError, match="engine must be 'auto', 'compiled' or 'reference'"):
        train("fast", [6, 3], ("Adam", {}), X, y)
    net = dp.mlp([6, 3], rng=np.random.default_rng(0))
    opt = dp.Adam(net.parameters())
    parts = (net, dp.SoftmaxCrossEntropy(), opt, (X, y, None), 32)
    assert compiled_epochs("auto", *parts, work=1e6) is None  # too small to repay compiling
    big_batches = (*parts[:4], 4096)
    assert isinstance(compiled_epochs("auto", *big_batches, work=1e11), CompiledEpochs)  # any batch
    assert compiled_epochs("reference", *big_batches, work=1e11) is None
    epochs = compiled_epochs("auto", *parts, work=1e11)
    assert isinstance(epochs, CompiledEpochs)
    with pytest.raises(ValueError, match=r"rows must be indices in \[0, 96\), got 96"):
        epochs.run(np.array([0, 96]), 2)


def test_diagnostics_see_each_batch_as_on_the_reference_path():
    X, y = problem([6, 8, 3], n=150)
    histories = {}
    for engine in ("compiled", "reference"):
        _, _, history = train(
            engine, [6, 8, 3], ("Adam", {"lr": 0.01}), X, y, epochs=3, callbacks=[dp.Diagnostics()]
        )
        histories[engine] = history
    keys = [k for k in histories["reference"] if k.startswith(("grad_norm/", "dead_fraction/"))]
    assert len(keys) == 5  # mlp([6, 8, 3]): 4 parameters and one ReLU layer
    for key in keys:
        np.testing.assert_allclose(
            histories["compiled"][key], histories["reference"][key], rtol=1e-4, atol=1e-7
        )


def test_a_relu_before_the_first_dense_layer_is_not_dropped(monkeypatch):
    """The compiled epoch applies ReLU to a Dense layer's output; a ReLU on the input itself
    is refused by name, and "auto" (however large the run) trains it on the reference path."""
    monkeypatch.setattr("deltaprop.training.compiled_epoch.AUTO_WORK", 0)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 4)).astype(np.float32)
    y = rng.integers(0, 2, 64)

    def trained(engine):
        layers = np.random.default_rng(1)
        net = dp.Sequential(
            dp.ReLU(), dp.Dense(4, 3, rng=layers), dp.ReLU(), dp.Dense(3, 2, rng=layers)
        )
        opt = dp.Adam(net.parameters(), lr=0.01)
        run = {"epochs": 2, "batch_size": 16, "rng": np.random.default_rng(2), "verbose": 0}
        dp.fit(net, dp.SoftmaxCrossEntropy(), opt, X, y, engine=engine, **run)
        return net.flat_values

    with pytest.raises(ValueError, match="cannot train this: it starts with a ReLU"):
        trained("compiled")
    np.testing.assert_array_equal(trained("auto"), trained("reference"))


@pytest.mark.slow
def test_the_first_run_on_a_machine_says_it_compiles_and_the_next_loads_the_cache(tmp_path):
    import os
    import subprocess
    import sys

    from deltaprop.training.compiled_epoch import COMPILING

    code = (
        "import numpy as np, deltaprop as dp\n"
        "X = np.random.default_rng(0).standard_normal((64, 4)).astype(np.float32)\n"
        "net = dp.mlp([4, 8, 3], rng=0)\n"
        "dp.fit(net, dp.SoftmaxCrossEntropy(), dp.Adam(net.parameters()), X, np.arange(64) % 3,"
        " engine='compiled', verbose=2, rng=0)\n"
    )
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}  # the cache of a new machine
    runs = [
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
            check=True,
        )
        for _ in range(2)
    ]
    assert COMPILING in runs[0].stderr
    assert COMPILING not in runs[1].stderr  # loaded from the cache on disk
