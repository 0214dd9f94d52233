"""What turns a table into the numbers a network reads, and its outputs back into labels.

A :class:`Preprocessor` is fitted on the training rows only and stored in the model file, so that
``evaluate`` and ``predict`` apply exactly what ``train`` fitted: the input columns and their order,
the categories of each text column (one-hot encoded, one output per category, in sorted order),
the mean and scale of each numeric column (when standardized), and the labels of the classes (or
the target's mean and scale for regression). It is written as plain JSON, never as code.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..backend.arrays import Array
from .dataset import Dataset
from .missing import check_fill, filled, fit_fill
from .tables import Table

MAX_CATEGORIES = 100
"""A text column with more distinct values than this is refused, not one-hot encoded."""


def _as_category(value: Any) -> str | None:
    """A field of a text column, or a number read where text was trained, as its category."""
    if value is None:
        return None
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def _first_bad(mask: Array) -> tuple[int, int]:
    """(row, column) of the first True in a 2-D mask, by rows."""
    rows = np.flatnonzero(mask.any(axis=1))
    return int(rows[0]), int(np.flatnonzero(mask[rows[0]])[0])


@dataclass
class Preprocessor:
    """Columns → features, and targets ↔ labels; fitted by :meth:`fit`, saved as JSON.

    Attributes:
        columns: the input columns, in the order the model reads them.
        categories: for each text column, its categories (one feature each, sorted).
        mean, scale: per numeric column (in ``columns`` order), when standardized; else empty.
        task: ``"classification"`` or ``"regression"``.
        class_names: the label of each class index.
        target: the target column's name (None for a built-in set's own target).
        target_mean, target_scale: a regression target is trained as (y − mean) / scale.
        data: the data the model was trained on; split: how its test rows were drawn.
        fill: each column's value for a missing cell, when trained with imputation; else empty.
    """

    columns: tuple[str, ...]
    categories: dict[str, tuple[str, ...]] = field(default_factory=dict)
    mean: tuple[float, ...] = ()
    scale: tuple[float, ...] = ()
    task: str = "classification"
    class_names: tuple[Any, ...] = ()
    target: str | None = None
    target_mean: float = 0.0
    target_scale: float = 1.0
    data: str = ""
    split: dict[str, Any] | None = None
    fill: dict[str, Any] = field(default_factory=dict)

    @property
    def numeric_columns(self) -> tuple[str, ...]:
        return tuple(c for c in self.columns if c not in self.categories)

    @property
    def n_features(self) -> int:
        """How many numbers a row becomes: one per numeric column, one per category."""
        return len(self.numeric_columns) + sum(len(c) for c in self.categories.values())

    def feature_names(self) -> list[str]:
        """The name of each feature: the column, or ``column=category`` for one-hot ones."""
        names = list(self.numeric_columns)
        for column, cats in self.categories.items():
            names += [f"{column}={c}" for c in cats]
        return names

    # --- fitting ------------------------------------------------------------------------------

    @classmethod
    def fit(
        cls,
        train: Dataset,
        *,
        standardize: bool = False,
        target: str | None = None,
        split: dict[str, Any] | None = None,
        categories_from: Table | None = None,
        max_categories: int = MAX_CATEGORIES,
        impute: bool = False,
    ) -> Preprocessor:
        """Fit on the training rows: text columns' categories, and (if ``standardize``) each
        numeric column's mean and standard deviation (1 where it is constant), and for
        regression the target's.

        Args:
            categories_from: the table whose text values make the categories (default: the
                training rows); the whole data set, so that a category seen only in the test
                rows is known — the categories are names, not statistics of the target.

        Raises:
            ValueError: for missing values (how many, the first row), or a text column that
                cannot be one-hot encoded (too many distinct values, or one per row).
        """
        table = train.features
        vocabulary = table if categories_from is None else categories_from
        fill = fit_fill(table) if impute else {}
        if fill:
            table, vocabulary = filled(table, fill), filled(vocabulary, fill)
        categories: dict[str, tuple[str, ...]] = {}
        for name in table.names:
            if not table.is_text(name):
                continue
            values = vocabulary.column(name)
            _refuse_missing(name, [i for i, v in enumerate(values) if v is None], len(values))
            distinct = sorted(set(values.tolist()))
            if len(distinct) > max_categories or (len(distinct) == len(values) > 10):
                raise ValueError(
                    f"column {name!r} holds text with {len(distinct)} distinct values in "
                    f"{len(values)} rows (such as {distinct[0]!r}), which cannot be one-hot "
                    f"encoded usefully (at most {max_categories} categories); leave it out with "
                    f"--drop {name!r}"
                )
            categories[name] = tuple(distinct)
        prep = cls(
            columns=table.names,
            categories=categories,
            task=train.task,
            class_names=train.class_names,
            target=target,
            data=train.path or train.name,
            split=split,
            fill=fill,
        )
        numeric = prep._numeric_block(table)
        if standardize and numeric.shape[1]:
            mean = numeric.mean(axis=0, dtype=np.float64)
            std = numeric.std(axis=0, dtype=np.float64)
            std[std == 0] = 1.0
            prep.mean, prep.scale = tuple(mean.tolist()), tuple(std.tolist())
        if standardize and train.task == "regression":
            prep.target_mean = float(train.y.mean())
            prep.target_scale = float(train.y.std()) or 1.0
        return prep

    # --- columns to features ------------------------------------------------------------------

    def _matched(self, table: Table) -> Table:
        """The table with the model's column names: by name, or by position for a header-less
        table of exactly the model's width."""
        missing = [c for c in self.columns if c not in table]
        if not missing:
            return table
        if not table.header and len(table.names) == len(self.columns):
            if table.matrix is not None:
                return Table(self.columns, matrix=table.matrix, header=False)
            return Table(self.columns, table.columns, header=False)
        shown = missing[:5] + (["..."] if len(missing) > 5 else [])
        raise ValueError(
            f"the model reads {len(self.columns)} columns, and the data lacks {len(missing)} of "
            f"them: {shown}; the data's columns are {list(table.names)[:10]}"
            + (" ..." if len(table.names) > 10 else "")
        )

    def _numeric_block(self, table: Table) -> Array:
        names = self.numeric_columns
        for name in names:
            if table.is_text(name):
                values = table.column(name)
                row = next(i for i, v in enumerate(values) if _as_number(v) is None)
                raise ValueError(
                    f"column {name!r} was numbers in training, but holds text here ({values[row]!r}"
                    f" in row {row + 1})"
                )
        block = table.numeric(names)
        with np.errstate(invalid="ignore"):  # block @ 0 is NaN exactly for rows with NaN or inf
            flags = block @ np.zeros(block.shape[1], block.dtype)  # (N,): no mask of X's size
        if np.isnan(flags).any():
            bad = ~np.isfinite(block)
            row, col = _first_bad(bad)
            raise ValueError(
                f"the data holds {int(bad.sum())} missing, NaN or inf values; the first in row "
                f"{row + 1}, column {names[col]!r} (a model trained with --missing impute fills "
                "them; this one was not)"
            )
        return block

    def transform(self, table: Table) -> Array:
        """The features of every row, shape (N, n_features): numeric columns (standardized if
        fitted so) then each text column's one-hot block.

        Raises:
            ValueError: for missing columns (named), missing values (how many, the first row),
                text where numbers were trained, or categories unseen in training.
        """
        table = self._matched(table)
        if self.fill:
            table = filled(table, self.fill)
        numeric = self._numeric_block(table)
        if self.mean:
            numeric = (numeric - np.asarray(self.mean)) / np.asarray(self.scale)
        if not self.categories:
            return numeric
        blocks = [numeric]
        for name, cats in self.categories.items():
            values = [_as_category(v) for v in table.column(name).tolist()]

            def unseen(row: int, value: str, name: str = name, cats: tuple[str, ...] = cats) -> str:
                return (
                    f"column {name!r} holds {value!r} (row {row + 1}), a category not seen in "
                    f"training; known: {list(cats)}"
                )

            hot = _indices(values, cats, name, unseen)
            one_hot = np.zeros((len(values), len(cats)))
            one_hot[np.arange(len(values)), hot] = 1.0
            blocks.append(one_hot)
        return np.hstack(blocks)

    # --- targets ------------------------------------------------------------------------------

    def encode_target(self, values: Array) -> Array:
        """Labels → class indices (N,), or regression targets → the scaled values (N,).

        Raises:
            ValueError: for missing values, or labels that are not one of the classes.
        """
        if self.task == "regression":
            y = _numbers(values)
            _refuse_missing("target", np.flatnonzero(~np.isfinite(y)).tolist(), len(y))
            return (y - self.target_mean) / self.target_scale  # decode inverts it
        names = [_as_category(c) for c in self.class_names]
        labels = [_as_category(v) for v in np.asarray(values, dtype=object).tolist()]

        def unknown(row: int, label: str) -> str:
            return (
                f"the target holds the label {label!r} (row {row + 1}), which is not one of the "
                f"model's classes {list(self.class_names)}"
            )

        return np.array(_indices(labels, names, "target", unknown), dtype=np.int64)

    def training_target(self, part: Dataset) -> Array:
        """A data set's target as the network trains on it: class indices as they are, or the
        regression values scaled as :meth:`encode_target` scales them. Shapes: (N,)."""
        return part.y if self.task == "classification" else self.encode_target(part.y)

    def decode(self, outputs: Array) -> Array:
        """Class indices (N,) → labels; scaled regression outputs → the target's units."""
        if self.task == "regression":
            return np.asarray(outputs, dtype=np.float64) * self.target_scale + self.target_mean
        return np.array(self.class_names, dtype=object)[np.asarray(outputs, dtype=np.intp)]

    # --- the file's JSON ----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "columns": list(self.columns),
            "categories": {k: list(v) for k, v in self.categories.items()},
            "mean": list(self.mean),
            "scale": list(self.scale),
            "task": self.task,
            "class_names": list(self.class_names),
            "target": self.target,
            "target_mean": self.target_mean,
            "target_scale": self.target_scale,
            "data": self.data,
            "split": self.split,
            "fill": dict(self.fill),
        }

    @classmethod
    def from_dict(cls, d: Any) -> Preprocessor:
        """Rebuild from :meth:`to_dict`'s JSON, checking every field.

        Raises:
            ValueError: naming the field that is malformed.
        """
        if not isinstance(d, dict):
            raise ValueError(f"preprocessing is not a JSON object: {str(d)[:80]}")
        columns = d.get("columns")
        if not (isinstance(columns, list) and columns and all(isinstance(c, str) for c in columns)):
            raise ValueError("preprocessing.columns must be a non-empty list of names")
        cats = d.get("categories", {})
        if not isinstance(cats, dict) or any(
            k not in columns or not isinstance(v, list) or not v for k, v in cats.items()
        ):
            raise ValueError("preprocessing.categories must map input columns to categories")
        n_numeric = len(columns) - len(cats)
        mean, scale = d.get("mean", []), d.get("scale", [])
        for name, values in (("mean", mean), ("scale", scale)):
            if values and (
                len(values) != n_numeric
                or not all(isinstance(v, int | float) and math.isfinite(v) for v in values)
            ):
                raise ValueError(f"preprocessing.{name} must hold {n_numeric} finite numbers")
        if len(mean) != len(scale) or any(v <= 0 for v in scale):
            raise ValueError("preprocessing.scale must match mean and be > 0")
        task = d.get("task")
        if task not in ("classification", "regression"):
            raise ValueError(f"preprocessing.task must be classification or regression: {task!r}")
        classes = d.get("class_names", [])
        if task == "classification" and (not isinstance(classes, list) or len(classes) < 2):
            raise ValueError("preprocessing.class_names must list two classes or more")
        t_mean, t_scale = d.get("target_mean", 0.0), d.get("target_scale", 1.0)
        if not all(isinstance(v, int | float) and math.isfinite(v) for v in (t_mean, t_scale)):
            raise ValueError("preprocessing.target_mean and target_scale must be finite numbers")
        if t_scale <= 0:
            raise ValueError(f"preprocessing.target_scale must be > 0, got {t_scale}")
        return cls(
            columns=tuple(columns),
            categories={k: tuple(str(c) for c in v) for k, v in cats.items()},
            mean=tuple(float(v) for v in mean),
            scale=tuple(float(v) for v in scale),
            task=task,
            class_names=tuple(classes),
            target=d.get("target"),
            target_mean=float(t_mean),
            target_scale=float(t_scale),
            data=str(d.get("data", "")),
            split=d.get("split") if isinstance(d.get("split"), dict) else None,
            fill=check_fill(d.get("fill", {}), columns, cats),
        )

    @classmethod
    def plain(cls, n_features: int, task: str, n_classes: int) -> Preprocessor:
        """For a model saved without preprocessing: columns ``"0"``… taken as they are."""
        return cls(
            columns=tuple(str(j) for j in range(n_features)),
            task=task,
            class_names=tuple(range(n_classes)) if task == "classification" else (),
        )


def _as_number(value: Any) -> float | None:
    if value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _numbers(values: Array) -> Array:
    if np.asarray(values).dtype.kind in "biuf":
        return np.asarray(values, dtype=np.float64)
    numbers = [_as_number(v) for v in np.asarray(values, dtype=object).tolist()]
    bad = [i for i, v in enumerate(numbers) if v is None]
    if bad:
        raise ValueError(f"expected numbers, got {values[bad[0]]!r} in row {bad[0] + 1}")
    return np.array(numbers, dtype=np.float64)


def _indices(
    values: list[str | None],
    known: Sequence[str | None],
    column: str,
    unknown: Callable[[int, str], str],
) -> list[int]:
    """Each value's position in ``known``; a missing value, or one not known, is refused
    (``unknown(row, value)`` says how)."""
    _refuse_missing(column, [i for i, v in enumerate(values) if v is None], len(values))
    index = {name: j for j, name in enumerate(known)}
    for i, v in enumerate(values):
        if v not in index:
            raise ValueError(unknown(i, str(v)))
    return [index[v] for v in values]


def _refuse_missing(name: str, rows: list[int], total: int) -> None:
    if rows:
        raise ValueError(
            f"column {name!r} has {len(rows)} missing values (NaN) in {total} rows; the first "
            f"in row {rows[0] + 1}"
        )
