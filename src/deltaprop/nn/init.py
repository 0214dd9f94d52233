"""Weight initializers: ``f(rng, fan_in, fan_out, dtype) -> W`` with W of shape (fan_out, fan_in).

The variance rules keep the scale of activations (forward) and deltas (backward) steady:

- He (Kaiming): Var(W) = 2 / fan_in, for ReLU-like layers.
- Glorot (Xavier): Var(W) = 2 / (fan_in + fan_out), for tanh / sigmoid / linear layers.
- LeCun: Var(W) = 1 / fan_in, for SELU-like or identity layers.

Uniform variants draw from U(−limit, limit) with limit = sqrt(3 Var); normal variants draw from
N(0, Var).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from ..backend.arrays import Array, float_dtype

Initializer = Callable[[np.random.Generator, int, int, npt.DTypeLike], Array]


def _variance(rule: str, fan_in: int, fan_out: int) -> float:
    if rule == "he":
        return 2.0 / fan_in
    if rule == "glorot":
        return 2.0 / (fan_in + fan_out)
    return 1.0 / fan_in  # lecun


def _uniform(rule: str) -> Initializer:
    def init(rng: np.random.Generator, fan_in: int, fan_out: int, dtype: npt.DTypeLike) -> Array:
        limit = math.sqrt(3.0 * _variance(rule, fan_in, fan_out))
        return rng.uniform(-limit, limit, size=(fan_out, fan_in)).astype(float_dtype(dtype))

    init.__name__ = f"{rule}_uniform"
    return init


def _normal(rule: str) -> Initializer:
    def init(rng: np.random.Generator, fan_in: int, fan_out: int, dtype: npt.DTypeLike) -> Array:
        std = math.sqrt(_variance(rule, fan_in, fan_out))
        return (std * rng.standard_normal(size=(fan_out, fan_in))).astype(float_dtype(dtype))

    init.__name__ = f"{rule}_normal"
    return init


he_uniform = _uniform("he")
he_normal = _normal("he")
glorot_uniform = _uniform("glorot")
glorot_normal = _normal("glorot")
lecun_uniform = _uniform("lecun")
lecun_normal = _normal("lecun")

INITIALIZERS: dict[str, Initializer] = {
    f.__name__: f
    for f in (he_uniform, he_normal, glorot_uniform, glorot_normal, lecun_uniform, lecun_normal)
}


def get(name: str) -> Initializer:
    """Look up an initializer by name (``"he_uniform"``, ``"glorot_normal"``, ...).

    Raises:
        ValueError: for an unknown name, listing the known ones.
    """
    try:
        return INITIALIZERS[name]
    except KeyError:
        known = ", ".join(sorted(INITIALIZERS))
        raise ValueError(f"init must be one of {known}; got {name!r}") from None
