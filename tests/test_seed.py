"""The seed's derivation as tests: every number below is worked out by hand from its formulas."""

import math

import numpy as np
import pytest

import deltaprop as dp


def sigmoid(z: float) -> float:
    return 1 / (1 + math.exp(-z))


def dense(in_f, out_f, W, b):
    layer = dp.Dense(in_f, out_f, rng=np.random.default_rng(0), dtype=np.float64)
    layer.W.value[...] = W
    layer.b.value[...] = b
    return layer


def test_single_neuron_gradient_is_a_minus_y_times_x():
    # z = w x + b = 0.5 * 2 + 0.1 = 1.1;  a = σ(1.1);  ∂L/∂w = (a − y) x
    w, b, x, y = 0.5, 0.1, 2.0, 1.0
    a = sigmoid(w * x + b)
    assert a == pytest.approx(0.7502601055951177, abs=1e-15)
    neuron = dp.Sequential(dense(1, 1, [[w]], [b]))
    loss = dp.SigmoidBinaryCrossEntropy()
    L = loss.forward(neuron.forward(np.array([[x]]), training=True), np.array([y]))
    neuron.backward(loss.backward())
    assert L == pytest.approx(-math.log(a), abs=1e-14)
    assert neuron[0].W.grad[0, 0] == pytest.approx((a - y) * x, abs=1e-14)
    assert neuron[0].W.grad[0, 0] == pytest.approx(-0.4994797888097646, abs=1e-14)
    assert neuron[0].b.grad[0] == pytest.approx(a - y, abs=1e-14)


@pytest.fixture
def seed_network():
    # W1 (2, 3), b1 (2,), W2 (1, 2), b2 (1,): the seed's 2-layer net, ReLU hidden, sigmoid out
    W1 = [[0.1, -0.2, 0.3], [-0.4, 0.5, 0.6]]
    b1 = [0.05, -0.1]
    W2 = [[0.8, -0.5]]
    b2 = [0.2]
    return dp.Sequential(dense(3, 2, W1, b1), dp.ReLU(), dense(2, 1, W2, b2))


def test_two_layer_network_step_by_step_one_sample(seed_network):
    net = seed_network
    x = np.array([[1.0, -2.0, 0.5]])
    y = np.array([0.0])
    loss = dp.SigmoidBinaryCrossEntropy()
    t = dp.trace(net, loss, x, y)
    layer1, layer2 = t.layers
    # forward: z1 = W1 x + b1 = [0.1 + 0.4 + 0.15 + 0.05, -0.4 - 1.0 + 0.3 - 0.1] = [0.7, -1.2]
    np.testing.assert_allclose(layer1.z, [[0.7, -1.2]], atol=1e-15)
    np.testing.assert_allclose(layer1.a, [[0.7, 0.0]], atol=1e-15)  # ReLU closes gate 2
    # z2 = W2 a1 + b2 = 0.8 * 0.7 + 0.2 = 0.76;  ŷ = σ(0.76)
    np.testing.assert_allclose(layer2.z, [[0.76]], atol=1e-15)
    y_hat = 0.6813537337890256
    assert sigmoid(0.76) == pytest.approx(y_hat, abs=1e-15)
    # Step 1: δ2 = ŷ − y
    np.testing.assert_allclose(layer2.delta, [[y_hat - 0.0]], atol=1e-15)
    # Step 2: ∂L/∂W2 = δ2 a1ᵀ, shape (n_out, n_hidden) = (1, 2);  ∂L/∂b2 = δ2
    assert layer2.dW.shape == (1, 2)
    np.testing.assert_allclose(layer2.dW, [[0.4769476136523179, 0.0]], atol=1e-15)
    np.testing.assert_allclose(layer2.db, [y_hat], atol=1e-15)
    # Step 3: ∂L/∂a1 = W2ᵀ δ2 = [0.8 δ2, -0.5 δ2]
    np.testing.assert_allclose(
        layer2.grad_a_prev, [[0.5450829870312205, -0.3406768668945128]], atol=1e-15
    )
    # Step 4: δ1 = (W2ᵀ δ2) ⊙ 1[z1 > 0] = [0.545..., 0]
    np.testing.assert_allclose(layer1.delta, [[0.5450829870312205, 0.0]], atol=1e-15)
    # Step 5: ∂L/∂W1 = δ1 xᵀ, ∂L/∂b1 = δ1
    np.testing.assert_allclose(
        layer1.dW,
        [[0.5450829870312205, -1.090165974062441, 0.27254149351561024], [0, 0, 0]],
        atol=1e-15,
    )
    np.testing.assert_allclose(layer1.db, [0.5450829870312205, 0.0], atol=1e-15)
    # the model's own parameter gradients are the ones traced
    np.testing.assert_array_equal(net[0].W.grad, layer1.dW)


def test_two_layer_network_batch_is_mean_of_outer_products(seed_network):
    net = seed_network
    X = np.array([[1.0, -2.0, 0.5], [0.3, 0.4, -0.2], [-1.0, 1.5, 2.0]])
    y = np.array([0.0, 1.0, 1.0])
    loss = dp.SigmoidBinaryCrossEntropy()
    t = dp.trace(net, loss, X, y)
    W1, b1 = net[0].W.value, net[0].b.value
    W2, b2 = net[2].W.value, net[2].b.value
    N = len(X)
    dW1 = np.zeros_like(W1)
    dW2 = np.zeros_like(W2)
    db1 = np.zeros_like(b1)
    for x_n, y_n in zip(X, y, strict=True):  # the seed's per-sample formulas, one column at a time
        z1 = W1 @ x_n + b1
        a1 = np.maximum(z1, 0)
        z2 = W2 @ a1 + b2
        delta2 = np.array([sigmoid(z2[0]) - y_n])  # Step 1
        dW2 += np.outer(delta2, a1)  # Step 2
        delta1 = (W2.T @ delta2) * (z1 > 0)  # Steps 3 and 4
        dW1 += np.outer(delta1, x_n)  # Step 5
        db1 += delta1
    np.testing.assert_allclose(t.layers[1].dW, dW2 / N, atol=1e-14)
    np.testing.assert_allclose(t.layers[0].dW, dW1 / N, atol=1e-14)
    np.testing.assert_allclose(t.layers[0].db, db1 / N, atol=1e-14)
    # the loss owns the 1/N: the output delta is (ŷ − y) / N
    y_hat = 1 / (1 + np.exp(-(np.maximum(X @ W1.T + b1, 0) @ W2.T + b2)))
    np.testing.assert_allclose(t.layers[1].delta, (y_hat - y[:, None]) / N, atol=1e-15)
