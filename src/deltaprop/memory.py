"""Memory for speed: flat parameter buffers and workspaces reused from batch to batch.

- :func:`flatten_into` moves a model's parameters into two flat contiguous buffers (values and
  gradients), so an optimizer step is one pass over one array and a checkpoint a few arrays.
  Layers keep seeing ordinary ``W`` and ``b`` arrays: views into those buffers.
- A :class:`Workspace` holds a layer's intermediate arrays. Inside :func:`reusing` (the training
  loop, batched prediction) a step gets the previous step's arrays back, so a steady-state step
  allocates nothing; outside it every request is a fresh array. Reuse is per thread, and what
  the library returns to a caller is never one of these arrays.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from .backend import Array, float_dtype


class _ThreadStorage(threading.local):
    """One thread's view of a workspace: its reuse flag and its arrays."""

    def __init__(self) -> None:
        self.reuse = False
        self.arrays: dict[tuple[str, tuple[int, ...]], Array] = {}


class Workspace:
    """Storage for intermediate results, optionally reused from one call to the next.

    Outside :func:`reusing` every request returns a fresh array, so results a user keeps are
    never overwritten. Inside it, a request for the same key, trailing shape and dtype returns the
    array from the previous step — or, for fewer rows (the last, smaller batch), a view of its
    first rows.

    The reuse flag and the arrays belong to the calling thread: one thread's ``reusing`` block
    never hands its arrays to another thread, so several threads can run inference on one model
    at once, each with its own storage.
    """

    __slots__ = ("_local",)

    def __init__(self) -> None:
        self._local = _ThreadStorage()

    @property
    def reuse(self) -> bool:
        """Whether this thread is inside a :func:`reusing` block for this workspace."""
        return self._local.reuse

    def get(self, key: str, shape: tuple[int, ...], dtype: npt.DTypeLike) -> Array:
        """An array of ``shape`` and ``dtype`` for the intermediate named ``key``."""
        local = self._local
        if not local.reuse or not shape:
            return np.empty(shape, dtype=dtype)
        slot = (key, shape[1:])
        array = local.arrays.get(slot)
        if array is None or array.dtype != dtype or len(array) < shape[0]:
            array = np.empty(shape, dtype=dtype)
            local.arrays[slot] = array
        return array[: shape[0]]

    def set_reuse(self, flag: bool) -> None:
        """Switch reuse on or off for this thread; off frees this thread's arrays."""
        local = self._local
        local.reuse = flag
        if not flag:
            local.arrays.clear()

    def __deepcopy__(self, memo: dict[int, Any]) -> Workspace:
        return Workspace()  # scratch storage: a copy starts empty

    def __reduce__(self) -> tuple[type[Workspace], tuple[()]]:
        return Workspace, ()  # pickled empty, as copied


@contextmanager
def reusing(*workspaces: Workspace) -> Iterator[None]:
    """Reuse the storage of ``workspaces`` inside the block, in this thread (see
    :class:`Workspace`)."""
    previous = [ws.reuse for ws in workspaces]
    for ws in workspaces:
        ws.set_reuse(True)
    try:
        yield
    finally:
        for ws, flag in zip(workspaces, previous, strict=True):
            ws.set_reuse(flag)


class HasValueAndGrad(Protocol):
    """What the flat buffers need of a parameter (:class:`deltaprop.core.Parameter`)."""

    value: Array
    grad: Array


def flatten_into(
    parameters: Sequence[HasValueAndGrad], dtype: npt.DTypeLike
) -> tuple[Array, Array]:
    """Move the parameters' values and grads into two flat contiguous buffers.

    Afterwards each ``p.value`` and ``p.grad`` is a view into the returned buffers, in order, so an
    optimizer can update every parameter of a model in one pass over one array.

    Returns:
        ``(values, grads)``, each of shape (total_size,).
    """
    dtype = float_dtype(dtype)
    total = sum(p.value.size for p in parameters)
    values = np.empty(total, dtype=dtype)
    grads = np.zeros(total, dtype=dtype)
    offset = 0
    for p in parameters:
        size = p.value.size
        values[offset : offset + size] = p.value.ravel()
        p.value = values[offset : offset + size].reshape(p.value.shape)
        p.grad = grads[offset : offset + size].reshape(p.value.shape)
        offset += size
    return values, grads


def flat_buffers(parameters: Sequence[HasValueAndGrad]) -> tuple[Array, Array] | None:
    """Return the flat ``(values, grads)`` buffers that ``parameters`` tile exactly, if any.

    ``None`` when the parameters are separate arrays (then callers loop over them).
    """
    if not parameters:
        return None
    first_v, first_g = parameters[0].value, parameters[0].grad
    base_v, base_g = first_v.base, first_g.base
    if base_v is None or base_g is None or base_v.ndim != 1 or base_g.ndim != 1:
        return None
    if base_v.size != sum(p.value.size for p in parameters) or base_g.size != base_v.size:
        return None
    offset = 0
    for p in parameters:
        if p.value.base is not base_v or p.grad.base is not base_g:
            return None
        start_v = p.value.__array_interface__["data"][0] - base_v.__array_interface__["data"][0]
        start_g = p.grad.__array_interface__["data"][0] - base_g.__array_interface__["data"][0]
        if start_v != offset * base_v.itemsize or start_g != offset * base_g.itemsize:
            return None
        if not (p.value.flags.c_contiguous and p.grad.flags.c_contiguous):
            return None
        offset += p.value.size
    return base_v, base_g
