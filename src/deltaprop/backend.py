"""The one place that creates arrays and decides their dtype.

Every other module asks this one for storage, so the floating-point type of a network is decided
once (float32 by default, float64 on request) and never silently widened.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[Any]
"""Any NumPy array; shapes are stated in each docstring."""

DEFAULT_DTYPE: np.dtype[Any] = np.dtype(np.float32)
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def float_dtype(dtype: npt.DTypeLike, *, name: str = "dtype") -> np.dtype[Any]:
    """Return ``dtype`` as a NumPy dtype, accepting only float32 and float64.

    Raises:
        TypeError: if ``dtype`` is anything else.
    """
    try:
        resolved = np.dtype(dtype)
    except TypeError as error:
        raise TypeError(f"{name} must be float32 or float64, got {dtype!r}") from error
    if resolved not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be float32 or float64, got {resolved}")
    return resolved


def empty(shape: int | tuple[int, ...], dtype: npt.DTypeLike) -> Array:
    """Uninitialised storage of ``shape`` and float ``dtype``."""
    return np.empty(shape, dtype=float_dtype(dtype))


def as_float_array(x: Any, dtype: npt.DTypeLike, *, name: str = "x") -> Array:
    """Return ``x`` as a C-contiguous array of ``dtype``, copying only when needed.

    Raises:
        TypeError: if ``x`` is not numeric (strings, objects, complex numbers).
    """
    array = np.asarray(x)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got an array of dtype {array.dtype}")
    return np.ascontiguousarray(array, dtype=float_dtype(dtype))
