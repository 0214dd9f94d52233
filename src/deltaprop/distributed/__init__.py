"""Data-parallel training over MPI (``mpi4py``, the ``[mpi]`` extra), the way Horovod and PyTorch
DDP work: every rank computes the gradients of its part of each batch, the flat gradient buffer
is summed across ranks with one in-place allreduce, and every rank applies the same step.

:mod:`.communicator` wraps the MPI communicator (and knows whether this process was started by
``mpirun``); :mod:`.sharding` is each rank's part of a batch and the check that every rank was
started with the same model, data and settings. ``fit(..., distributed=World())`` runs it
(:mod:`deltaprop.training.data_parallel`).
"""

from .communicator import Communicator, World, launched_by_mpi, local_launcher
from .sharding import check_same, part, share

__all__ = [
    "Communicator",
    "World",
    "check_same",
    "launched_by_mpi",
    "local_launcher",
    "part",
    "share",
]
