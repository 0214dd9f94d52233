import tracemalloc

import numpy as np
import pytest

import deltaprop as dp
from deltaprop import datasets
from deltaprop.backend.memory import reusing
from deltaprop.training.inputs import Batches
from deltaprop.training.loop import train_step
from support import classification_data as _data
from support import train_small as _train

# --- learning tests: each states its target ----------------------------------------------------


# --- learning tests: each states its target ----------------------------------------------------


def train(net, loss, X, y, *, lr, epochs, batch_size=32, **kwargs):
    """Adam on (X, y), seeded, silent."""
    return dp.fit(
        net,
        loss,
        dp.Adam(net.parameters(), lr=lr),
        X,
        y,
        epochs=epochs,
        batch_size=batch_size,
        rng=np.random.default_rng(0),
        verbose=0,
        **kwargs,
    )


@pytest.mark.slow
def test_xor_is_solved_within_300_epochs():
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)  # the truth table
    y = np.array([0, 1, 1, 0])
    rng = np.random.default_rng(0)
    net = dp.Sequential(dp.Dense(2, 8, rng=rng), dp.Tanh(), dp.Dense(8, 1, rng=rng))
    loss = dp.SigmoidBinaryCrossEntropy()
    train(net, loss, X, y, lr=0.05, epochs=300, batch_size=4)
    assert dp.evaluate(net, loss, X, y)["accuracy"] == 1.0
    np.testing.assert_array_equal(dp.predict(net, loss, X)[:, 0] > 0.5, [False, True, True, False])


@pytest.mark.slow
def test_two_moons_reaches_97_percent():
    X_train, X_test, y_train, y_test = datasets.moons(n=1000, noise=0.2).train_test_split()
    rng = np.random.default_rng(0)
    net = dp.mlp([2, 32, 32, 1], rng=rng)
    loss = dp.SigmoidBinaryCrossEntropy()
    train(net, loss, X_train, y_train, lr=0.01, epochs=60)
    assert dp.evaluate(net, loss, X_test, y_test)["accuracy"] >= 0.97


@pytest.mark.slow
def test_digits_reaches_97_percent():
    X_train, X_test, y_train, y_test = datasets.digits().train_test_split()
    rng = np.random.default_rng(0)
    net = dp.mlp([64, 128, 10], rng=rng)
    loss = dp.SoftmaxCrossEntropy()
    history = train(net, loss, X_train, y_train, lr=1e-3, epochs=40, validation_split=0.1)
    assert history["val_accuracy"][-1] >= 0.95
    assert dp.evaluate(net, loss, X_test, y_test)["accuracy"] >= 0.97


@pytest.mark.slow
def test_breast_cancer_reaches_96_percent():
    X_train, X_test, y_train, y_test = datasets.breast_cancer().train_test_split(seed=42)
    rng = np.random.default_rng(0)
    net = dp.mlp([30, 16, 1], rng=rng)
    loss = dp.SigmoidBinaryCrossEntropy()
    train(net, loss, X_train, y_train, lr=1e-3, epochs=40)
    assert dp.evaluate(net, loss, X_test, y_test)["accuracy"] >= 0.96


@pytest.mark.slow
def test_diabetes_regression_beats_the_mean_predictor():
    from sklearn.datasets import load_diabetes
    from sklearn.model_selection import train_test_split

    X, y = load_diabetes(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    y_mean, y_std = y.mean(), y.std()
    X_train, X_test, y_train, y_test = train_test_split(X, (y - y_mean) / y_std, random_state=0)
    rng = np.random.default_rng(0)
    net = dp.mlp([10, 32, 1], rng=rng)
    loss = dp.MeanSquaredError()
    history = train(net, loss, X_train, y_train, lr=1e-3, epochs=40, validation_split=0.1)
    scores = dp.evaluate(net, loss, X_test, y_test)
    mean_mse = float(np.mean((y_test - y_train.mean()) ** 2))
    # (ordinary least squares reaches R² 0.36 on this split)
    assert scores["mse"] < 0.8 * mean_mse
    assert scores["r2"] > 0.2
    assert {"loss", "mse", "mae", "r2", "val_mse", "val_r2"} <= set(history)
    assert scores["loss"] == pytest.approx(scores["mse"] / 2, rel=1e-5)  # the ½ convention


# --- fit's contract -----------------------------------------------------------------------------


def test_same_seed_gives_bit_identical_weights():
    a, _ = _train(7, validation_split=0.2)
    b, _ = _train(7, validation_split=0.2)
    c, _ = _train(8, validation_split=0.2)
    assert np.array_equal(a.flat_values, b.flat_values)
    assert not np.array_equal(a.flat_values, c.flat_values)


def test_history_has_one_value_per_epoch():
    _, history = _train(0, epochs=4, validation_split=0.25)
    assert history.n_epochs == 4
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "epoch_time"):
        assert len(history[key]) == 4, key
    assert history["loss"][-1] < history["loss"][0]
    assert history.stop_reason is None


def test_validation_split_is_stratified_and_shuffled():
    from deltaprop.training.inputs import validation_split_indices as _split

    y = np.array([0] * 90 + [1] * 10)
    train, val = _split(y, 0.2, True, np.random.default_rng(0))
    assert len(val) == 20 and np.sum(y[val] == 1) == 2  # 20 % of each class
    assert len(np.intersect1d(train, val)) == 0 and len(train) + len(val) == 100
    assert val.max() < 90 or val.min() > 0  # not just the last rows


def test_many_small_classes_still_give_the_validation_share():
    from deltaprop.training.inputs import validation_split_indices as _split

    y = np.repeat(np.arange(30), 3)  # 30 classes of 3 rows: 10 % rounds to 0 in each class
    train, val = _split(y, 0.1, True, np.random.default_rng(0))
    assert len(val) == 9 and len(train) == 81  # round(0.1 × 90), not 0 and an error
    assert len(np.unique(y[val])) == 9  # one row each of nine classes
    y = np.array([0] * 7 + [1] * 7 + [2] * 6)  # per-class rounding of 0.25 gives 2 + 2 + 2 = 6
    _, val = _split(y, 0.25, True, np.random.default_rng(0))
    assert len(val) == 5 and sorted(np.bincount(y[val]).tolist()) == [1, 2, 2]


def test_validation_data_is_used():
    rng = np.random.default_rng(0)
    X, y = _data(rng)
    X_val, y_val = X[:50] + 1.0, y[:50]  # shifted: its loss is not the training data's
    net, history = _train(0, epochs=2, validation_data=(X_val, y_val))
    assert len(history["val_loss"]) == 2
    scores = dp.evaluate(net, dp.SoftmaxCrossEntropy(), X_val, y_val)
    assert history["val_loss"][-1] == pytest.approx(scores["loss"], rel=1e-6)
    assert history["val_accuracy"][-1] == scores["accuracy"]
    assert history["val_loss"][-1] != pytest.approx(history["loss"][-1], rel=1e-3)


def test_validation_data_may_carry_row_weights():
    """``(X_val, y_val, weights)``, as Keras takes it: ``val_loss`` is the weighted mean."""
    rng = np.random.default_rng(0)
    X, y = _data(rng)
    X_val, y_val = X[:50] + 1.0, y[:50]
    weights = np.where(np.arange(50) < 10, 5.0, 0.5)
    net, history = _train(0, epochs=2, validation_data=(X_val, y_val, weights))
    loss = dp.SoftmaxCrossEntropy()
    weighted = dp.evaluate(net, loss, X_val, y_val, sample_weight=weights)
    plain = dp.evaluate(net, loss, X_val, y_val)
    assert history["val_loss"][-1] == pytest.approx(weighted["loss"], rel=1e-6)
    assert history["val_loss"][-1] != pytest.approx(plain["loss"], rel=1e-3)
    assert history["val_accuracy"][-1] == plain["accuracy"]  # every row counts once
    with pytest.raises(ValueError, match="sample_weight"):
        _train(0, epochs=1, validation_data=(X_val, y_val, weights[:-1]))


def test_without_shuffle_the_rows_are_visited_in_order():
    """SGD with one row per batch: the result is the seed's update applied row after row."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((6, 2))
    y = rng.standard_normal(6)
    w0 = np.array([[0.5, -0.25]])
    results = []
    for seed in (1, 2):  # the generator does not matter without shuffling
        net = dp.Sequential(dp.Dense(2, 1, rng=rng, bias=False, dtype=np.float64))
        net[0].W.value[...] = w0
        dp.fit(
            net,
            dp.MeanSquaredError(),
            dp.SGD(net.parameters(), lr=0.1),
            X,
            y,
            epochs=1,
            batch_size=1,
            shuffle=False,
            rng=np.random.default_rng(seed),
            verbose=0,
        )
        results.append(net[0].W.value.copy())
    w = w0.copy()
    for x_n, y_n in zip(X, y, strict=True):
        w -= 0.1 * (w @ x_n - y_n) * x_n  # ∂L/∂W = (ŷ − y) xᵀ
    np.testing.assert_allclose(results[0], w, rtol=1e-12)
    np.testing.assert_array_equal(results[0], results[1])


def test_multi_label_accuracy_counts_rows_with_every_label_right():
    net = dp.Sequential(dp.Dense(3, 3, rng=np.random.default_rng(0), bias=False))
    net[0].W.value[...] = np.eye(3)  # logits = X: label k is predicted where X[:, k] > 0
    X = np.array([[1.0, -1.0, 2.0], [1.0, 1.0, -1.0], [-1.0, -1.0, -1.0], [2.0, 2.0, 2.0]])
    y = np.array([[1, 0, 1], [1, 0, 0], [0, 0, 0], [1, 1, 0]])  # rows 0 and 2 all right
    scores = dp.evaluate(net, dp.SigmoidBinaryCrossEntropy(), X, y)
    assert scores["accuracy"] == 0.5


def test_one_training_step_matches_the_plain_formulas(rng):
    """The fast path (flat buffers, reused storage, fused Adam) computes the textbook step."""
    net = dp.mlp([6, 8, 4], rng=rng)
    X = rng.standard_normal((10, 6)).astype(np.float32)
    y = rng.integers(0, 4, 10)
    W1, b1, W2, b2 = (p.value.astype(np.float64) for p in net.parameters())
    loss = dp.SoftmaxCrossEntropy()
    opt = dp.Adam(net.parameters(), lr=1e-2)
    train_step(net, loss, opt, X, loss.prepare_targets(y, 4))
    Z1 = X @ W1.T + b1
    A1 = np.maximum(Z1, 0)
    Z2 = A1 @ W2.T + b2
    P = np.exp(Z2 - Z2.max(1, keepdims=True))
    P /= P.sum(1, keepdims=True)
    D2 = (P - np.eye(4)[y]) / 10
    D1 = (D2 @ W2) * (Z1 > 0)
    grads = [D1.T @ X, D1.sum(0), D2.T @ A1, D2.sum(0)]
    for p, w, g in zip(net.parameters(), (W1, b1, W2, b2), grads, strict=True):
        m, v = 0.1 * g, 0.001 * g * g
        expected = w - 1e-2 * (m / 0.1) / (np.sqrt(v / 0.001) + 1e-8)
        np.testing.assert_allclose(p.value, expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(p.grad, g, rtol=1e-4, atol=1e-6)


def test_steady_state_step_allocates_nothing(rng):
    net = dp.mlp([64, 128, 64, 10], rng=rng)
    loss = dp.SoftmaxCrossEntropy()
    opt = dp.Adam(net.parameters())
    X = rng.standard_normal((1000, 64)).astype(np.float32)
    y = loss.prepare_targets(rng.integers(0, 10, 1000), 10)
    batches = Batches(X, y)
    order = rng.permutation(1000)
    with reusing(*net.workspaces(), loss.workspace):
        for start in (0, 100):  # warm up: storage is created on the first batches
            train_step(net, loss, opt, *batches.gather(order[start : start + 100]))
        tracemalloc.start()
        before = tracemalloc.take_snapshot()
        for start in range(200, 1000, 100):
            train_step(net, loss, opt, *batches.gather(order[start : start + 100]))
        after = tracemalloc.take_snapshot()
        tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    # a batch of inputs is 100 × 64 × 4 = 25.6 kB; the model 52 kB: nothing of that size remains
    assert grown < 4096, grown
    peak_growth = max(stat.size for stat in after.statistics("filename")) if grown else 0
    assert peak_growth < 1 << 20


def test_a_smaller_last_batch_reuses_the_storage_of_the_full_ones(rng):
    """The last batch of an epoch (or of a batched prediction) gets views, not new arrays."""
    net = dp.mlp([64, 128, 10], rng=rng)
    workspace = net[0].workspace
    x = rng.standard_normal((100, 64)).astype(np.float32)
    with reusing(*net.workspaces()):
        full = net[0].forward(x, training=True)
        tracemalloc.start()
        before = tracemalloc.take_snapshot()
        small = net[0].forward(x[:37], training=True)
        after = tracemalloc.take_snapshot()
        tracemalloc.stop()
        assert small.shape == (37, 128) and np.shares_memory(small, full)
        assert np.shares_memory(workspace.get("Z", (100, 128), np.float32), full)
    assert sum(stat.size_diff for stat in after.compare_to(before, "filename")) < 4096
    np.testing.assert_allclose(small, x[:37] @ net[0].W.value.T + net[0].b.value, rtol=1e-6)


# --- stopping, restoring, callbacks --------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("lr", [1e30, 1e39], ids=["huge weights", "weights beyond float32"])
def test_a_non_finite_loss_rolls_back_to_weights_whose_loss_is_finite(lr):
    rng = np.random.default_rng(0)
    X, y = _data(rng)
    net = dp.mlp([5, 16, 3], rng=rng)
    start = net.flat_values.copy()
    opt = dp.SGD(net.parameters(), lr=lr)
    with pytest.warns(
        RuntimeWarning,
        match=r"non-finite loss .* at epoch 1, batch 2: .*restored to its weights at the start of "
        r"training, the newest whose loss is finite",
    ):
        history = dp.fit(
            net, dp.SoftmaxCrossEntropy(), opt, X, y, epochs=3, batch_size=16, rng=rng, verbose=0
        )
    assert history.n_epochs == 0 and "epoch 1, batch 2" in history.stop_reason
    np.testing.assert_array_equal(net.flat_values, start)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_after_a_divergence_every_row_has_a_finite_loss():
    """SGD at lr 1e6: the weights before the failing batch give NaN for many rows already."""
    rng = np.random.default_rng(0)
    X, y = _data(rng, n=50)
    net = dp.mlp([5, 16, 3], rng=rng)
    loss = dp.SoftmaxCrossEntropy()
    with pytest.warns(RuntimeWarning, match="training stopped and the network was restored"):
        dp.fit(
            net,
            loss,
            dp.SGD(net.parameters(), lr=1e6),
            X,
            y,
            epochs=5,
            batch_size=5,
            rng=rng,
            verbose=0,
        )
    assert np.isfinite(dp.evaluate(net, loss, X, y)["loss"])
    assert np.isfinite(net.predict_logits(X)).all()


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize(("batch", "restored"), [(3, 2), (1, 1)])
def test_a_late_blow_up_keeps_the_newest_epoch_with_a_finite_loss(batch, restored):
    """Blowing up in epoch 3: after batch 1 the weights of epoch 2 still have a finite loss; at
    batch 1 they are the ones that failed, so those of epoch 1 are restored."""
    rng = np.random.default_rng(0)
    X, y = _data(rng, n=60)
    net = dp.mlp([5, 16, 3], rng=rng)
    saved = {}
    opt = dp.SGD(net.parameters(), lr=0.01)
    # the update after which the learning rate explodes: the next update diverges, and the
    # batch after it (epoch 3, batch `batch`) has a non-finite loss
    trigger = (2, 0) if batch == 3 else (1, 2)  # (epoch index, batch index), 4 batches an epoch

    class BlowUp(dp.Callback):
        def on_epoch_end(self, run, epoch, logs):
            saved[epoch + 1] = run.model.flat_values.copy()

        def on_batch_end(self, run, b, loss):
            if (run.epoch, b) == trigger:
                opt.lr = 1e30

    with pytest.warns(RuntimeWarning, match=rf"restored to its weights after epoch {restored}"):
        history = dp.fit(
            net,
            dp.SoftmaxCrossEntropy(),
            opt,
            X,
            y,
            epochs=5,
            batch_size=15,
            shuffle=False,
            rng=rng,
            verbose=0,
            callbacks=[BlowUp()],
        )
    assert f"at epoch 3, batch {batch}:" in history.stop_reason
    np.testing.assert_array_equal(net.flat_values, saved[restored])


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_a_non_finite_gradient_is_never_applied():
    # z = w x = 1e10 gives a finite loss, but ∂L/∂w = (z − y) x = 1e40 overflows float32
    net = dp.Sequential(dp.Dense(1, 1, rng=np.random.default_rng(0), bias=False))
    net[0].W.value[...] = 1e-20
    X = np.full((4, 1), 1e30, np.float32)
    with pytest.warns(RuntimeWarning, match=r"non-finite gradient \(norm inf, loss 5e\+19\)"):
        history = dp.fit(
            net,
            dp.MeanSquaredError(),
            dp.SGD(net.parameters()),
            X,
            np.zeros(4),
            epochs=1,
            batch_size=4,
            rng=np.random.default_rng(0),
            verbose=0,
        )
    assert net[0].W.value[0, 0] == np.float32(1e-20)
    assert "epoch 1, batch 1" in history.stop_reason


def unchanged(X, y):
    return X, y


@pytest.mark.parametrize(
    ("change", "kwargs", "message"),
    [
        (lambda X, y: (X[:-1], y), {}, r"different lengths: 199 rows in X .* 200 in y"),
        (
            lambda X, y: (np.where(np.arange(200)[:, None] == 7, np.nan, X), y),
            {},
            r"NaN or inf in X: 5 values in 1 row \(first in row 7\)",
        ),
        (
            lambda X, y: (X, np.where(np.arange(200) == 3, np.inf, y.astype(float))),
            {},
            r"NaN or inf in y: 1 value in 1 row \(first in row 3\)",
        ),
        (
            lambda X, y: (np.where(np.arange(200)[:, None] == 11, -np.inf, X), y),
            {},
            r"NaN or inf in X: 5 values in 1 row \(first in row 11\)",
        ),
        (lambda X, y: (X[:0], y[:0]), {}, "X is empty"),
        (lambda X, y: (X[:, :4], y), {}, r"X has 4 features .* expects 5"),
        (lambda X, y: (X, y + 1), {}, r"class indices must lie in \[0, 3\)"),
        (unchanged, {"batch_size": 0}, "batch_size must be >= 1, got 0"),
        (unchanged, {"batch_size": -5}, "batch_size must be >= 1, got -5"),
        (unchanged, {"epochs": -1}, "epochs must be >= 0, got -1"),
        (unchanged, {"validation_split": 1.0}, r"validation_split must be in \[0, 1\), got 1.0"),
    ],
)
def test_bad_input_is_refused_before_training(change, kwargs, message):
    rng = np.random.default_rng(0)
    X, y = _data(rng)
    net = dp.mlp([5, 16, 3], rng=rng)
    before = net.flat_values.copy()
    with pytest.raises(ValueError, match=message):
        dp.fit(
            net,
            dp.SoftmaxCrossEntropy(),
            dp.Adam(net.parameters()),
            *change(X, y),
            rng=rng,
            verbose=0,
            **kwargs,
        )
    np.testing.assert_array_equal(net.flat_values, before)


def test_huge_finite_inputs_are_not_taken_for_inf():
    """The finiteness check multiplies rows by 0: values near float32's max are not inf."""
    rng = np.random.default_rng(0)
    X, y = _data(rng)
    X[:, 0] = np.finfo(np.float32).max  # their sum would overflow float32
    net = dp.mlp([5, 16, 3], rng=rng)
    history = dp.fit(
        net, dp.SoftmaxCrossEntropy(), dp.SGD(net.parameters(), lr=0.1), X, y, epochs=0
    )
    assert len(history) == 0


# --- threads --------------------------------------------------------------------------------


def test_inference_from_several_threads_is_correct_and_leaves_no_reuse_behind():
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(0)
    net = dp.mlp([20, 64, 32, 5], rng=rng)
    loss = dp.SoftmaxCrossEntropy()
    inputs = [rng.standard_normal((5000 + 37 * i, 20)).astype(np.float32) for i in range(8)]
    expected = [dp.predict(net, loss, X, batch_size=512) for X in inputs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        for _ in range(5):
            results = list(pool.map(lambda X: dp.predict(net, loss, X, batch_size=512), inputs))
            for got, want in zip(results, expected, strict=True):
                np.testing.assert_array_equal(got, want)
    assert not any(ws.reuse for ws in net.workspaces())
    a = net.forward(inputs[0][:10])
    a_before = a.copy()
    net.forward(inputs[1][:10])
    np.testing.assert_array_equal(a, a_before)  # a forward pass hands out fresh arrays


def test_what_a_callback_predicts_during_fit_is_not_overwritten_later():
    kept = {}

    class Keep(dp.Callback):
        def on_epoch_end(self, run, epoch, logs):
            logits = run.model.predict_logits(run.X[:8])
            kept[epoch] = (logits, logits.copy())

    _train(0, epochs=3, callbacks=[Keep()])
    for logits, copy in kept.values():
        np.testing.assert_array_equal(logits, copy)
    assert not np.array_equal(kept[0][1], kept[2][1])  # the model did change meanwhile


def test_whole_sample_weights_train_as_repeated_rows():
    """One full batch: weights 0, 1, 2, 3 give what removing or repeating rows gives."""
    rng = np.random.default_rng(0)
    X, y = _data(rng, n=30)
    X = X.astype(np.float64)
    weights = rng.integers(0, 4, 30)

    def trained(X, y, **kwargs):
        net = dp.mlp([5, 8, 3], rng=np.random.default_rng(1), dtype=np.float64)
        net[0].l2 = 0.5  # the penalty is divided by Σ w, as the data term
        dp.fit(
            net,
            dp.SoftmaxCrossEntropy(),
            dp.Adam(net.parameters(), lr=0.01),
            X,
            y,
            epochs=20,
            batch_size=1000,
            rng=np.random.default_rng(2),
            verbose=0,
            **kwargs,
        )
        return net.flat_values

    weighted = trained(X, y, sample_weight=weights)
    repeated = trained(np.repeat(X, weights, axis=0), np.repeat(y, weights))
    np.testing.assert_allclose(weighted, repeated, rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="sample_weight must be >= 0"):
        trained(X, y, sample_weight=-weights)


def test_all_zero_sample_weights_are_refused_before_training():
    rng = np.random.default_rng(0)
    X, y = _data(rng)
    with pytest.raises(ValueError, match=r"sample_weight is 0 for all \d+ rows: nothing to learn"):
        _train(0, epochs=1, sample_weight=np.zeros(len(X)))


def test_a_regression_target_beyond_float32_says_so():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 3))
    y = np.ones(20)
    y[7] = 1e39  # finite in float64, inf in the model's float32
    net = dp.mlp([3, 1], rng=rng)
    opt = dp.SGD(net.parameters(), lr=0.1)
    with pytest.raises(ValueError, match=r"y has values beyond float32's range .*1e\+39"):
        dp.fit(net, dp.MeanSquaredError(), opt, X, y, epochs=1, verbose=0)


def test_train_rows_trains_on_those_rows_in_their_order():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((40, 3)), rng.integers(0, 2, 40)
    rows = rng.permutation(40)[:30]
    runs = []
    for X_in, y_in, keywords in ((X[rows], y[rows], {}), (X, y, {"train_rows": rows})):
        net = dp.mlp([3, 4, 2], rng=0, dtype=np.float64)
        dp.fit(
            net,
            dp.SoftmaxCrossEntropy(),
            dp.SGD(net.parameters(), lr=0.1),
            X_in,
            y_in,
            epochs=2,
            rng=1,
            verbose=0,
            shuffle=False,
            engine="reference",
            **keywords,
        )
        runs.append(net.flat_values.copy())
    np.testing.assert_array_equal(runs[0], runs[1])  # the same batches, without the copy
    net = dp.mlp([3, 4, 2], rng=0)
    opt = dp.SGD(net.parameters(), lr=0.1)
    with pytest.raises(ValueError, match=r"distinct indices in \[0, 40\), got 0 to 40"):
        dp.fit(net, dp.SoftmaxCrossEntropy(), opt, X, y, train_rows=[0, 40], verbose=0)
    with pytest.raises(ValueError, match="train_rows and validation_split cannot both"):
        dp.fit(
            net,
            dp.SoftmaxCrossEntropy(),
            opt,
            X,
            y,
            train_rows=rows,
            validation_split=0.1,
            verbose=0,
        )
