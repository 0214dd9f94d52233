"""Data sets as arrays: synthetic 2-D sets, scikit-learn's bundled sets, Fashion-MNIST, your files.

Every loader returns a :class:`Dataset`: the raw feature columns (a
:class:`~deltaprop.data.tables.Table`, no preprocessing), the target (class indices with their
names, or numbers for regression), the task, and where the data came from.
``X, y = dp.datasets.moons(n=500)`` unpacks the arrays;
:meth:`Dataset.train_test_split` gives ``(X_train, X_test, y_train, y_test)``, standardized on the
training rows when asked. Nothing is downloaded: scikit-learn's sets ship with scikit-learn, and
Fashion-MNIST is read from the gzipped IDX files of the Debian package ``dataset-fashion-mnist``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .builtin import (
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_DIR,
    blobs,
    breast_cancer,
    circles,
    diabetes,
    digits,
    fashion_mnist,
    fashion_mnist_files,
    iris,
    moons,
    spirals,
    wine,
    xor,
)
from .dataset import Dataset, Split
from .idx import idx_shape, read_idx, read_idx_images
from .streams import chunks
from .tables import FORMATS, Table, format_of, read_table

__all__ = [
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_DIR",
    "Dataset",
    "Split",
    "Table",
    "blobs",
    "breast_cancer",
    "chunks",
    "circles",
    "diabetes",
    "digits",
    "fashion_mnist",
    "fashion_mnist_files",
    "from_file",
    "from_npy",
    "idx_shape",
    "iris",
    "load",
    "moons",
    "read_idx",
    "read_idx_images",
    "spirals",
    "wine",
    "xor",
]

MAX_CLASSES_GUESSED = 20
"""A numeric target of whole numbers with at most this many values is guessed to be classes."""


# --- the user's files -------------------------------------------------------------------------


def _label(value: Any) -> Any:
    """A class label as it is shown and stored: whole numbers as int, else as read."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def from_file(
    path: str | os.PathLike[str],
    target: str | None = None,
    *,
    task: str = "auto",
    header: bool | None = None,
    drop: tuple[str, ...] = (),
    sep: str | None = None,
) -> Dataset:
    """A CSV, TSV, Parquet or NPZ file (CSV and TSV may be gzipped) with a ``target`` column.

    Args:
        target: the target column's name (for a file without a header, its position from
            ``"0"``); None: ``"y"`` if the file has such a column, else an error listing them.
        task: ``"classification"``, ``"regression"``, or ``"auto"``: classes for text labels
            and for whole numbers of at most 20 distinct values, regression otherwise.
        header: whether a CSV's first row names the columns; None guesses.
        drop: columns to leave out (identifiers, free text).
        sep: a CSV's field separator; None: ``;`` or ``,`` as the first line shows (TSV: tab).

    Raises:
        FileNotFoundError: if there is no such file.
        ValueError: no such target or dropped column (the columns are listed), a target with
            missing values (how many, the first row), text targets for regression.
    """
    table = read_table(path, header=header, delimiter=sep)
    if target is None:
        if "y" not in table:
            raise ValueError(
                f"name the target column with --target; the columns are {list(table.names)}"
            )
        target = "y"
    for name in (target, *drop):
        if name not in table:
            raise ValueError(
                f"{str(path)!r} has no column {name!r}; the columns are {list(table.names)}"
            )
    values = table.column(target)
    features = table
    for name in (target, *drop):
        features = features.without(name)
    if not features.names:
        raise ValueError(f"{str(path)!r}: no feature columns are left beside target {target!r}")
    y, task, classes = _target(values, task, f"{str(path)!r}: target {target!r}")
    return Dataset(
        name=Path(path).name,
        features=features,
        y=y,
        task=task,
        class_names=classes,
        source=f"{format_of(Path(path))} file {str(path)!r}"
        + _header_note(table.header, guessed=header is None),
        path=str(Path(path).resolve()),
        standardize=True,  # a file's columns come in any units; a network trains on like scales
    )


def _target(values: Any, task: str, what: str) -> tuple[Any, str, tuple[Any, ...]]:
    """A target column as the network trains on it: (class indices or numbers, the task — from
    ``"auto"``: classes for text and for whole numbers of at most 20 values — and the classes).

    Raises:
        ValueError: for missing values, text to regress on, inf, or a single class.
    """
    text = values.dtype == object
    missing = np.flatnonzero([v is None for v in values] if text else np.isnan(values))
    if missing.size:
        raise ValueError(
            f"{what} has {missing.size} missing values (NaN), the first in row {missing[0] + 1}"
        )
    if task == "auto":
        whole = not text and bool(np.all(np.isfinite(values) & (values == np.round(values))))
        few = len(np.unique(values)) <= MAX_CLASSES_GUESSED
        task = "classification" if text or (whole and few) else "regression"
    if task == "regression":
        if text:
            raise ValueError(
                f"{what} holds text, not numbers to regress on; use --task classification"
            )
        y = values.astype(np.float64)
        if not np.all(np.isfinite(y)):
            raise ValueError(f"{what} holds inf")
        classes: tuple[Any, ...] = ()
    elif task == "classification":
        labels, indices = np.unique(values.astype(str) if text else values, return_inverse=True)
        y = indices.astype(np.int64)
        classes = tuple(_label(v) for v in labels.tolist())
        if len(classes) < 2:
            raise ValueError(f"{what} has one class only: {classes}")
    else:
        raise ValueError(f"task must be auto, classification or regression, got {task!r}")
    return y, task, classes


def from_npy(
    path: str | os.PathLike[str], target_path: str | os.PathLike[str], *, task: str = "auto"
) -> Dataset:
    """Features from a 2-D ``.npy`` file, memory-mapped (read as training reaches its rows,
    never loaded whole), and the target from another ``.npy`` file, loaded.

    Its train/test split is a slice (the last rows are the test rows; see
    :meth:`Dataset.split`), and it is not standardized by default: both would copy it.

    Raises:
        ValueError: for a file that is not a 2-D array of numbers, or targets of another length.
    """
    try:
        X = np.load(path, mmap_mode="r", allow_pickle=False)
        values = np.load(target_path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read {str(path)!r} or {str(target_path)!r}: {error}") from None
    if X.ndim != 2 or X.dtype.kind not in "fiu":
        raise ValueError(f"{str(path)!r} must hold a 2-D array of numbers, got {X.dtype} {X.shape}")
    if values.ndim != 1 or len(values) != len(X):
        raise ValueError(
            f"{str(target_path)!r} must hold one target per row of {str(path)!r} ({len(X)}), "
            f"got shape {values.shape}"
        )
    if values.dtype.kind in "US":
        values = values.astype(object)
    y, task, classes = _target(values, task, f"{str(target_path)!r}")
    megabytes = X.nbytes / 1e6
    return Dataset(
        name=Path(path).name,
        features=Table.from_matrix(X),
        y=y,
        task=task,
        class_names=classes,
        source=f"npy file {str(path)!r}, memory-mapped ({megabytes:,.0f} MB, streamed)",
        path=str(Path(path).resolve()),
    )


def _header_note(header: bool | None, *, guessed: bool) -> str:
    """How a CSV's first row was read, for the summary (nothing for other formats)."""
    if header is None:
        return ""
    how = "its first row names the columns" if header else "no header row (columns 0, 1, ...)"
    return f", {how}" + (", as guessed: --header or --no-header to say" if guessed else "")


# --- by name ----------------------------------------------------------------------------------

LOADERS: dict[str, Callable[..., Dataset]] = {
    "xor": xor,
    "moons": moons,
    "circles": circles,
    "spirals": spirals,
    "blobs": blobs,
    "breast-cancer": breast_cancer,
    "digits": digits,
    "iris": iris,
    "wine": wine,
    "diabetes": diabetes,
    "fashion-mnist": fashion_mnist,
}
"""The built-in data sets by name (the registry's ``DATASETS`` holds the same table)."""

ALIASES = {"two-moons": "moons"}
"""Other names of built-in sets."""

SYNTHETIC = ("xor", "moons", "circles", "spirals", "blobs")
"""The generated sets, which take ``n``, ``noise`` and ``seed``."""


def is_file_name(name: str) -> bool:
    """Whether ``name`` names a data file rather than a built-in set: a data file's suffix, a
    path with a directory, or an existing path that is no built-in name."""
    suffix = Path(name).suffix.lower()
    if suffix in FORMATS or suffix == ".gz" or os.sep in name:
        return True
    key = name.strip().lower().replace("_", "-")
    if key in LOADERS or key in ALIASES:
        return False
    return Path(name).exists()


def load(name: str, **options: Any) -> Dataset:
    """A built-in data set by name (``"iris"``, ``"fashion-mnist"``, ...) or a data file.

    ``options`` go to the loader: ``n``, ``noise``, ``seed`` for the synthetic sets, ``directory``
    for Fashion-MNIST, ``target``, ``task``, ``header``, ``drop`` for files (:func:`from_file`).

    Raises:
        ValueError: for an unknown name (the known ones are listed) or options it does not take.
    """
    if is_file_name(name):
        return from_file(name, **options)
    key = name.strip().lower().replace("_", "-")
    key = ALIASES.get(key, key)
    if key not in LOADERS:
        raise ValueError(
            f"unknown data set {name!r}; known: {', '.join(LOADERS)}, or a .csv, .tsv, .parquet "
            "or .npz file"
        )
    return LOADERS[key](**options)
