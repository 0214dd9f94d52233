"""Each rank's part of a batch, and the start-up check that every rank runs the same job."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend.arrays import Array
from .communicator import Communicator


def share(n: int, rank: int, size: int) -> tuple[int, int]:
    """``(start, stop)`` of rank ``rank``'s share of ``n`` rows: consecutive, as even as can be
    (the first ``n % size`` ranks one row more; a rank may get none of a short last batch)."""
    start = rank * (n // size) + min(rank, n % size)
    return start, start + n // size + (1 if rank < n % size else 0)


def part(rows: Array, rank: int, size: int) -> Array:
    """Rank ``rank``'s share of a batch's ``rows`` (see :func:`share`)."""
    start, stop = share(len(rows), rank, size)
    return rows[start:stop]


def check_same(comm: Communicator, facts: dict[str, Any]) -> None:
    """Refuse to start when the ranks disagree about any of ``facts`` (the model, the data's
    shape and a hash of it, the dtype, the seed, the settings), on every rank alike.

    Raises:
        ValueError: naming the first fact that differs and each rank's value.
    """
    every = comm.gather_all(facts)
    for key in facts:
        values = [f.get(key) for f in every]
        if any(_differs(v, values[0]) for v in values[1:]):
            shown = ", ".join(f"rank {r}: {_short(v)}" for r, v in enumerate(values))
            raise ValueError(
                f"distributed: the ranks were started with different {key} ({shown}); every "
                "rank must run the same model, data and settings"
            )


def _differs(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return not np.array_equal(a, b)
    return bool(a != b)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
