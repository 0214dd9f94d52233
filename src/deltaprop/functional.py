"""Pure math: activations, their derivatives and the stable building blocks of the losses.

Each forward function ``f`` sits next to its derivative ``f_prime`` so the chain rule reads at a
glance. Functions accept an optional ``out`` so the training loop can reuse storage; every one
keeps the dtype of its input.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from .backend import Array

SQRT_HALF = 0.7071067811865476
INV_SQRT_2PI = 0.3989422804014327


# --- ReLU: a = max(z, 0), a' = 1[z > 0] (the seed's gate) ------------------------------------


def relu(z: Array, out: Array | None = None) -> Array:
    """ReLU(z) = max(z, 0)."""
    return np.maximum(z, 0, out=out)


def relu_prime(z: Array, out: Array | None = None) -> Array:
    """ReLU'(z) = 1[z > 0], as a boolean gate."""
    return np.greater(z, 0, out=out)


# --- Leaky ReLU: a = z if z > 0 else slope * z -----------------------------------------------


def leaky_relu(z: Array, slope: float) -> Array:
    """LeakyReLU(z) = z for z > 0, slope * z otherwise."""
    return np.where(z > 0, z, z * z.dtype.type(slope))


def leaky_relu_prime(z: Array, slope: float) -> Array:
    """LeakyReLU'(z) = 1 for z > 0, slope otherwise."""
    return np.where(z > 0, z.dtype.type(1), z.dtype.type(slope))


# --- Sigmoid: a = 1 / (1 + e^-z), a' = a (1 - a) ----------------------------------------------


def sigmoid(z: Array, out: Array | None = None) -> Array:
    """σ(z) = 1 / (1 + e^{-z}), computed without overflow for any finite z."""
    return special.expit(z, out=out)  # type: ignore[no-any-return]


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
    return (z * (0.5 * (1 + special.erf(z * SQRT_HALF)))).astype(z.dtype, copy=False)


def gelu_prime(z: Array) -> Array:
    """GELU'(z) = Φ(z) + z φ(z), with φ the standard normal density."""
    cdf = 0.5 * (1 + special.erf(z * SQRT_HALF))
    pdf = INV_SQRT_2PI * np.exp(-0.5 * z * z)
    return (cdf + z * pdf).astype(z.dtype, copy=False)


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
