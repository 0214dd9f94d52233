"""The compiled formulas in functional.py compute what their NumPy definitions compute."""

import numpy as np
import pytest

import deltaprop as dp
from deltaprop import functional as F

DTYPES = [np.float32, np.float64]


def _with_specials(rng: np.random.Generator, shape: tuple[int, int], dtype) -> np.ndarray:
    """Random values with zeros, a NaN and both infinities in known places."""
    z = rng.standard_normal(shape).astype(dtype)
    z[0, :3] = 0
    z[1, 0], z[1, 1], z[1, 2] = np.nan, np.inf, -np.inf
    return z


@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_and_gate_equals_relu_and_its_derivative(rng, dtype):
    z = _with_specials(rng, (7, 5), dtype)
    a, gate = F.relu_and_gate(z, out=np.empty_like(z), gate=np.empty(z.shape, bool))
    np.testing.assert_array_equal(a, F.relu(z))  # NaN stays NaN, as np.maximum has it
    np.testing.assert_array_equal(gate, F.relu_prime(z))
    assert a.dtype == dtype
    assert np.isnan(a[1, 0]) and a[1, 1] == np.inf and a[1, 2] == 0


@pytest.mark.parametrize("dtype", DTYPES)
def test_apply_gate_equals_the_product_with_the_gate(rng, dtype):
    grad = _with_specials(rng, (6, 4), dtype)
    gate = rng.random((6, 4)) > 0.5
    gate[1, :3] = False  # NaN and inf behind closed gates still show up, as NaN
    with np.errstate(invalid="ignore"):
        expected = grad * gate
    np.testing.assert_array_equal(F.apply_gate(grad, gate, out=np.empty_like(grad)), expected)
    assert np.isnan(expected[1, :3]).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_sum_over_batch_equals_numpy_sum_bit_for_bit(rng, dtype):
    D = rng.standard_normal((128, 37)).astype(dtype)
    out = np.empty(37, dtype)
    np.testing.assert_array_equal(F.sum_over_batch(D, out=out), np.sum(D, axis=0))
    strided = D[::3, ::2]  # a non-contiguous view sums the same way
    np.testing.assert_array_equal(
        F.sum_over_batch(strided, out=np.empty(19, dtype)), np.sum(strided, axis=0)
    )
    np.testing.assert_array_equal(F.sum_over_batch(D[:0], out=out), np.zeros(37, dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_cross_entropy_labels_equals_the_two_step_formula(rng, dtype):
    z = (rng.standard_normal((50, 10)) * 4).astype(dtype)
    z[3] += 1e4  # large logits stay finite through the shift
    labels = rng.integers(0, 10, 50)
    P = np.empty_like(z)
    total = F.softmax_cross_entropy_labels(z, labels, out=P)
    expected_P, log_norm = F.softmax_and_logsumexp(z.astype(np.float64))
    expected = np.sum(log_norm[:, 0] - z.astype(np.float64)[np.arange(50), labels])
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    assert total == pytest.approx(expected, rel=rtol)
    np.testing.assert_allclose(P, expected_P, rtol=rtol, atol=1e-7 if dtype == np.float32 else 0)
    assert P.dtype == dtype


def test_softmax_cross_entropy_labels_outside_the_classes_give_nan(rng):
    z = rng.standard_normal((4, 3))
    P = np.zeros_like(z)
    for bad in (-1, 3):
        assert np.isnan(F.softmax_cross_entropy_labels(z, np.array([0, 1, bad, 2]), out=P))


def test_subtract_one_hot_touches_only_each_rows_class():
    D = np.full((3, 4), 0.5)
    F.subtract_one_hot(D, np.array([2, 0, 7]))  # 7 lies outside the 4 classes: left alone
    np.testing.assert_array_equal(
        D, [[0.5, 0.5, -0.5, 0.5], [-0.5, 0.5, 0.5, 0.5], [0.5, 0.5, 0.5, 0.5]]
    )


def test_relu_layer_takes_a_strided_view(rng):
    """The compiled pass works on any layout, not just the contiguous buffers of the loop."""
    x = rng.standard_normal((10, 12))[::2, ::3]
    layer = dp.ReLU()
    np.testing.assert_array_equal(layer.forward(x, training=True), np.maximum(x, 0))
    grad = rng.standard_normal(x.shape)
    np.testing.assert_array_equal(layer.backward(grad), grad * (x > 0))


@pytest.mark.parametrize("dtype", DTYPES)
def test_count_argmax_hits_equals_argmax_with_its_tie_and_nan_rules(rng, dtype):
    z = rng.integers(0, 3, (200, 4)).astype(dtype)  # many ties: the first maximum wins
    z[5, 2] = np.nan  # NaN wins, as in np.argmax
    z[6, 0], z[6, 3] = np.nan, np.nan  # the first NaN wins
    labels = rng.integers(0, 4, 200)
    labels[5], labels[6] = 2, 0
    expected = int(np.count_nonzero(np.argmax(z, axis=1) == labels))
    assert F.count_argmax_hits(z, labels) == expected
    assert F.count_argmax_hits(z, np.argmax(z, axis=1)) == 200


def test_softmax_jvp_equals_the_jacobian_times_a_vector(rng):
    z = rng.standard_normal((4, 5))
    g = rng.standard_normal((4, 5))
    a = F.softmax(z)
    expected = np.stack(
        [(np.diag(a_n) - np.outer(a_n, a_n)) @ g_n for a_n, g_n in zip(a, g, strict=True)]
    )
    np.testing.assert_allclose(F.softmax_jvp(a, g), expected, rtol=1e-12, atol=1e-15)


KERNEL_CALLS = {
    "relu_and_gate": lambda: F.relu_and_gate(
        np.zeros((4, 3)), out=np.zeros((4, 3)), gate=np.zeros((5, 3), bool)
    ),
    "apply_gate": lambda: F.apply_gate(
        np.zeros((4, 3)), gate=np.zeros((4, 3), bool), out=np.zeros((4, 2))
    ),
    "apply_gate-1d": lambda: F.apply_gate(np.zeros(4), gate=np.zeros(4, bool), out=np.zeros(4)),
    "sum_over_batch": lambda: F.sum_over_batch(np.zeros((4, 3)), out=np.zeros(4)),
    "softmax_cross_entropy_labels": lambda: F.softmax_cross_entropy_labels(
        np.zeros((4, 3)), np.zeros(5, np.intp), out=np.zeros((4, 3))
    ),
    "softmax_cross_entropy_labels-out": lambda: F.softmax_cross_entropy_labels(
        np.zeros((4, 3)), np.zeros(4, np.intp), out=np.zeros((3, 3))
    ),
    "subtract_one_hot": lambda: F.subtract_one_hot(np.zeros((4, 3)), np.zeros(3, np.intp)),
    "count_argmax_hits": lambda: F.count_argmax_hits(np.zeros((4, 3)), np.zeros(8, np.intp)),
}


@pytest.mark.parametrize("call", list(KERNEL_CALLS))
def test_every_compiled_kernel_checks_shapes_before_it_runs(call):
    with pytest.raises(dp.ShapeError, match=r"shape"):
        KERNEL_CALLS[call]()


def test_relu_backward_with_a_gradient_of_the_wrong_shape_is_refused(rng):
    layer = dp.ReLU()
    layer.forward(rng.standard_normal((10, 4)), training=True)
    with pytest.raises(dp.ShapeError, match=r"ReLU.backward: grad_out has shape \(200, 4\), "):
        layer.backward(np.ones((200, 4)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_add_scaled_equals_the_numpy_expression(rng, dtype):
    grad = rng.standard_normal((7, 5)).astype(dtype)
    x = rng.standard_normal((7, 5)).astype(dtype)
    expected = grad + dtype(0.25) * x
    np.testing.assert_array_equal(F.add_scaled(grad, x, 0.25), expected)
    with pytest.raises(dp.ShapeError, match="add_scaled"):
        F.add_scaled(grad, x[:, :4], 1.0)
