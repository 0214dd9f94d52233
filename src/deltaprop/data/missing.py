"""Missing values in a table — empty, ``NA``, NaN or inf cells — counted, and handled as the user
chooses: refused (the default: nothing is guessed), the incomplete rows dropped, or each cell
imputed with its column's training mean (the most frequent category for text), as
scikit-learn's ``SimpleImputer`` does. The fill values are fitted on the training rows and kept
in the preprocessing, so ``predict`` fills new rows with the same numbers."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import replace
from typing import Any

import numpy as np

from ..backend.arrays import Array
from .dataset import Dataset
from .tables import Table

STRATEGIES = ("refuse", "drop", "impute")
"""What ``--missing`` (and ``missing=``) may say."""


def missing_mask(table: Table, name: str) -> Array:
    """(N,) bool: where column ``name`` has no value (None in text, NaN or ±inf in numbers)."""
    values = table.column(name)
    if table.is_text(name):
        return np.array([v is None for v in values.tolist()], dtype=bool)
    return ~np.isfinite(values)


def missing_counts(table: Table) -> tuple[dict[str, int], Array]:
    """(missing cells per column that has any, (N,) bool of the rows with any missing cell)."""
    per_column: dict[str, int] = {}
    rows = np.zeros(table.n_rows, dtype=bool)
    if table.matrix is not None:
        bad = ~np.isfinite(table.matrix)
        counts = bad.sum(axis=0)
        per_column = {table.names[j]: int(c) for j, c in enumerate(counts) if c}
        return per_column, np.asarray(bad.any(axis=1))
    for name in table.names:
        mask = missing_mask(table, name)
        if mask.any():
            per_column[name] = int(mask.sum())
            rows |= mask
    return per_column, rows


def describe_missing(per_column: dict[str, int], rows: Array) -> str:
    """``7 missing cells in 5 rows (age: 4, city: 3)``."""
    shown = ", ".join(f"{name}: {count}" for name, count in list(per_column.items())[:6])
    more = ", ..." if len(per_column) > 6 else ""
    return (
        f"{sum(per_column.values())} missing cells in {int(rows.sum())} of {len(rows)} rows "
        f"({shown}{more})"
    )


def check_complete(table: Table) -> None:
    """Refuse a table with missing values, NaN or inf: how many, where the first is, and how to
    handle them.

    Raises:
        ValueError: naming the counts, the first row (from 1) and its column, and ``--missing``.
    """
    per_column, rows = missing_counts(table)
    if not per_column:
        return
    first_row = int(np.flatnonzero(rows)[0])
    column = next(n for n in per_column if missing_mask(table, n)[first_row])
    raise ValueError(
        f"the data holds {describe_missing(per_column, rows)}; the first in row {first_row + 1}, "
        f"column {column!r}. --missing drop leaves those rows out; --missing impute fills each "
        "cell with its column's training mean (the most frequent category for text)"
    )


def drop_incomplete(dataset: Dataset) -> tuple[Dataset, str | None]:
    """The data set without its rows that miss a value (its own test split too), and a note
    saying what was left out (None when nothing was).

    Raises:
        ValueError: when no row is complete.
    """
    rows, note = _complete(replace(dataset, test=None), "rows")
    if dataset.test is None:
        return rows, note
    test, test_note = _complete(dataset.test, "test rows")
    notes = [n for n in (note, test_note) if n]
    return replace(rows, test=test), "; ".join(notes) or None


def _complete(part: Dataset, what: str) -> tuple[Dataset, str | None]:
    per_column, rows = missing_counts(part.features)
    if not per_column:
        return part, None
    if rows.all():
        raise ValueError(f"every one of the {len(rows)} {what} misses a value: none is left")
    note = f"{describe_missing(per_column, rows)}: those {what} were dropped"
    return part.take(np.flatnonzero(~rows)), note


def fit_fill(table: Table) -> dict[str, Any]:
    """Each column's fill value from the training rows: the mean of a numeric column's values
    (0 when it has none), the most frequent category of a text column (the first in sorted
    order among equals). Every column gets one, so that the rows to predict may miss any."""
    fill: dict[str, Any] = {}
    for name in table.names:
        values = table.column(name)
        present = values[~missing_mask(table, name)]
        if table.is_text(name):
            counts = Counter(present.tolist())
            fill[name] = min(counts, key=lambda v: (-counts[v], v)) if counts else ""
        else:
            fill[name] = float(present.mean()) if present.size else 0.0
    return fill


def filled(table: Table, fill: dict[str, Any]) -> Table:
    """The table with each missing cell of a column in ``fill`` replaced by its fill value."""
    columns = []
    for name in table.names:
        values = table.column(name)
        mask = missing_mask(table, name)
        if name in fill and mask.any():
            values = values.copy()
            values[mask] = fill[name]
        columns.append(values)
    return Table(table.names, tuple(columns), header=table.header)


def check_fill(fill: Any, columns: list[str], categories: dict[str, Any]) -> dict[str, Any]:
    """The preprocessing's ``fill``: a known column → a finite number, or one of its categories."""
    if not isinstance(fill, dict):
        raise ValueError("preprocessing.fill must map input columns to fill values")
    for name, value in fill.items():
        if name not in columns:
            raise ValueError(f"preprocessing.fill names {name!r}, which is no input column")
        if name in categories:
            ok = value in categories[name]
        else:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            ok = ok and math.isfinite(value)
        if not ok:
            raise ValueError(f"preprocessing.fill[{name!r}] = {value!r} is no valid fill value")
    return dict(fill)
