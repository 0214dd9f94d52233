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

import operator
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from .arrays import Array, address, device_of, float_dtype, namespace


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

    def get(
        self, key: str, shape: tuple[int, ...], dtype: npt.DTypeLike, like: Array | None = None
    ) -> Array:
        """An array of ``shape`` and ``dtype`` for the intermediate named ``key``, on the device
        of ``like`` (the array it is computed from; None: the CPU)."""
        xp = np if like is None else namespace(like)
        local = self._local
        if not local.reuse or not shape:
            return xp.empty(shape, dtype=dtype)
        slot = (key, shape[1:])
        array = local.arrays.get(slot)
        if (
            array is None
            or array.dtype != dtype
            or len(array) < shape[0]
            or namespace(array) is not xp  # kept from before the model moved
        ):
            array = xp.empty(shape, dtype=dtype)
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
    """What the flat buffers need of a parameter (:class:`deltaprop.nn.layer.Parameter`)."""

    value: Array
    grad: Array
    name: str


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
    devices = {device_of(p.value) for p in parameters}
    if len(devices) > 1:
        raise TypeError(
            f"the parameters are on several devices ({sorted(d.name for d in devices)}); "
            "move the whole model with .to(device)"
        )
    xp = namespace(parameters[0].value) if parameters else np
    values = xp.empty(total, dtype=dtype)
    grads = xp.zeros(total, dtype=dtype)
    offset = 0
    for p in parameters:
        size = p.value.size
        values[offset : offset + size] = p.value.ravel()
        p.value = values[offset : offset + size].reshape(p.value.shape)
        p.grad = grads[offset : offset + size].reshape(p.value.shape)
        offset += size
    return values, grads


def shared_span(
    parameters: Sequence[HasValueAndGrad],
    within: Sequence[HasValueAndGrad],
    values: Array,
    grads: Array,
) -> tuple[Array, Array]:
    """The part of the flat buffers ``values`` and ``grads`` (laid out as ``within``, in order)
    that ``parameters``, a run of consecutive members of ``within``, occupy. Shapes: 1-D views."""
    if not parameters:
        return values[:0], grads[:0]
    start = sum(p.value.size for p in within[: list(within).index(parameters[0])])
    size = sum(p.value.size for p in parameters)
    return values[start : start + size], grads[start : start + size]


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
        start_v = address(p.value) - address(base_v)
        start_g = address(p.grad) - address(base_g)
        if start_v != offset * base_v.itemsize or start_g != offset * base_g.itemsize:
            return None
        if not (p.value.flags.c_contiguous and p.grad.flags.c_contiguous):
            return None
        offset += p.value.size
    return base_v, base_g


class UpdateGroups:
    """The arrays an update pass runs over for a list of parameters, and where they live now.

    When the parameters tile a model's flat buffers, that is one group — the whole model in one
    pass; otherwise each parameter is its own group. A model placed inside another Sequential
    moves its parameters into the new model's buffers: :meth:`follow` finds them there.

    Attributes:
        arrays: ``(values, grads)`` per group, each 1-D.
        spans: each group's slice of an array laid out parameter by parameter.
        size, dtype: of all the parameters together.
    """

    def __init__(self, parameters: Sequence[HasValueAndGrad], *, owner: str) -> None:
        self.parameters = list(parameters)
        self.owner = owner
        self.arrays: list[tuple[Array, Array]] = []
        self.spans: list[slice] = []
        self._values: list[Array] = []  # each parameter's value array when the groups were made
        self._find()
        self.size = sum(values.size for values, _ in self.arrays)
        self.dtype = self.arrays[0][0].dtype
        self.device = device_of(self.arrays[0][0]).name  # a name: the groups are pickled

    def _find(self) -> None:
        flat = flat_buffers(self.parameters)
        if flat is not None:
            self.arrays = [flat]
        else:
            for p in self.parameters:
                if not (p.value.flags.c_contiguous and p.grad.flags.c_contiguous):
                    raise ValueError(
                        f"{self.owner}: parameter {p.name!r} is not a contiguous array"
                    )
            self.arrays = [(p.value.reshape(-1), p.grad.reshape(-1)) for p in self.parameters]
        self.spans, offset = [], 0
        for values, _ in self.arrays:
            self.spans.append(slice(offset, offset + values.size))
            offset += values.size
        self._values = [p.value for p in self.parameters]

    def follow(self) -> bool:
        """Find the parameters again if they moved since; True when they had.

        Raises:
            TypeError: if they changed dtype (``astype``) or device (``to``): the state is of
                the old one.
        """
        if all(map(operator.is_, [p.value for p in self.parameters], self._values)):
            return False
        for p in self.parameters:
            if device_of(p.value).name != self.device:
                raise TypeError(
                    f"{self.owner}: parameter {p.name!r} is now on {device_of(p.value).name}, but "
                    f"the optimizer was built for {self.device}; build the optimizer again "
                    "after .to(device)"
                )
            if p.value.dtype != self.dtype:
                raise TypeError(
                    f"{self.owner}: parameter {p.name!r} is now {p.value.dtype}, but the optimizer "
                    f"was built for {self.dtype}; build the optimizer again after astype"
                )
        self._find()
        return True
