"""The :class:`Dataset`: feature columns and a target as read, and its train/test split."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..backend.arrays import DEFAULT_DTYPE, Array
from .tables import Table

Split = tuple[Array, Array, Array, Array]


@dataclass(frozen=True)
class Dataset:
    """Feature columns and a target, as read; ``X, y = dataset`` unpacks them.

    Attributes:
        name: the data set's name, or the file it was read from.
        features: the feature columns; ``X`` is them as one float array (N, F) when all are
            numeric (text columns are one-hot encoded by :mod:`deltaprop.data.preprocessing`).
        y: (N,) int64 class indices for classification, (N,) float64 for regression.
        task: ``"classification"`` or ``"regression"``.
        class_names: the label of each class index (classification), else ``()``.
        source: where the data came from, in words.
        test: the data set's own test split, when it has one (Fashion-MNIST).
        standardize: whether its features are best standardized before training.
        path: the file it was read from, as an absolute path; empty for a built-in set.
    """

    name: str
    features: Table
    y: Array
    task: str
    class_names: tuple[Any, ...] = ()
    source: str = ""
    test: Dataset | None = None
    standardize: bool = False
    path: str = ""

    def __post_init__(self) -> None:
        if len(self.y) != self.features.n_rows:
            raise ValueError(f"{len(self.y)} targets for {self.features.n_rows} rows")

    @property
    def X(self) -> Array:
        """The features as one float array, shape (N, F)."""
        text = [n for n in self.features.names if self.features.is_text(n)]
        if text:
            raise ValueError(
                f"{self.name}: columns {text} hold text; encode them with "
                "deltaprop.data.preprocessing.Preprocessor.fit"
            )
        return self.features.numeric(self.features.names)

    @property
    def streamed(self) -> bool:
        """Whether the features are a memory-mapped file, read as training reaches its rows:
        its test rows are then its last ``test_size`` rows (a slice), not drawn at random."""
        return isinstance(self.features.matrix, np.memmap)

    @property
    def n_rows(self) -> int:
        return len(self.y)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def __iter__(self) -> Iterator[Array]:
        return iter((self.X, self.y))

    def take(self, rows: Array | slice) -> Dataset:
        """The rows ``rows`` (an index array, or a slice: a view), without the test split."""
        return replace(self, features=self.features.take(rows), y=self.y[rows], test=None)

    def split(self, test_size: float | None = None, seed: int = 0) -> tuple[Dataset, Dataset]:
        """(train, test): the data set's own test split, or ``test_size`` of the rows drawn
        with ``seed`` (stratified by class when every class has two rows or more); for a
        :attr:`streamed` file its last ``test_size`` rows.

        Args:
            test_size: fraction of rows held out, in (0, 1); None: the data set's own test
                split if it has one, else 0.25.
        """
        if test_size is None and self.test is not None:
            return replace(self, test=None), self.test
        fraction = 0.25 if test_size is None else test_size
        if not (isinstance(fraction, float | int) and 0 < fraction < 1):
            raise ValueError(f"test_size must be in (0, 1), got {fraction!r}")
        n_test = math.ceil(self.n_rows * fraction)
        if n_test >= self.n_rows:
            raise ValueError(
                f"test_size={fraction} of {self.n_rows} rows leaves no rows to train on"
            )
        if self.streamed:  # a slice of a memory map is a view; drawn rows would be a copy
            cut = self.n_rows - n_test
            return self.take(slice(0, cut)), self.take(slice(cut, self.n_rows))
        from sklearn.model_selection import train_test_split

        stratify = None
        if self.task == "classification":
            counts = np.bincount(self.y, minlength=self.n_classes)
            if counts.min() >= 2 and n_test >= self.n_classes:
                stratify = self.y
        train, test = train_test_split(
            np.arange(self.n_rows), test_size=n_test, random_state=seed, stratify=stratify
        )
        return self.take(train), self.take(test)

    def train_test_split(
        self, test_size: float | None = None, seed: int = 0, standardize: bool | None = None
    ) -> Split:
        """``(X_train, X_test, y_train, y_test)`` as float32 arrays (see :meth:`split`).

        Args:
            standardize: scale each feature to mean 0 and std 1 on the training rows; None: as
                the data set recommends (:attr:`standardize`).
        """
        train, test = self.split(test_size, seed)
        X_train, X_test = train.X, test.X
        if self.standardize if standardize is None else standardize:
            mean = X_train.mean(axis=0)
            std = X_train.std(axis=0)
            std[std == 0] = 1.0
            X_train, X_test = (X_train - mean) / std, (X_test - mean) / std
        return (
            X_train.astype(DEFAULT_DTYPE, copy=False),
            X_test.astype(DEFAULT_DTYPE, copy=False),
            train.y,
            test.y,
        )


def from_arrays(
    name: str,
    X: Array,
    y: Array,
    *,
    names: tuple[str, ...] | None = None,
    class_names: tuple[Any, ...] = (),
    task: str = "classification",
    source: str,
    standardize: bool = True,
) -> Dataset:
    if task == "classification" and not class_names:
        class_names = tuple(range(int(y.max()) + 1))
    target = y.astype(np.int64) if task == "classification" else y.astype(np.float64)
    return Dataset(
        name=name,
        features=Table.from_matrix(np.asarray(X, dtype=np.float64), names),
        y=target,
        task=task,
        class_names=tuple(class_names),
        source=source,
        standardize=standardize,
    )
