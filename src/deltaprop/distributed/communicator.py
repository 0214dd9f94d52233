"""The MPI communicator the data-parallel loop talks to: in-place sums of flat buffers, the
gathering of small objects, and how many ranks share this host's cores.

mpi4py is imported only when a :class:`Communicator` is made, so that importing deltaprop never
starts MPI.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from typing import Any

import numpy as np

from ..backend.arrays import Array

MPI_ENVIRONMENT = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS")
"""Variables that Open MPI's, MPICH's (Hydra, PMI) and PMIx launchers set in each rank."""


def launched_by_mpi() -> bool:
    """Whether this process was started by ``mpirun``/``mpiexec`` with more than one rank."""
    for name in ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MPI_LOCALNRANKS"):
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) > 1:
            return True
    return False


def local_launcher(ranks: int, mpiexec: str | None = None) -> list[str]:
    """The ``mpiexec`` command line that starts ``ranks`` ranks on this host over the loopback
    interface only (MPICH's Hydra: ``-iface lo``; Open MPI: its TCP transport on ``lo``, more
    ranks than cores allowed, and root allowed, as in a container).

    Raises:
        FileNotFoundError: when no ``mpiexec`` is on the PATH.
    """
    found = mpiexec or shutil.which("mpiexec")
    if found is None:
        raise FileNotFoundError(
            "no mpiexec on the PATH: pip install mpich (or Debian's mpich or openmpi-bin)"
        )
    version = subprocess.run([found, "--version"], capture_output=True, text=True).stdout
    command = [found, "-n", str(ranks)]
    if "Open MPI" in version:
        command += ["--oversubscribe", "--mca", "btl_tcp_if_include", "lo"]
        command += ["--mca", "oob_tcp_if_include", "lo"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            command.append("--allow-run-as-root")
    else:  # MPICH's Hydra, and launchers that read its flags
        command += ["-iface", "lo"]
    return command


def _mpi() -> Any:
    try:
        from mpi4py import MPI
    except ImportError:
        raise ImportError(
            "distributed training runs over MPI through mpi4py: pip install 'deltaprop[mpi]' "
            "(and an MPI: PyPI's mpich wheel, or Debian's mpich or openmpi-bin)"
        ) from None
    return MPI


class Communicator:
    """One MPI communicator: ``rank`` and ``size``, sums and gathers, and an abort that ends
    every rank (an exception on one rank would otherwise leave the others waiting forever).

    Args:
        comm: an ``mpi4py.MPI.Comm``; None: ``MPI.COMM_WORLD``.
    """

    def __init__(self, comm: Any = None) -> None:
        self._MPI = _mpi()
        self.comm = self._MPI.COMM_WORLD if comm is None else comm
        self.rank: int = self.comm.Get_rank()
        self.size: int = self.comm.Get_size()
        local = self.comm.Split_type(self._MPI.COMM_TYPE_SHARED)
        self.local_size: int = local.Get_size()  # ranks on this host, sharing its cores
        local.Free()

    @property
    def is_root(self) -> bool:
        """Rank 0: the one that prints, and writes files."""
        return self.rank == 0

    def sum_(self, buffer: Array) -> Array:
        """Σ over the ranks of ``buffer`` (contiguous float64/float32), in place; returned."""
        if not buffer.flags.c_contiguous:
            raise ValueError("sum_: the buffer must be C-contiguous")
        self.comm.Allreduce(self._MPI.IN_PLACE, buffer, op=self._MPI.SUM)
        return buffer

    def sum_values(self, *values: float) -> list[float]:
        """Σ over the ranks of a few numbers, in float64."""
        packed = np.array(values, dtype=np.float64)
        return self.sum_(packed).tolist()

    def gather_all(self, item: Any) -> list[Any]:
        """Every rank's ``item`` (a small picklable object), in rank order, on every rank."""
        return list(self.comm.allgather(item))

    def abort(self, error: BaseException) -> None:
        """Say what went wrong on this rank, then end every rank of the job (exit code 1)."""
        print(
            f"deltaprop: rank {self.rank} of {self.size} failed: {type(error).__name__}: "
            f"{error}; ending every rank",
            file=sys.stderr,
            flush=True,
        )
        self.comm.Abort(1)

    def threads_per_rank(self) -> int:
        """This host's cores shared among its ranks (at least 1): each rank's BLAS and compiled
        kernels use that many, so that N ranks on one host do not oversubscribe its cores."""
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
        return max(1, (cores or os.cpu_count() or 1) // self.local_size)

    def __repr__(self) -> str:
        return f"Communicator(rank={self.rank}, size={self.size})"


def World() -> Communicator:  # noqa: N802  # reads as the thing it returns, as MPI's COMM_WORLD
    """Every rank of the job (``MPI.COMM_WORLD``)."""
    return Communicator()
