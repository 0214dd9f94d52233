"""Dropout and the L2 penalty: derived, checked by finite differences, trained with."""

import numpy as np
import pytest

import deltaprop as dp
from deltaprop import gradcheck
from support import classification_data


def test_dropout_keeps_the_expected_activation_and_is_the_identity_in_evaluation(rng):
    layer = dp.Dropout(0.3, rng=np.random.default_rng(1))
    x = np.full((2000, 50), 2.0)
    a = layer.forward(x, training=True)
    dropped = np.mean(a == 0)
    assert dropped == pytest.approx(0.3, abs=0.01)
    np.testing.assert_allclose(a[a != 0], 2.0 / 0.7)  # kept units scaled by 1 / (1 − p)
    assert a.mean() == pytest.approx(2.0, rel=0.01)  # E[a] = z
    assert layer.forward(x) is x  # evaluation: the identity


def test_dropout_backward_applies_the_mask_to_the_gradient(rng):
    layer = dp.Dropout(0.5, rng=np.random.default_rng(2))
    x = rng.standard_normal((6, 8))
    a = layer.forward(x, training=True)
    g = rng.standard_normal((6, 8))
    np.testing.assert_array_equal(layer.backward(g), np.where(a != 0, g * 2.0, 0.0))


def test_dropout_passes_the_gradient_check_with_its_mask_held_fixed(rng):
    report = gradcheck.check_layer(
        dp.Dropout(0.4, rng=np.random.default_rng(3)), rng.random((5, 6))
    )
    assert report.ok, str(report)
    model = dp.Sequential(
        dp.Dense(4, 8, rng=rng),
        dp.Tanh(),
        dp.Dropout(0.5, rng=np.random.default_rng(4)),
        dp.Dense(8, 3, rng=rng),
    )
    X, y = rng.standard_normal((6, 4)), rng.integers(0, 3, 6)
    report = gradcheck.check_model(model, dp.SoftmaxCrossEntropy(), X, y)
    assert report.ok, str(report)


def test_dropout_refuses_bad_probabilities_and_training_without_a_generator(rng):
    with pytest.raises(ValueError, match=r"Dropout: p must be in \[0, 1\), got 1.0"):
        dp.Dropout(1.0)
    with pytest.raises(TypeError, match="Dropout: p must be a number"):
        dp.Dropout("0.3")
    with pytest.raises(RuntimeError, match="needs a generator .* or train with dp.fit"):
        dp.Dropout(0.3).forward(np.ones((2, 2)), training=True)


def _dropout_run(epochs, tmp_path, *, own_rng, resume=False):
    X, y = classification_data(np.random.default_rng(1), n=80)
    rng = np.random.default_rng(0)
    drop = dp.Dropout(0.3, rng=np.random.default_rng(9) if own_rng else None)
    net = dp.Sequential(dp.Dense(5, 16, rng=rng), dp.ReLU(), drop, dp.Dense(16, 3, rng=rng))
    path = tmp_path / f"c-{own_rng}.safetensors"
    dp.fit(
        net,
        dp.SoftmaxCrossEntropy(),
        dp.Adam(net.parameters(), lr=0.01),
        X,
        y,
        epochs=epochs,
        batch_size=16,
        rng=np.random.default_rng(5),
        verbose=0,
        callbacks=[dp.ModelCheckpoint(path)],
        resume_from=path if resume else None,
    )
    return net.flat_values.copy()


@pytest.mark.parametrize("own_rng", [False, True], ids=["fit's generator", "its own generator"])
def test_resume_with_dropout_is_bit_exact(tmp_path, own_rng):
    for name in ("full", "part"):
        (tmp_path / name).mkdir()
    full = _dropout_run(4, tmp_path / "full", own_rng=own_rng)
    _dropout_run(2, tmp_path / "part", own_rng=own_rng)
    resumed = _dropout_run(4, tmp_path / "part", own_rng=own_rng, resume=True)
    np.testing.assert_array_equal(resumed, full)


def test_dropout_saves_loads_and_predicts_in_evaluation_mode(tmp_path, rng):
    net = dp.Sequential(dp.Dense(3, 6, rng=rng), dp.Dropout(0.5), dp.Dense(6, 2, rng=rng))
    dp.save(net, tmp_path / "d.safetensors")
    loaded, _ = dp.load(tmp_path / "d.safetensors")
    assert "(1): Dropout(p=0.5)" in repr(loaded)
    X = rng.standard_normal((7, 3))
    np.testing.assert_array_equal(loaded.predict_logits(X), net.predict_logits(X))
    rows = np.concatenate([net.predict_logits(X[i : i + 1]) for i in range(7)])
    np.testing.assert_allclose(net.predict_logits(X), rows, rtol=1e-6)  # no batch dependence


# --- the L2 penalty ------------------------------------------------------------------------


def test_the_l2_penalty_is_half_lambda_w_squared_over_the_normalizer(rng):
    """One step's gradient equals central differences of (Σ w ℓ + ½ λ ‖W‖²) / Σ w."""
    net = dp.Sequential(
        dp.Dense(3, 4, rng=rng, dtype=np.float64, l2=0.7),
        dp.Tanh(),
        dp.Dense(4, 2, rng=rng, dtype=np.float64, l2=0.2),
    )
    loss = dp.SoftmaxCrossEntropy()
    X, y = rng.standard_normal((5, 3)), rng.integers(0, 2, 5)
    w = np.array([1.0, 2.0, 0.0, 0.5, 1.5])
    targets = loss.prepare_targets(y, 2)

    def objective():
        data = loss.forward_prepared(net.forward(X), targets, w)
        return data + net.penalty() / loss.normalizer

    opt = dp.SGD(net.parameters(), lr=1e-12)  # a negligible step: only the gradients matter
    from deltaprop.training.loop import train_step

    value, _, _ = train_step(net, loss, opt, X, targets, w)
    assert value == pytest.approx(objective(), rel=1e-10)
    for p in net.parameters():
        numeric = gradcheck.numeric_gradient(objective, p.value)
        assert gradcheck.relative_error(p.grad, numeric) < 1e-6, p.name
    assert net[0].penalty() == pytest.approx(0.35 * np.sum(net[0].W.value ** 2))
    assert "l2=0.7" in repr(net[0]) and "l2" not in repr(dp.Dense(2, 2, rng=rng))


def test_trace_shows_the_l2_term_of_each_gradient(rng):
    net = dp.Sequential(
        dp.Dense(3, 4, rng=rng, dtype=np.float64, l2=0.6),
        dp.ReLU(),
        dp.Dense(4, 1, rng=rng, dtype=np.float64),
    )
    loss = dp.SigmoidBinaryCrossEntropy()
    X, y = rng.standard_normal((5, 3)), np.array([0, 1, 1, 0, 1])
    record = dp.trace(net, loss, X, y)
    first, second = record.layers
    np.testing.assert_allclose(first.penalty_grads["W"], 0.6 * net[0].W.value / 5, rtol=1e-12)
    assert set(first.penalty_grads) == {"W"} and second.penalty_grads == {}
    data_term = first.delta.T @ first.a_prev  # the seed's Σ δ a_prevᵀ
    np.testing.assert_allclose(first.dW, data_term + first.penalty_grads["W"], rtol=1e-12)
    np.testing.assert_allclose(second.dW, second.delta.T @ second.a_prev, rtol=1e-12)
    np.testing.assert_allclose(net[0].W.grad, first.dW)  # the gradients fit would use

    def objective():
        return loss.forward(net.forward(X), y) + net.penalty() / 5

    assert record.loss == pytest.approx(objective(), rel=1e-12)
    numeric = gradcheck.numeric_gradient(objective, net[0].W.value)
    assert gradcheck.relative_error(first.dW, numeric) < 1e-7
    assert "= data term + L2 term penalty_grads['W']" in str(record)


def test_l2_shrinks_the_weights(rng):
    X, y = classification_data(np.random.default_rng(1))
    norms = []
    for l2 in (0.0, 5.0):
        net = dp.mlp([5, 16, 3], rng=np.random.default_rng(0))
        net[0].l2 = net[2].l2 = l2
        dp.fit(
            net,
            dp.SoftmaxCrossEntropy(),
            dp.Adam(net.parameters(), lr=0.01),
            X,
            y,
            epochs=30,
            rng=np.random.default_rng(0),
            verbose=0,
        )
        norms.append(float(np.linalg.norm(net[0].W.value)))
    assert norms[1] < 0.7 * norms[0]
    with pytest.raises(ValueError, match="Dense: l2 must be >= 0, got -1.0"):
        dp.Dense(2, 2, rng=rng, l2=-1)
