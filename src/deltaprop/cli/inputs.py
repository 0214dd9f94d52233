"""What ``deltaprop train`` reads besides its options: a memory-mapped ``.npy`` pair streamed
rather than loaded, and the MPI ranks it runs on when ``mpirun`` started it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..data import catalog as datasets
from ..data.dataset import Dataset
from ..distributed.communicator import World, launched_by_mpi
from ..training import pipeline
from .shared import fail, user_input


def streamed(data: str, target_file: Path, task: str | None) -> Dataset:
    """``--data X.npy --target-file y.npy``: X memory-mapped, the targets loaded."""
    if not data.lower().endswith(".npy"):
        fail(f"--target-file goes with --data X.npy (a 2-D NumPy file), got --data {data!r}")
    with user_input("--data"):
        return datasets.from_npy(data, target_file, task=task or "auto")


def stream_notes(dataset: Dataset, prepared: pipeline.Prepared) -> list[str]:
    if not dataset.streamed:
        return []
    copied = " (--standardize copied it into memory)" if prepared.prep.mean else ""
    return [
        f"streaming {dataset.name}: memory-mapped, read as training reaches its rows; the test "
        f"rows are its last {len(prepared.test.y):,} rows (a slice, not drawn at random){copied}"
    ]


def mpi_world() -> Any:
    """Every rank of the job when ``mpirun`` started this process with several, else None."""
    if not launched_by_mpi():
        return None
    try:
        return World()
    except ImportError as error:
        fail(f"started by mpirun, but {error}")
