"""The array type, the dtype policy and the compiler for element-wise kernels.

A network's floating-point type is decided once — float32 by default, float64 on request — and
never silently widened: layers compute in the dtype of their parameters, and data are converted
to it once, at the boundary (:func:`as_float_array`). Kernels that fuse several array passes into
one loop are compiled with :data:`compiled` (Numba); each sits beside the plain NumPy formula it
equals (see :mod:`deltaprop.functional` and :mod:`deltaprop.updates`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from numba import njit

Array = npt.NDArray[Any]
"""Any NumPy array; shapes are stated in each docstring."""

DEFAULT_DTYPE: np.dtype[Any] = np.dtype(np.float32)
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

compiled = njit(cache=True, nogil=True, error_model="numpy")
"""The decorator of every compiled kernel.

``error_model="numpy"`` drops Python's division-by-zero check from a loop, which is what lets LLVM
vectorise it (the Adam pass was 4x slower without it); ``nogil`` lets other Python threads run
meanwhile; ``cache`` keeps the machine code between processes. Kernels run on one thread: they
sit between BLAS calls, and parallel versions on two threads made Fashion-MNIST epochs slower.
"""

compiled_parallel = njit(cache=True, nogil=True, error_model="numpy", parallel=True)
"""The decorator of a compiled kernel whose ``prange`` loops run on Numba's threads."""


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


def as_real_array(x: Any, *, name: str = "x", numeric: bool = True) -> Array:
    """``x`` as a NumPy array, taking data frames as scikit-learn does.

    A pandas DataFrame or Series (anything with ``to_numpy`` that is not an array) becomes a
    float64 array: boolean and nullable columns included, missing values as NaN (which the data
    checks then name). With ``numeric=False`` (targets) other dtypes pass through unchanged.

    Raises:
        TypeError: if a frame holds values that are not numbers.
    """
    if isinstance(x, np.ndarray):
        return x
    to_numpy = getattr(x, "to_numpy", None)
    if to_numpy is None:
        return np.asarray(x)
    try:
        return np.asarray(to_numpy(dtype=np.float64, na_value=np.nan))
    except (TypeError, ValueError) as error:
        if not numeric:
            return np.asarray(to_numpy())
        raise TypeError(f"{name} must hold real numbers: {error}") from None


def as_float_array(x: Any, dtype: npt.DTypeLike, *, name: str = "x") -> Array:
    """Return ``x`` as a C-contiguous array of ``dtype``, copying only when needed.

    Raises:
        TypeError: if ``x`` is not numeric (strings, objects, complex numbers).
    """
    array = np.asarray(x)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got an array of dtype {array.dtype}")
    with np.errstate(over="ignore"):  # values beyond the dtype's range: the data checks say so
        return np.ascontiguousarray(array, dtype=float_dtype(dtype))
