"""Argument checks and the NaN/inf reporter: the one place where user input is judged.

Every check names the argument, the value it got and what it expected —
``SGD: momentum must be in [0, 1), got 1.5`` — and returns the value converted to the type the
library computes with, so a check and its conversion cannot drift apart. Numbers given as strings
or booleans are refused, not parsed: ``lr="0.1"`` is a mistake, not a learning rate.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Collection
from typing import Any

import numpy as np

from .backend.arrays import Array, is_array, namespace
from .backend.blas import one_blas_thread
from .errors import ShapeError

_NUMBER_TYPES = (int, float, np.integer, np.floating)


def _prefix(owner: str | None) -> str:
    return f"{owner}: " if owner else ""


def plural(count: int, noun: str) -> str:
    """``"1 row"``, ``"3 rows"``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def check_int(
    name: str, value: Any, minimum: int | None = None, *, owner: str | None = None
) -> int:
    """``value`` as an int: a Python or NumPy integer (not a bool), at least ``minimum``.

    Raises:
        TypeError: for anything but an integer.
        ValueError: below ``minimum``.
    """
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{_prefix(owner)}{name} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{_prefix(owner)}{name} must be >= {minimum}, got {value}")
    return int(value)


def check_number(
    name: str,
    value: Any,
    *,
    owner: str | None = None,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """``value`` as a finite float within [low, high] (an end is excluded when ``*_open``).

    Raises:
        TypeError: for anything but a real number (strings and booleans included).
        ValueError: for NaN, ±inf, or a value outside the interval.
    """
    if isinstance(value, bool) or not isinstance(value, _NUMBER_TYPES):
        raise TypeError(
            f"{_prefix(owner)}{name} must be a number, got {value!r} ({type(value).__name__})"
        )
    number = float(value)
    inside = math.isfinite(number)
    if low is not None:
        inside = inside and (number > low if low_open else number >= low)
    if high is not None:
        inside = inside and (number < high if high_open else number <= high)
    if not inside:
        raise ValueError(
            f"{_prefix(owner)}{name} must be {_describe_interval(low, high, low_open, high_open)}, "
            f"got {number}"
        )
    return number


def _describe_interval(
    low: float | None, high: float | None, low_open: bool, high_open: bool
) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"{'<' if high_open else '<='} {high:g}"
    return "finite"


def check_positive(
    name: str, value: Any, *, owner: str | None = None, allow_zero: bool = False
) -> float:
    """``value`` as a finite float > 0 (or >= 0 with ``allow_zero``)."""
    return check_number(name, value, owner=owner, low=0.0, low_open=not allow_zero)


def check_fraction(name: str, value: Any, *, owner: str | None = None) -> float:
    """``value`` as a float in [0, 1): momenta, decay rates, dropout and validation fractions."""
    return check_number(name, value, owner=owner, low=0.0, high=1.0, high_open=True)


def check_bool(name: str, value: Any, *, owner: str | None = None) -> bool:
    """``value`` as a bool: ``True``/``False`` (or NumPy's), never a string or a number."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{_prefix(owner)}{name} must be True or False, got {value!r}")
    return bool(value)


def check_choice(
    name: str, value: Any, choices: Collection[str], *, owner: str | None = None
) -> str:
    """``value`` if it is one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        known = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{_prefix(owner)}{name} must be one of {known}; got {value!r}")
    return value


def check_rng(name: str, value: Any, *, owner: str | None = None) -> np.random.Generator:
    """``value`` if it is a ``numpy.random.Generator``; a whole number >= 0 seeds a new one
    (``np.random.default_rng(seed)``, as scikit-learn's ``random_state=0``). Randomness is
    always passed in: the global ``np.random`` is never used.

    Raises:
        TypeError: for anything else (a float, a string, a ``RandomState``).
        ValueError: for a negative seed.
    """
    if isinstance(value, np.random.Generator):
        return value
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"{_prefix(owner)}{name}: a seed must be >= 0, got {value}")
        return np.random.default_rng(int(value))
    raise TypeError(
        f"{_prefix(owner)}{name} must be a numpy.random.Generator (np.random.default_rng(seed)) "
        f"or an integer seed, got {type(value).__name__}"
    )


BLAS_THREADED = 1 << 16
"""Values from which :func:`check_finite` holds BLAS at one thread (OpenBLAS threads a product
of this size; a smaller one it runs on the caller's thread anyway)."""


def check_finite(name: str, array: Array, *, owner: str | None = None) -> None:
    """Refuse NaN and ±inf in ``array``, saying how many, in how many rows, and the first row.

    Rows are the first axis (samples); a 0-d array is one row. Integer arrays pass unchecked.

    Raises:
        ValueError: ``NaN or inf in X: 5 values in 1 row (first in row 7)``.
    """
    if array.dtype.kind not in "fc" or array.size == 0:
        return
    rows = array.reshape(len(array), -1) if array.ndim else array.reshape(1, 1)
    if rows.dtype.kind == "f":
        # rows @ 0 is 0 for a finite row and NaN for a row holding NaN or inf (0 · inf = NaN): one
        # BLAS pass over the data, with no mask the data's size — on one BLAS thread, as large
        # data come before training: OpenBLAS's threads spin ~0.1 s after a product, and made
        # the compiled epoch that followed 1.4× slower
        threads = one_blas_thread() if rows.size >= BLAS_THREADED else contextlib.nullcontext()
        with np.errstate(invalid="ignore"), threads:
            flags = rows @ namespace(rows).zeros(rows.shape[1], rows.dtype)  # (N,)
        if not np.isnan(flags).any():
            return
    finite = np.isfinite(rows)
    bad_rows = ~finite.all(axis=1)
    if not bad_rows.any():
        return
    bad = int((~finite).sum())
    raise ValueError(
        f"{_prefix(owner)}NaN or inf in {name}: {plural(bad, 'value')} in "
        f"{plural(int(bad_rows.sum()), 'row')} (first in row {int(np.argmax(bad_rows))})"
    )


def check_input(x: Any, *, layer: str, in_features: int | None = None) -> Array:
    """Validate a layer input: a 2-D float array, of width ``in_features`` when given.

    Raises:
        TypeError: for a non-array or non-float input.
        ShapeError: for a wrong number of dimensions or width.
    """
    if not is_array(x):
        raise TypeError(f"{layer}: input must be a NumPy array, got {type(x).__name__}")
    if x.ndim != 2:
        raise ShapeError(f"{layer}: input must be 2-D (N, features), got shape {x.shape}")
    if in_features is not None and x.shape[1] != in_features:
        raise ShapeError(
            f"{layer}: input has {x.shape[1]} features (shape {x.shape}), expected {in_features}"
        )
    if x.dtype.kind != "f":
        raise TypeError(f"{layer}: input must be float32 or float64, got {x.dtype}")
    return x


def check_instance(name: str, value: Any, kind: type, example: str) -> None:
    """Refuse a class, a string or anything else where an instance of ``kind`` belongs."""
    if isinstance(value, kind):
        return
    if isinstance(value, type):
        got = f"the class {value.__name__}: create one, e.g. {value.__name__}()"
    elif isinstance(value, str):
        got = f"the string {value!r}: names are for the command line; build an object ({example})"
    else:
        got = f"{type(value).__name__} {value!r}"
    raise TypeError(f"{name} must be a {kind.__name__} such as {example}, got {got}")


def check_validation_data(value: Any) -> None:
    """``value`` is None, a pair ``(X_val, y_val)`` or a triple ``(X_val, y_val, weights)``."""
    if value is None or (isinstance(value, tuple | list) and len(value) in (2, 3)):
        return
    got = (
        f"a {type(value).__name__} of length {len(value)}"
        if isinstance(value, tuple | list)
        else f"a {type(value).__name__}"
    )
    raise TypeError(
        f"validation_data must be a pair (X_val, y_val) or a triple (X_val, y_val, weights), "
        f"got {got}"
    )


def prepare_weights(
    sample_weight: Any, n_rows: int, *, owner: str | None = None, training: bool = False
) -> Array:
    """``sample_weight`` as a float64 array of ``n_rows`` finite, non-negative weights (for
    ``training``, not all 0: nothing would be learned).

    Raises:
        ValueError / TypeError: naming what is wrong with the weights.
    """
    prefix = f"{owner}: " if owner else ""
    weights = np.asarray(sample_weight)
    if weights.dtype.kind not in "biuf":
        raise TypeError(f"{prefix}sample_weight must hold numbers, got dtype {weights.dtype}")
    weights = weights.astype(np.float64)
    if weights.shape != (n_rows,):
        raise ShapeError(
            f"{prefix}sample_weight must have one weight per row, shape ({n_rows},), got "
            f"shape {weights.shape}"
        )
    check_finite("sample_weight", weights, owner=owner)
    if (weights < 0).any():
        row = int(np.argmax(weights < 0))
        raise ValueError(f"{prefix}sample_weight must be >= 0, got {weights[row]} at row {row}")
    if training and n_rows and not weights.any():
        raise ValueError(f"{prefix}sample_weight is 0 for all {n_rows} rows: nothing to learn from")
    return weights
