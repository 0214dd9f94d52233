"""Pure math: activations, their derivatives and the stable building blocks of the losses.

Ordered simple to complex: element-wise activations, each forward ``f`` next to its derivative
``f_prime`` so the chain rule reads at a glance; the sum over the batch (the bias gradient); then
the softmax family. Every function keeps the dtype of its input, and those the training loop calls
on every batch take ``out=`` so it can reuse storage.

A few formulas are also written as compiled loops (:data:`~deltaprop.backend.arrays.compiled`): one
pass over the batch in place of several NumPy calls, each with its own temporary and its own trip
through memory. Each compiled twin sits right after the formula it equals, checks its arguments'
shapes before it runs (a loop trusts its bounds), and is called with keyword arguments;
``tests/nn/test_functional.py`` checks each against its formula.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..backend.arrays import Array, compiled, run_kernel
from ..errors import ShapeError


def _special() -> Any:
    """scipy.special, imported when first used: it takes a sixth of a second to import."""
    from scipy import special

    return special


SQRT_HALF = 0.7071067811865476
INV_SQRT_2PI = 0.3989422804014327


# A compiled loop trusts its bounds, so each wrapper checks shapes first: a plain comparison on
# the hot path, the message built only when it fails.


def _same_shapes_error(kernel: str, **arrays: Array) -> ShapeError:
    shapes = {name: a.shape for name, a in arrays.items()}
    return ShapeError(f"{kernel}: arguments must be 2-D arrays of one shape, got {shapes}")


def _rows_and_labels(kernel: str, z: Array, labels: Array) -> None:
    if z.ndim != 2 or labels.shape != (z.shape[0],):
        raise ShapeError(
            f"{kernel}: needs a 2-D array (N, K) and N labels, got shapes {z.shape} and "
            f"{labels.shape}"
        )


# --- ReLU: a = max(z, 0), a' = 1[z > 0] (the seed's gate) ------------------------------------


def relu(z: Array, out: Array | None = None) -> Array:
    """ReLU(z) = max(z, 0)."""
    return np.maximum(z, 0, out=out)


def relu_prime(z: Array, out: Array | None = None) -> Array:
    """ReLU'(z) = 1[z > 0], as a boolean gate."""
    return np.greater(z, 0, out=out)


def relu_and_gate(z: Array, out: Array, gate: Array) -> tuple[Array, Array]:
    """:func:`relu` into ``out`` and :func:`relu_prime` into ``gate``, in one pass.

    NaN passes through as ``np.maximum`` lets it (its gate is closed). Shapes: all (N, D).
    """
    if z.ndim != 2 or out.shape != z.shape or gate.shape != z.shape:
        raise _same_shapes_error("relu_and_gate", z=z, out=out, gate=gate)
    run_kernel(_relu_and_gate, z=z, a=out, gate=gate, zero=z.dtype.type(0))
    return out, gate


@compiled
def _relu_and_gate(z, a, gate, zero):  # pragma: no cover - compiled
    for n in range(z.shape[0]):
        for j in range(z.shape[1]):
            zj = z[n, j]
            gate[n, j] = zj > zero
            a[n, j] = zero if zj <= zero else zj


def apply_gate(grad: Array, gate: Array, out: Array) -> Array:
    """grad ⊙ gate: the seed's δ = (Wᵀ δ_next) ⊙ ReLU'(z) for a boolean gate. Shapes: (N, D).

    A closed gate gives grad · 0, so NaN or inf in ``grad`` still shows up (as NaN).
    """
    if grad.ndim != 2 or gate.shape != grad.shape or out.shape != grad.shape:
        raise _same_shapes_error("apply_gate", grad=grad, gate=gate, out=out)
    run_kernel(_gate, grad=grad, gate=gate, out=out, zero=grad.dtype.type(0))
    return out


@compiled
def _gate(grad, gate, out, zero):  # pragma: no cover - compiled
    for n in range(grad.shape[0]):
        for j in range(grad.shape[1]):
            out[n, j] = grad[n, j] if gate[n, j] else grad[n, j] * zero


# --- Leaky ReLU: a = z if z > 0 else slope · z, a' = 1 or slope ----------------------------


def leaky_relu(z: Array, slope: float) -> Array:
    """LeakyReLU(z) = z for z > 0, slope · z otherwise."""
    return np.where(z > 0, z, z * z.dtype.type(slope))


def leaky_relu_prime(z: Array, slope: float) -> Array:
    """LeakyReLU'(z) = 1 for z > 0, slope otherwise."""
    return np.where(z > 0, z.dtype.type(1), z.dtype.type(slope))


# --- Sigmoid: a = 1 / (1 + e^-z), a' = a (1 - a) ----------------------------------------------


def sigmoid(z: Array, out: Array | None = None) -> Array:
    """σ(z) = 1 / (1 + e^{-z}), computed without overflow for any finite z."""
    return _special().expit(z, out=out)  # type: ignore[no-any-return]


def sigmoid_prime_from_output(a: Array) -> Array:
    """σ'(z) = a (1 − a), written from the output a = σ(z)."""
    return a * (1 - a)


# --- Tanh: a' = 1 - a^2 ---------------------------------------------------------------------


def tanh(z: Array, out: Array | None = None) -> Array:
    """tanh(z)."""
    return np.tanh(z, out=out)


def tanh_prime_from_output(a: Array) -> Array:
    """tanh'(z) = 1 − a², written from the output a = tanh(z)."""
    return 1 - a * a


# --- Softplus: a = log(1 + e^z), a' = σ(z) -------------------------------------------------


def softplus(z: Array) -> Array:
    """softplus(z) = log(1 + e^z) = max(z, 0) + log1p(e^{−|z|}), stable for any finite z."""
    return np.logaddexp(0, z).astype(z.dtype, copy=False)


def softplus_prime(z: Array) -> Array:
    """softplus'(z) = σ(z)."""
    return sigmoid(z)


# --- GELU (exact, erf form, as PyTorch's default) ------------------------------------------


def gelu(z: Array) -> Array:
    """GELU(z) = z Φ(z), with Φ the standard normal CDF."""
    return (z * (0.5 * (1 + _special().erf(z * SQRT_HALF)))).astype(z.dtype, copy=False)


def gelu_prime(z: Array) -> Array:
    """GELU'(z) = Φ(z) + z φ(z), with φ the standard normal density."""
    cdf = 0.5 * (1 + _special().erf(z * SQRT_HALF))
    pdf = INV_SQRT_2PI * np.exp(-0.5 * z * z)
    return (cdf + z * pdf).astype(z.dtype, copy=False)


# --- A scaled addition (the L2 penalty's gradient) -----------------------------------------


def add_scaled(grad: Array, x: Array, scale: float) -> Array:
    """grad += scale · x, in place, in one pass and without a temporary.

    The L2 penalty's term of ∂L/∂W: scale · λ W. Shapes: grad and x alike (any shape,
    C-contiguous).
    """
    if grad.shape != x.shape or not (grad.flags.c_contiguous and x.flags.c_contiguous):
        raise ShapeError(
            f"add_scaled: needs two C-contiguous arrays of one shape, got {grad.shape} and "
            f"{x.shape}"
        )
    run_kernel(_add_scaled, grad=grad.reshape(-1), x=x.reshape(-1), scale=grad.dtype.type(scale))
    return grad


@compiled
def _add_scaled(grad, x, scale):  # pragma: no cover - compiled
    for i in range(grad.size):
        grad[i] += scale * x[i]


# --- Sums over the batch -------------------------------------------------------------------


def sum_over_batch(D: Array, out: Array) -> Array:
    """Σ_n D_n: the column sums of D, row after row as ``np.sum(D, axis=0)`` adds them.

    The bias gradient ∂L/∂b = Σ_n δ_n. Shapes: D (N, K) -> out (K,).
    """
    if D.ndim != 2 or out.shape != (D.shape[1],):
        raise ShapeError(
            f"sum_over_batch: needs D (N, K) and out (K,), got shapes {D.shape} and {out.shape}"
        )
    run_kernel(_sum_over_batch, D=D, out=out, zero=out.dtype.type(0))
    return out


@compiled
def _sum_over_batch(D, out, zero):  # pragma: no cover - compiled
    for j in range(D.shape[1]):
        out[j] = zero
    for n in range(D.shape[0]):
        for j in range(D.shape[1]):
            out[j] += D[n, j]


# --- Softmax family --------------------------------------------------------------------------


def softmax_and_logsumexp(z: Array, out: Array | None = None) -> tuple[Array, Array]:
    """softmax(z) and log Σ_k e^{z_k}, row by row, from one shifted exponential.

    Subtracting each row's maximum first keeps every exponent ≤ 0, so nothing overflows.

    Shapes: z (N, K) -> softmax (N, K), logsumexp (N, 1).
    """
    shift = np.max(z, axis=1, keepdims=True)  # (N, 1)
    out = np.subtract(z, shift, out=out)
    np.exp(out, out=out)
    total = np.sum(out, axis=1, keepdims=True)  # (N, 1)
    out /= total
    return out, np.log(total) + shift


def softmax(z: Array, out: Array | None = None) -> Array:
    """softmax(z)_k = e^{z_k} / Σ_j e^{z_j}, row by row. Shapes: z (N, K) -> (N, K)."""
    return softmax_and_logsumexp(z, out)[0]


def softmax_jvp(a: Array, g: Array) -> Array:
    """J g for the softmax Jacobian J = diag(a) − a aᵀ at output a, row by row.

    ``J g = a ⊙ (g − (g · a))``: the backward pass of a standalone softmax, with g = ∂L/∂a
    (J is symmetric, so this Jacobian-vector product is also the vector-Jacobian product).

    Shapes: a (N, K), g (N, K) -> (N, K).
    """
    return a * (g - np.sum(g * a, axis=1, keepdims=True))


def softmax_cross_entropy_labels(z: Array, labels: Array, out: Array) -> float:
    """Σ_n [logsumexp(z_n) − z_n[y_n]] for class indices, with softmax(z) written into ``out``.

    The same shifted exponential as :func:`softmax_and_logsumexp`, one row at a time in one
    pass; the rows' losses are summed in float64. A label outside [0, K) gives NaN.

    Shapes: z (N, K), labels (N,) integers, out (N, K) -> a float (the sum, not the mean).
    """
    _rows_and_labels("softmax_cross_entropy_labels", z, labels)
    if out.shape != z.shape:
        raise _same_shapes_error("softmax_cross_entropy_labels", z=z, out=out)
    return float(
        run_kernel(_softmax_cross_entropy_labels, z=z, labels=labels, P=out, zero=z.dtype.type(0))
    )


@compiled
def _softmax_cross_entropy_labels(z, labels, P, zero):  # pragma: no cover - compiled
    N, K = z.shape
    total = 0.0
    for n in range(N):
        label = labels[n]
        if label < 0 or label >= K:
            return math.nan
        shift = z[n, 0]
        for k in range(1, K):
            shift = max(shift, z[n, k])
        norm = zero
        for k in range(K):
            e = math.exp(z[n, k] - shift)
            P[n, k] = e
            norm += e
        for k in range(K):
            P[n, k] /= norm
        total += math.log(norm) + shift - z[n, label]  # logsumexp(z_n) − z_n[y_n]
    return total


def subtract_one_hot(D: Array, labels: Array) -> Array:
    """D[n, y_n] −= 1 in place: Ŷ − Y for one-hot Y given by class indices. Shapes: D (N, K).

    A label outside [0, K) leaves its row alone.
    """
    _rows_and_labels("subtract_one_hot", D, labels)
    run_kernel(_subtract_one_hot, D=D, labels=labels)
    return D


@compiled
def _subtract_one_hot(D, labels):  # pragma: no cover - compiled
    K = D.shape[1]
    for n in range(D.shape[0]):
        label = labels[n]
        if 0 <= label < K:
            D[n, label] -= 1


def count_argmax_hits(z: Array, labels: Array) -> int:
    """How many rows have their largest logit at y_n: ``np.sum(np.argmax(z, 1) == labels)``.

    Ties go to the first maximum and NaN counts as the largest, as in ``np.argmax``.

    Shapes: z (N, K), labels (N,) -> an int.
    """
    _rows_and_labels("count_argmax_hits", z, labels)
    return int(run_kernel(_count_argmax_hits, z=z, labels=labels))


@compiled
def _count_argmax_hits(z, labels):  # pragma: no cover - compiled
    hits = 0
    for n in range(z.shape[0]):
        best = 0
        for k in range(1, z.shape[1]):
            if z[n, k] > z[n, best] or (z[n, k] != z[n, k] and z[n, best] == z[n, best]):
                best = k  # NaN counts as the largest, as it does for np.argmax
        hits += best == labels[n]
    return hits
