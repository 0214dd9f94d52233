"""Data larger than memory, a piece at a time: row chunks of any array that can be sliced — a
NumPy memory map, a Dask array (each chunk computed as it is reached), a Zarr array — as NumPy
arrays, for ``partial_fit`` (``dp.fit`` itself takes a memory-mapped ``.npy`` as it is)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from ..backend.arrays import Array


def row_chunks(X: Any, rows: int | None = None) -> list[tuple[int, int]]:
    """``(start, stop)`` of each chunk of X's rows: ``rows`` at a time, or X's own row chunks
    (a Dask array's ``chunks[0]``, a Zarr array's ``chunks[0]``), else 65,536 at a time.

    Raises:
        ValueError: for ``rows`` < 1.
    """
    n = int(X.shape[0])  # Zarr's arrays have a shape, but no len()
    if rows is not None:
        if not (isinstance(rows, int) and rows >= 1):
            raise ValueError(f"chunks: rows must be an integer >= 1, got {rows!r}")
        sizes: list[int] = [rows] * (n // rows) + ([n % rows] if n % rows else [])
    else:
        own = getattr(X, "chunks", None)  # Dask: a tuple per axis; Zarr: one chunk's shape
        first = own[0] if own else 65_536
        if isinstance(first, tuple):
            sizes = [int(s) for s in first]
        else:
            step = int(first)
            sizes = [step] * (n // step) + ([n % step] if n % step else [])
    bounds, start = [], 0
    for size in sizes:
        bounds.append((start, start + size))
        start += size
    return bounds


def chunks(X: Any, y: Any = None, rows: int | None = None) -> Iterator[Any]:
    """Row chunks of ``X`` (and of ``y`` beside it) as NumPy arrays, one at a time:
    ``for X_part, y_part in chunks(X, y): model.partial_fit(X_part, y_part, classes=...)``.

    Only one chunk is in memory at a time (a Dask array's chunks are computed as they are
    reached). Shapes: X (N, F) → (n, F); y (N,) → (n,).

    Raises:
        ValueError: when y has another number of rows than X, or ``rows`` < 1.
    """
    if y is not None and y.shape[0] != X.shape[0]:
        raise ValueError(f"chunks: X has {X.shape[0]} rows and y has {y.shape[0]}")
    for start, stop in row_chunks(X, rows):
        X_part: Array = np.asarray(X[start:stop])
        if y is None:
            yield X_part
        else:
            yield X_part, np.asarray(y[start:stop])
