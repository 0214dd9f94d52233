"""Table-driven finite-difference checks: every layer, every loss, one output and several."""

import numpy as np
import pytest

import deltaprop as dp
from deltaprop import gradcheck

TOL = 1e-6


def away_from_kinks(rng, shape):
    """Inputs with |x| >= 0.1, so ReLU-like kinks are never straddled by ±eps."""
    x = rng.standard_normal(shape)
    return np.sign(x) * (0.1 + np.abs(x))


LAYERS = {
    "Dense": lambda rng: dp.Dense(4, 3, rng=rng, dtype=np.float64),
    "Dense(bias=False)": lambda rng: dp.Dense(4, 3, rng=rng, bias=False),
    "Dense(he_normal)": lambda rng: dp.Dense(4, 3, rng=rng, init="he_normal"),
    "Identity": lambda rng: dp.Identity(),
    "ReLU": lambda rng: dp.ReLU(),
    "LeakyReLU": lambda rng: dp.LeakyReLU(0.1),
    "Sigmoid": lambda rng: dp.Sigmoid(),
    "Tanh": lambda rng: dp.Tanh(),
    "GELU": lambda rng: dp.GELU(),
    "Softplus": lambda rng: dp.Softplus(),
    "Softmax": lambda rng: dp.Softmax(),
    "Sequential": lambda rng: dp.Sequential(
        dp.Dense(4, 5, rng=rng), dp.Tanh(), dp.Dense(5, 3, rng=rng)
    ),
}


@pytest.mark.parametrize("name", list(LAYERS))
def test_layer_gradients_match_finite_differences(name, rng):
    layer = LAYERS[name](rng)
    x = away_from_kinks(rng, (6, 4))
    report = gradcheck.check_layer(layer, x)
    assert report.ok, str(report)
    assert report.worst < TOL
    assert "input" in report.errors
    assert len(report.errors) == len(layer.parameters()) + 1


def _targets(kind, rng, n, k):
    if kind == "binary":
        return (rng.random((n, k)) > 0.5).astype(float) if k > 1 else rng.integers(0, 2, n)
    if kind == "soft-binary":
        return rng.random((n, k))
    if kind == "labels":
        return rng.integers(0, k, n)
    if kind == "probabilities":
        p = rng.random((n, k))
        return p / p.sum(axis=1, keepdims=True)
    if kind == "counts":
        return rng.poisson(2.0, (n, k)).astype(float)
    return rng.standard_normal((n, k)) if k > 1 else rng.standard_normal(n)


LOSSES = [
    ("SigmoidBCE-1", dp.SigmoidBinaryCrossEntropy, "binary", 1),
    ("SigmoidBCE-multilabel", dp.SigmoidBinaryCrossEntropy, "binary", 3),
    ("SigmoidBCE-soft", dp.SigmoidBinaryCrossEntropy, "soft-binary", 3),
    ("SoftmaxCE-labels", dp.SoftmaxCrossEntropy, "labels", 4),
    ("SoftmaxCE-probabilities", dp.SoftmaxCrossEntropy, "probabilities", 4),
    ("MSE-1", dp.MeanSquaredError, "values", 1),
    ("MSE-3", dp.MeanSquaredError, "values", 3),
    ("Poisson-2", dp.PoissonLoss, "counts", 2),
]


@pytest.mark.parametrize(("name", "cls", "kind", "k"), LOSSES, ids=[c[0] for c in LOSSES])
def test_fused_delta_matches_finite_differences(name, cls, kind, k, rng):
    logits = rng.standard_normal((7, k)) * 2
    y = _targets(kind, rng, 7, k)
    report = gradcheck.check_loss(cls(), logits, y)
    assert report.ok, str(report)
    assert report.errors["logits"] < TOL


@pytest.mark.parametrize(("name", "cls", "kind", "k"), LOSSES, ids=[c[0] for c in LOSSES])
def test_whole_model_with_each_loss(name, cls, kind, k, rng):
    model = dp.Sequential(
        dp.Dense(3, 6, rng=rng),
        dp.ReLU(),
        dp.Dense(6, 5, rng=rng),
        dp.GELU(),
        dp.Dense(5, k, rng=rng),
    )
    X = away_from_kinks(rng, (8, 3))
    report = gradcheck.check_model(model, cls(), X, _targets(kind, rng, 8, k))
    assert report.ok, str(report)
    assert set(report.errors) == {"0.W", "0.b", "2.W", "2.b", "4.W", "4.b", "input"}


def test_report_flags_a_wrong_gradient(rng):
    class BrokenTanh(dp.Tanh):
        def backward(self, grad_out):
            return super().backward(grad_out) * 1.01  # 1 % off

    report = gradcheck.check_layer(BrokenTanh(), rng.standard_normal((3, 4)))
    assert not report.ok
    assert report.errors["input"] > 1e-3
    assert "FAIL" in str(report) and "DISAGREE" in str(report)


def test_check_runs_on_a_float64_copy_and_leaves_the_model_alone(rng):
    model = dp.Sequential(dp.Dense(3, 2, rng=rng))
    before = model.flat_values.copy()
    report = gradcheck.check_model(
        model,
        dp.MeanSquaredError(),
        rng.standard_normal((4, 3)),
        rng.standard_normal(4 * 2).reshape(4, 2),
    )
    assert report.ok
    assert model.flat_values.dtype == np.float32
    np.testing.assert_array_equal(model.flat_values, before)
    assert str(report).startswith("gradient check of Sequential(")


@pytest.mark.parametrize(
    ("kwargs", "rows", "message"),
    [
        ({"eps": 0.0}, 4, "eps must be > 0, got 0.0"),
        ({"eps": -1e-6}, 4, "eps must be > 0, got -1e-06"),
        ({"tolerance": float("nan")}, 4, "tolerance must be > 0, got nan"),
        ({}, 0, "needs at least one row of input, got 0"),
    ],
)
def test_check_arguments_are_refused_before_any_work(kwargs, rows, message, rng):
    model = dp.mlp([3, 2], rng=rng)
    with pytest.raises(ValueError, match=message):
        gradcheck.check_model(
            model, dp.MeanSquaredError(), np.ones((rows, 3)), np.ones((rows, 2)), **kwargs
        )
    with pytest.raises(ValueError, match=message):
        gradcheck.check_layer(dp.Tanh(), np.ones((rows, 3)), **kwargs)


class Counting(dp.Identity):
    """Counts forward passes (each finite difference costs two)."""

    calls = 0

    def forward(self, x, *, training=False):
        Counting.calls += 1
        return super().forward(x, training=training)


def test_sample_checks_a_random_subset_of_each_tensor(rng):
    model = dp.Sequential(dp.Dense(30, 30, rng=rng), dp.Tanh(), dp.Dense(30, 2, rng=rng))
    model.layers.append(Counting())  # after construction: the count is all it adds
    X, y = rng.standard_normal((8, 30)), rng.integers(0, 2, 8)
    Counting.calls = 0
    report = gradcheck.check_model(model, dp.SoftmaxCrossEntropy(), X, y, sample=10)
    assert report.ok, str(report)
    # the analytic pass and the loss's level; then 10 entries of each of 0.W, 0.b, 2.W, the
    # input and all 2 entries of 2.b, 2 passes each
    assert Counting.calls == 2 + 2 * (10 + 10 + 10 + 2 + 10)
    assert set(report.errors) == {"0.W", "0.b", "2.W", "2.b", "input"}


def test_a_sampled_check_still_finds_a_wrong_gradient(rng):
    class HalfWrong(dp.Dense):
        def backward_params(self, grad_out):
            super().backward_params(grad_out)
            self.W.grad[:, ::2] *= 1.5  # every other column off by half

    layer = HalfWrong(6, 4, rng=rng, dtype=np.float64)
    report = gradcheck.check_layer(layer, rng.standard_normal((5, 6)), sample=6, seed=3)
    assert not report.ok and report.errors["W"] > 1e-2


def test_a_large_check_without_sample_warns(rng, monkeypatch):
    monkeypatch.setattr(gradcheck, "LARGE_CHECK", 20)
    model = dp.mlp([4, 5, 2], rng=rng)
    with pytest.warns(UserWarning, match=r"checking 41 entries .* 82 passes .* pass sample="):
        gradcheck.check_model(model, dp.MeanSquaredError(), np.ones((1, 4)), np.ones((1, 2)))


def test_progress_is_shown_when_asked(rng, capsys):
    model = dp.mlp([3, 2], rng=rng)
    gradcheck.check_model(
        model, dp.MeanSquaredError(), np.ones((2, 3)), np.ones((2, 2)), progress=True
    )
    assert "gradient check" in capsys.readouterr().err


def test_a_gradient_that_is_exactly_zero_passes_and_a_small_wrong_one_fails(rng):
    """A bias right before batch norm has gradient 0 (the batch mean removes it): central
    differences measure round-off there, which the check's resolution absorbs."""
    model = dp.Sequential(
        dp.Dense(4, 6, rng=rng, dtype=np.float64),
        dp.BatchNorm(6, dtype=np.float64),
        dp.Tanh(),
        dp.Dense(6, 2, rng=rng, dtype=np.float64),
    )
    X, y = rng.standard_normal((7, 4)), rng.integers(0, 2, 7)
    report = gradcheck.check_model(model, dp.SoftmaxCrossEntropy(), X, y)
    assert report.ok, str(report)
    assert report.errors["0.b"] < 1e-6

    class SmallWrong(dp.Dense):
        def backward_params(self, grad_out):
            super().backward_params(grad_out)
            self.b.grad += 1e-5  # a wrong term far below the gradient's own size

    layer = SmallWrong(3, 2, rng=rng, dtype=np.float64)
    report = gradcheck.check_layer(layer, rng.standard_normal((4, 3)))
    assert not report.ok and report.errors["b"] > 1e-6


def test_resolution_is_the_round_off_of_central_differences_over_the_tolerance():
    assert gradcheck.resolution(0.0, 1e-6, 1, 1e-6) == pytest.approx(
        10 * 2.22e-16 / 1e-12, rel=1e-2
    )
    assert gradcheck.resolution(3.0, 1e-6, 16, 1e-6) == pytest.approx(
        4 * 4 * gradcheck.resolution(0.0, 1e-6, 1, 1e-6)
    )
