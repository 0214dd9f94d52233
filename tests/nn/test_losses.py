import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import deltaprop as dp
from deltaprop import functional as F

finite = st.floats(-50, 50, allow_nan=False, width=64)


@given(
    arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 6)), elements=finite),
    st.floats(-1e3, 1e3),
)
def test_softmax_rows_sum_to_one_and_ignore_a_row_constant(z, c):
    p = F.softmax(z)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(F.softmax(z + c), p, atol=1e-12)
    assert np.all(p >= 0)


@given(
    arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(2, 5)), elements=finite), st.data()
)
def test_softmax_ce_equals_naive_formula(z, data):
    y = np.array(
        data.draw(st.lists(st.integers(0, z.shape[1] - 1), min_size=len(z), max_size=len(z)))
    )
    naive = -np.mean(np.log(np.exp(z)[np.arange(len(z)), y] / np.exp(z).sum(axis=1)))
    assert dp.SoftmaxCrossEntropy().forward(z, y) == pytest.approx(naive, rel=1e-9, abs=1e-12)


@given(
    arrays(
        np.float64, st.tuples(st.integers(1, 5), st.integers(1, 4)), elements=st.floats(-15, 15)
    ),
    st.data(),
)
def test_sigmoid_bce_equals_naive_formula(z, data):
    y = data.draw(arrays(np.float64, z.shape, elements=st.sampled_from([0.0, 1.0])))
    a = 1 / (1 + np.exp(-z))
    naive = -np.sum(y * np.log(a) + (1 - y) * np.log(1 - a)) / len(z)
    assert dp.SigmoidBinaryCrossEntropy().forward(z, y) == pytest.approx(naive, rel=1e-6, abs=1e-9)


@given(
    arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(1, 4)), elements=finite), st.data()
)
def test_mse_is_half_the_summed_square_over_n(z, data):
    y = data.draw(arrays(np.float64, z.shape, elements=finite))
    assert dp.MeanSquaredError().forward(z, y) == pytest.approx(
        0.5 * np.sum((z - y) ** 2) / len(z), rel=1e-12, abs=1e-12
    )


@pytest.mark.parametrize("scale", [1e2, 1e3, 1e4])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_losses_stay_finite_for_huge_logits(scale, dtype):
    z = np.array([[scale, -scale, 0.0], [-scale, scale, scale]], dtype=dtype)
    with np.errstate(over="raise", divide="raise", invalid="raise"):  # no warnings at all
        for loss, y in (
            (dp.SoftmaxCrossEntropy(), np.array([1, 0])),
            (dp.SigmoidBinaryCrossEntropy(), np.array([[1, 1, 0], [0, 1, 1]])),
        ):
            value = loss.forward(z, y)
            delta = loss.backward()
            assert np.isfinite(value) and np.all(np.isfinite(delta))
            # CE: row 0 pays z_max − z_1 = 2s, row 1 pays 2s + log 2 (two tied maxima)
            # BCE: row 0 pays s for z = −s with y = 1 and log 2 for z = 0; row 1 pays ≈ 0
            expected = (
                2 * scale + np.log(2) / 2
                if isinstance(loss, dp.SoftmaxCrossEntropy)
                else (scale + np.log(2)) / 2
            )
            assert value == pytest.approx(expected, rel=1e-5)


def test_fused_deltas_are_y_hat_minus_y_over_n():
    z = np.array([[0.2, -1.0, 0.5], [1.5, 0.0, -0.3]])
    ce = dp.SoftmaxCrossEntropy()
    ce.forward(z, np.array([2, 0]))
    expected = F.softmax(z) - np.eye(3)[[2, 0]]
    np.testing.assert_allclose(ce.backward(), expected / 2, atol=1e-15)
    bce = dp.SigmoidBinaryCrossEntropy()
    bce.forward(z, np.array([[1, 0, 1], [0, 0, 1]]))
    np.testing.assert_allclose(bce.backward(), (1 / (1 + np.exp(-z)) - [[1, 0, 1], [0, 0, 1]]) / 2)
    mse = dp.MeanSquaredError()
    mse.forward(z, np.ones((2, 3)))
    np.testing.assert_allclose(mse.backward(), (z - 1) / 2)


def test_one_hot_and_labels_agree():
    z = np.array([[0.2, -1.0, 0.5], [1.5, 0.0, -0.3]])
    a, b = dp.SoftmaxCrossEntropy(), dp.SoftmaxCrossEntropy()
    assert a.forward(z, [2, 0]) == pytest.approx(b.forward(z, np.eye(3)[[2, 0]]), rel=1e-14)
    np.testing.assert_allclose(a.backward(), b.backward(), atol=1e-16)


def test_bad_targets_get_clear_errors():
    z = np.zeros((3, 1))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 1\], got 2 at row 1"):
        dp.SigmoidBinaryCrossEntropy().forward(z, [0, 2, 1])
    z3 = np.zeros((3, 3))
    with pytest.raises(ValueError, match=r"class indices must lie in \[0, 3\).*got 3 at row 2"):
        dp.SoftmaxCrossEntropy().forward(z3, [0, 1, 3])
    with pytest.raises(ValueError, match=r"got -1 at row 0"):
        dp.SoftmaxCrossEntropy().forward(z3, [-1, 1, 2])
    with pytest.raises(dp.ShapeError, match=r"width 4 \(shape \(3, 4\)\).*3 classes"):
        dp.SoftmaxCrossEntropy().forward(z3, np.eye(4)[:3])
    with pytest.raises(ValueError, match="summing to 1"):
        dp.SoftmaxCrossEntropy().forward(z3, np.full((3, 3), 0.5))
    with pytest.raises(dp.ShapeError, match=r"y has 2 rows.*logits have 3"):
        dp.MeanSquaredError().forward(z, [1.0, 2.0])
    with pytest.raises(
        ValueError, match=r"NaN or inf in logits: 1 value in 1 row \(first in row 1\)"
    ):
        dp.MeanSquaredError().forward(np.array([[0.0], [np.nan], [1.0]]), [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="NaN or inf in y: 1 value"):
        dp.MeanSquaredError().forward(z, [1.0, np.inf, 3.0])
    with pytest.raises(dp.ForwardNotCalledError):
        dp.MeanSquaredError().backward()


def test_float_class_indices_must_be_whole_numbers():
    z = np.zeros((3, 3))
    assert dp.SoftmaxCrossEntropy().forward(z, np.array([0.0, 2.0, 1.0])) > 0
    with pytest.raises(ValueError, match=r"class indices must be integers, got 1.5 at row 1"):
        dp.SoftmaxCrossEntropy().forward(z, np.array([0.0, 1.5, 1.0]))
    with pytest.raises(ValueError, match=r"NaN or inf in y: 1 value in 1 row \(first in row 2\)"):
        dp.SoftmaxCrossEntropy().forward(z, np.array([0.0, 1.0, np.nan]))


WEIGHTED = [
    (dp.SigmoidBinaryCrossEntropy, lambda rng: (rng.random((6, 3)) > 0.5).astype(float), 3),
    (dp.SoftmaxCrossEntropy, lambda rng: rng.integers(0, 4, 6), 4),
    (dp.SoftmaxCrossEntropy, lambda rng: np.eye(4)[rng.integers(0, 4, 6)], 4),
    (dp.MeanSquaredError, lambda rng: rng.standard_normal((6, 2)), 2),
    (dp.PoissonLoss, lambda rng: rng.poisson(2.0, (6, 2)).astype(float), 2),
]


@pytest.mark.parametrize(
    ("cls", "targets", "k"), WEIGHTED, ids=lambda v: getattr(v, "__name__", "")
)
def test_weighted_loss_is_the_weighted_mean_and_its_delta_the_gradient(cls, targets, k, rng):
    from deltaprop import gradcheck

    z = rng.standard_normal((6, k))
    y = targets(rng)
    w = np.array([1.0, 0.0, 2.5, 1.0, 0.5, 3.0])
    loss = cls()
    rows = [cls().forward(z[i : i + 1], y[i : i + 1]) for i in range(6)]
    assert loss.forward(z, y, sample_weight=w) == pytest.approx(np.dot(w, rows) / w.sum())
    assert loss.normalizer == w.sum()
    delta = loss.backward().copy()
    numeric = gradcheck.numeric_gradient(lambda: cls().forward(z, y, sample_weight=w), z)
    assert gradcheck.relative_error(delta, numeric) < 1e-6
    # whole weights are repeated rows
    repeat = np.array([1, 0, 2, 1, 3, 2])
    assert loss.forward(z, y, sample_weight=repeat) == pytest.approx(
        cls().forward(np.repeat(z, repeat, axis=0), np.repeat(y, repeat, axis=0))
    )


def test_weights_are_checked():
    loss = dp.MeanSquaredError()
    z, y = np.zeros((3, 1)), np.zeros(3)
    with pytest.raises(ValueError, match=r"sample_weight must be >= 0, got -1.0 at row 2"):
        loss.forward(z, y, sample_weight=[1, 1, -1])
    with pytest.raises(dp.ShapeError, match=r"one weight per row, shape \(3,\), got shape \(2,\)"):
        loss.forward(z, y, sample_weight=[1, 1])
    with pytest.raises(ValueError, match="NaN or inf in sample_weight"):
        loss.forward(z, y, sample_weight=[1, np.nan, 1])
    assert loss.forward(z + 1, y, sample_weight=[0, 0, 0]) == 0.0  # nothing counts


def test_poisson_loss_is_scikit_learns_half_deviance(rng):
    from sklearn.neural_network._base import poisson_loss

    z = rng.standard_normal((8, 2))
    y = rng.poisson(1.5, (8, 2)).astype(float)
    assert dp.PoissonLoss().forward(z, y) == pytest.approx(poisson_loss(y, np.exp(z)), rel=1e-12)
    np.testing.assert_allclose(dp.PoissonLoss().predict(z), np.exp(z))
    with pytest.raises(ValueError, match="PoissonLoss: targets must be >= 0, got -1"):
        dp.PoissonLoss().forward(z, -np.ones((8, 2)))
