"""A loss of the user's own: the value and the gradient they give, the batch mean owned by the
base, checked by central differences, trained by fit, and refused where it cannot go."""

import numpy as np
import pytest

import deltaprop as dp
from deltaprop.errors import ForwardNotCalledError, ShapeError


def huber(Z, Y):
    r = np.abs(Z - Y)
    return np.sum(np.where(r <= 1, 0.5 * r**2, r - 0.5), axis=1)


def huber_gradient(Z, Y):
    return np.clip(Z - Y, -1.0, 1.0)


def test_forward_is_the_mean_and_backward_the_gradient_over_n():
    loss = dp.CustomLoss(huber, huber_gradient)
    Z = np.array([[0.5], [3.0], [-2.0], [0.0]])
    y = np.array([0.0, 0.0, 0.0, 0.25])
    # ℓ: ½·0.25, 3 − ½, 2 − ½, ½·0.0625 → mean (0.125 + 2.5 + 1.5 + 0.03125) / 4
    assert loss.forward(Z, y) == pytest.approx((0.125 + 2.5 + 1.5 + 0.03125) / 4)
    np.testing.assert_allclose(loss.backward(), np.array([[0.5], [1.0], [-1.0], [-0.25]]) / 4)
    weighted = loss.forward(Z, y, sample_weight=[1.0, 0.0, 0.0, 3.0])
    assert weighted == pytest.approx((0.125 + 3 * 0.03125) / 4)
    np.testing.assert_allclose(loss.backward()[:, 0], [0.5 / 4, 0, 0, 3 * -0.25 / 4])


def test_gradcheck_compares_the_given_gradient_with_central_differences(rng):
    net = dp.mlp([3, 5, 2], rng=rng, dtype=np.float64, activation=dp.Tanh)
    X, Y = rng.standard_normal((6, 3)), 3 * rng.standard_normal((6, 2))
    good = dp.gradcheck.check_model(net, dp.CustomLoss(huber, huber_gradient), X, Y)
    assert good.ok and good.worst < 1e-6
    wrong = dp.CustomLoss(huber, lambda Z, Y: 2 * huber_gradient(Z, Y))  # a factor 2 off
    assert not dp.gradcheck.check_model(net, wrong, X, Y).ok


def test_fit_trains_with_it_and_classification_counts_accuracy(rng):
    def cross_entropy(Z, Y):  # softmax cross-entropy written by hand
        Z = Z - Z.max(axis=1, keepdims=True)
        return -np.sum(Y * (Z - np.log(np.exp(Z).sum(axis=1, keepdims=True))), axis=1)

    def softmax(Z):
        E = np.exp(Z - Z.max(axis=1, keepdims=True))
        return E / E.sum(axis=1, keepdims=True)

    loss = dp.CustomLoss(cross_entropy, lambda Z, Y: softmax(Z) - Y, softmax, task="classification")
    X = rng.standard_normal((200, 2))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    net = dp.mlp([2, 8, 2], rng=0)
    history = dp.fit(
        net, loss, dp.Adam(net.parameters(), lr=0.05), X, y, epochs=20, rng=1, verbose=0
    )
    assert history["accuracy"][-1] >= 0.95 and history["loss"][-1] < history["loss"][0]
    probabilities = dp.predict(net, loss, X)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)


def test_bad_functions_and_results_are_named():
    with pytest.raises(TypeError, match="CustomLoss: gradient must be a function, got int"):
        dp.CustomLoss(huber, 3)
    with pytest.raises(ValueError, match="task must be one of"):
        dp.CustomLoss(huber, huber_gradient, task="ranking")
    loss = dp.CustomLoss(lambda Z, Y: np.sum(Z, axis=1, keepdims=True), huber_gradient)
    with pytest.raises(ShapeError, match=r"value\(...\) returned shape \(2, 1\), expected \(2,\)"):
        loss.forward(np.zeros((2, 1)), np.zeros(2))
    nan = dp.CustomLoss(huber, lambda Z, Y: Z * np.nan)
    nan.forward(np.zeros((2, 1)), np.zeros(2))
    with pytest.raises(ValueError, match="gradient"):
        nan.backward()
    with pytest.raises(ForwardNotCalledError, match="before forward"):
        dp.CustomLoss(huber, huber_gradient).backward()


def test_explain_refuses_it_and_points_to_gradcheck(rng):
    net = dp.mlp([3, 2, 1], rng=rng, dtype=np.float64)
    with pytest.raises(ValueError, match="check its gradient with dp.gradcheck.check_model"):
        dp.explain(net, dp.CustomLoss(huber, huber_gradient), np.ones((1, 3)), [0.0])
