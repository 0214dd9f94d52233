"""dp.explain: the seed's derivation on live numbers equals what the engine computes."""

import numpy as np
import pytest

import deltaprop as dp
from deltaprop.nn import formula_text as formulas


def _seed_network(rng):
    return dp.mlp([3, 4, 1], rng=rng, dtype=np.float64)


def test_the_values_are_the_engines_for_one_sample(rng):
    model = _seed_network(rng)
    x, y = np.array([[0.5, -1.2, 2.0]]), np.array([1.0])
    explanation = dp.explain(model, dp.SigmoidBinaryCrossEntropy(), x, y)
    W1, b1, W2, b2 = (p.value for p in model.parameters())
    z1 = W1 @ x[0] + b1
    a1 = np.maximum(z1, 0)
    z2 = W2 @ a1 + b2
    y_hat = 1 / (1 + np.exp(-z2))
    np.testing.assert_allclose(explanation.value("z1"), z1, rtol=1e-12)
    np.testing.assert_allclose(explanation.value("a1"), a1, rtol=1e-12)
    np.testing.assert_allclose(explanation.value("y_hat"), y_hat, rtol=1e-12)
    # the engine's own backward on the model itself
    record = dp.trace(model, dp.SigmoidBinaryCrossEntropy(), x, y)
    np.testing.assert_allclose(explanation.value("delta2"), record.layers[1].delta[0], rtol=1e-12)
    np.testing.assert_allclose(explanation.value("dW2"), record.layers[1].dW, rtol=1e-12)
    np.testing.assert_allclose(explanation.value("dW1"), record.layers[0].dW, rtol=1e-12)
    np.testing.assert_allclose(explanation.value("db1"), record.layers[0].db, rtol=1e-12)
    # and the seed's formulas, written out here
    delta2 = y_hat - 1.0
    np.testing.assert_allclose(explanation.value("delta2"), delta2, rtol=1e-12)
    np.testing.assert_allclose(explanation.value("dW2"), np.outer(delta2, a1), rtol=1e-12)
    np.testing.assert_allclose(explanation.value("dL_da1"), W2.T @ delta2, rtol=1e-12)
    np.testing.assert_allclose(explanation.value("local1"), (z1 > 0).astype(float))
    delta1 = (W2.T @ delta2) * (z1 > 0)
    np.testing.assert_allclose(explanation.value("delta1"), delta1, rtol=1e-12)
    np.testing.assert_allclose(explanation.value("dW1"), np.outer(delta1, x[0]), rtol=1e-12)
    np.testing.assert_allclose(explanation.value("product"), delta2, rtol=1e-12)
    assert explanation.ok and explanation.worst < 1e-6
    assert set(explanation.checks) == {
        *("dL_dy_hat", "dy_hat_dz", "product", "delta2", "dW2", "db2"),
        *("dL_da1", "local1", "delta1", "dW1", "db1"),
    }


def test_the_update_step_moves_every_parameter_against_its_gradient(rng):
    net = _seed_network(rng)
    X, before = rng.standard_normal((4, 3)), net.flat_values.copy()
    explanation = dp.explain(net, dp.SigmoidBinaryCrossEntropy(), X, [0.0, 1.0, 1.0, 0.0], lr=0.5)
    for layer in (1, 2):
        for name in ("W", "b"):
            np.testing.assert_allclose(
                explanation.value(f"{name}{layer}_updated"),
                explanation.value(f"{name}{layer}") - 0.5 * explanation.value(f"d{name}{layer}"),
                rtol=1e-12,
            )
    assert float(explanation.value("L_updated")) < explanation.loss
    np.testing.assert_array_equal(net.flat_values, before)  # the caller's model is untouched
    assert "W⁽¹⁾ ← W⁽¹⁾ − η ∂L/∂W⁽¹⁾" in explanation.to_text()
    with pytest.raises(ValueError, match="explain: lr must be > 0, got 0"):
        dp.explain(net, dp.SigmoidBinaryCrossEntropy(), X, [0.0, 1.0, 1.0, 0.0], lr=0)


def test_the_steps_follow_the_seed(rng):
    explanation = dp.explain(
        _seed_network(rng), dp.SigmoidBinaryCrossEntropy(), rng.standard_normal((1, 3)), [0.0]
    )
    numbered = [(s.number, s.title) for s in explanation.steps if s.number is not None]
    assert numbered == [
        (1, "Gradient at output (layer 2 error)"),
        (2, "Gradients for layer 2 parameters (W⁽²⁾, b⁽²⁾)"),
        (3, "Propagate gradient to hidden layer 1"),
        (4, "Gradient through activation (ReLU)"),
        (5, "Gradients for layer 1 parameters (W⁽¹⁾, b⁽¹⁾)"),
    ]
    kinds = [s.kind for s in explanation.steps]
    assert kinds[:3] == ["chain-rule", "forward", "loss"]
    assert kinds[-2:] == ["general-rule", "update"]
    text = explanation.to_text()
    assert "ReLU′(z⁽¹⁾) = 1[z > 0]" in text and "a closed gate passes no error back" in text
    assert "(W⁽²⁾)ᵀ δ⁽²⁾" in text and "δ⁽²⁾ (a⁽¹⁾)ᵀ" in text


def test_a_batch_shows_the_per_sample_outer_products_and_their_mean(rng):
    model = dp.mlp([4, 8, 8, 3], rng=rng, activation=dp.Tanh, dtype=np.float64)
    X, y = rng.standard_normal((3, 4)), np.array([0, 2, 1])
    explanation = dp.explain(model, dp.SoftmaxCrossEntropy(), X, y)
    assert explanation.ok, explanation.to_text()
    for layer in (1, 2, 3):
        outers = [explanation.value(f"outer{layer}_{n}") for n in (1, 2, 3)]
        np.testing.assert_allclose(np.mean(outers, axis=0), explanation.value(f"dW{layer}"))
    # each row of δ is that sample's own ŷ − y; the code's D divides it by N
    y_hat = explanation.value("y_hat")
    np.testing.assert_allclose(explanation.value("delta3"), y_hat - np.eye(3)[y], rtol=1e-12)
    np.testing.assert_allclose(explanation.value("db3"), np.mean(y_hat - np.eye(3)[y], axis=0))
    assert [s.number for s in explanation.steps if s.number] == list(range(1, 9))


def test_the_single_neuron_gives_a_minus_y_times_x():
    x, y, w, b = 1.5, 1.0, 0.8, -0.2
    explanation = dp.explain_neuron(x, y, w=w, b=b)
    a = 1 / (1 + np.exp(-(w * x + b)))
    assert float(explanation.value("a")) == pytest.approx(a, rel=1e-12)
    assert float(explanation.value("dW1")) == pytest.approx((a - y) * x, rel=1e-12)
    assert float(explanation.value("db1")) == pytest.approx(a - y, rel=1e-12)
    assert float(explanation.value("da_dz")) == pytest.approx(a * (1 - a), rel=1e-12)
    assert float(explanation.value("dL_da")) == pytest.approx(-y / a + (1 - y) / (1 - a))
    assert float(explanation.value("product")) == pytest.approx((a - y) * x, rel=1e-12)
    assert explanation.ok
    assert set(explanation.checks) == {
        "dz_dw",
        "da_dz",
        "dL_da",
        "product",
        "a_minus_y_x",
        "dW1",
        "db1",
    }


@pytest.mark.parametrize(
    ("loss", "targets"),
    [
        (dp.SigmoidBinaryCrossEntropy(), np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])),
        (dp.SoftmaxCrossEntropy(), np.array([2, 0, 1])),
        (dp.MeanSquaredError(), np.array([[0.3, -1.0], [2.0, 0.5], [-0.2, 0.1]])),
        (dp.PoissonLoss(), np.array([[0.0, 3.0], [1.0, 2.0], [5.0, 0.0]])),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, dp.Loss) else "",
)
def test_each_losss_two_factors_multiply_to_its_fused_delta(rng, loss, targets):
    k = 3 if isinstance(loss, dp.SoftmaxCrossEntropy) else 2
    logits = rng.standard_normal((3, k))
    loss.forward(logits, targets)
    delta = loss.backward() * 3  # per sample: undo the batch mean
    y_hat = loss.predict(logits)
    prepared = loss.prepare_targets(targets, k)
    Y = np.eye(k)[prepared] if prepared.ndim == 1 else prepared
    dl, dyz = loss.derivation.factors(y_hat, Y)
    product = np.einsum("nk,nkj->nj", dl, dyz) if dyz.ndim == 3 else dl * dyz
    np.testing.assert_allclose(product, delta, rtol=1e-10, atol=1e-12)


def test_every_element_wise_layer_names_its_derivative():
    for cls in (dp.ReLU, dp.LeakyReLU, dp.Sigmoid, dp.Tanh, dp.GELU, dp.Softplus, dp.Identity):
        assert isinstance(cls.formula, formulas.ActivationFormula), cls
    assert dp.Dropout.formula is formulas.DROPOUT
    assert dp.Softmax.formula is None and dp.Dense.formula is None and dp.Dense.affine


def test_dropout_normalization_l2_and_a_standalone_output_activation_are_explained(rng):
    model = dp.Sequential(
        dp.Dense(3, 5, rng=rng, l2=0.3),
        dp.BatchNorm(5),
        dp.ReLU(),
        dp.Dropout(0.3),
        dp.Dense(5, 4, rng=rng, bias=False),
        dp.LayerNorm(4),
        dp.Tanh(),
        dp.Dense(4, 2, rng=rng),
        dp.Sigmoid(),
    )
    X, y = rng.standard_normal((4, 3)), rng.random((4, 2))
    before = model.flat_values.copy()
    explanation = dp.explain(model, dp.MeanSquaredError(), X, y)
    assert explanation.ok, explanation.to_text()
    np.testing.assert_array_equal(model.flat_values, before)  # a copy was explained
    assert int(model[1].num_batches_tracked) == 0
    # the bias before batch norm has gradient 0, checked within the differences' resolution
    np.testing.assert_allclose(explanation.value("db1"), 0.0, atol=1e-12)
    np.testing.assert_allclose(
        explanation.value("l2_1"), 0.3 * model[0].W.value.astype(np.float64) / 4, rtol=1e-6
    )
    # the sigmoid output is the model's, not the loss's: two factors, no cancellation
    text = explanation.to_text()
    assert "nothing cancels" in text and "∂a⁽⁵⁾/∂z⁽⁵⁾ = a(1 − a)" in text
    assert "Gradient through activation (dropout ∘ ReLU)" in text
    assert "No activation after layer 1" in text  # Dense then BatchNorm
    with pytest.raises(ValueError, match=r"BatchNorm\(5\): a training batch needs at least 2"):
        dp.explain(model, dp.MeanSquaredError(), X[:1], y[:1])


def test_a_wrong_backward_is_caught(rng):
    class Wrong(dp.Dense):
        def backward(self, grad_out):
            return super().backward(grad_out) * 1.1

    model = dp.Sequential(
        dp.Dense(3, 4, rng=rng), dp.Tanh(), Wrong(4, 4, rng=rng), dp.Tanh(), dp.Dense(4, 1, rng=rng)
    )
    explanation = dp.explain(
        model, dp.SigmoidBinaryCrossEntropy(), rng.standard_normal((2, 3)), [1, 0]
    )
    assert not explanation.ok
    failing = {k for k, e in explanation.checks.items() if e > 1e-6}
    assert failing >= {"dL_da1", "delta1", "dW1", "db1"} and "dW3" not in failing
    assert "DISAGREE" in explanation.to_text() and "✗" in explanation.to_text()


def test_bad_arguments_are_named():
    model = dp.mlp([3, 2], rng=np.random.default_rng(0))
    with pytest.raises(
        TypeError, match="explain: model must be a Layer such as .*, got the string 'net'"
    ):
        dp.explain("net", dp.MeanSquaredError(), np.ones((1, 3)), [[0, 0]])
    with pytest.raises(
        TypeError,
        match=r"explain: loss must be a Loss .* got the class MeanSquaredError: create one",
    ):
        dp.explain(model, dp.MeanSquaredError, np.ones((1, 3)), [[0, 0]])
    with pytest.raises(dp.ShapeError, match="X .* 4 features"):
        dp.explain(model, dp.MeanSquaredError(), np.ones((1, 4)), [[0, 0]])
    with pytest.raises(ValueError, match="explain: tolerance must be > 0, got 0"):
        dp.explain(model, dp.MeanSquaredError(), np.ones((1, 3)), [[0, 0]], tolerance=0)


def test_the_shown_factors_are_checked_too(rng):
    """Step 1's ∂L/∂ŷ and ∂ŷ/∂z are checked against central differences of the loss written in
    ŷ and of the engine's output activation: a wrong factor is caught."""
    import dataclasses

    def wrong_factors(y_hat, y):
        dl, dyz = formulas.SIGMOID_BCE.factors(y_hat, y)
        return dl, dyz * 1.01

    class Mistaken(dp.SigmoidBinaryCrossEntropy):
        derivation = dataclasses.replace(formulas.SIGMOID_BCE, factors=wrong_factors)

    X = rng.standard_normal((2, 3))
    explanation = dp.explain(_seed_network(rng), Mistaken(), X, [1.0, 0.0])
    failing = {k for k, e in explanation.checks.items() if e > 1e-6}
    assert failing == {"dy_hat_dz", "product"}  # the engine's own δ still agrees


def test_trace_names_the_per_sample_delta_apart_from_the_batch_mean_one(rng):
    net = _seed_network(rng)
    X, y = rng.standard_normal((4, 3)), np.array([0.0, 1.0, 1.0, 0.0])
    t = dp.trace(net, dp.SigmoidBinaryCrossEntropy(), X, y).layers[-1]
    y_hat = 1 / (1 + np.exp(-t.z[:, 0]))
    np.testing.assert_allclose(t.delta_per_sample[:, 0], y_hat - y, rtol=1e-6)  # the seed's δ
    np.testing.assert_allclose(t.delta[:, 0], (y_hat - y) / 4, rtol=1e-6)  # the code's D
