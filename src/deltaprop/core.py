"""Parameters, the abstract Layer, shape checks and the library's exception types.

Contracts (see ARCHITECTURE.md):

- A :class:`Parameter` holds ``value`` (updated in place by optimizers), ``grad`` (same shape,
  always an array) and ``name``.
- A :class:`Layer` caches in ``forward(x, training=True)`` exactly what ``backward`` needs;
  ``backward(grad_out)`` *sets* each parameter's ``grad`` and returns the gradient for its input.
  A layer never divides by N (the loss owns the batch mean) and never updates itself.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from .backend import Array, float_dtype


class DeltapropError(Exception):
    """Base class of the errors raised by deltaprop itself."""


class ForwardNotCalledError(DeltapropError, RuntimeError):
    """``backward`` was called without a preceding ``forward(..., training=True)``."""


class ShapeError(DeltapropError, ValueError):
    """An array's shape does not fit where it is used."""


class Parameter:
    """A trainable array and its gradient.

    Attributes:
        value: the array the optimizer updates in place. Shape as created.
        grad: ∂L/∂value, same shape and dtype; set (not accumulated) by ``Layer.backward``.
        name: stable name, e.g. ``"0.W"`` inside a Sequential.
    """

    __slots__ = ("value", "grad", "name")

    def __init__(self, value: Array, name: str) -> None:
        self.value: Array = value
        self.grad: Array = np.zeros_like(value)
        self.name: str = name

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.value.shape)

    def __repr__(self) -> str:
        return f"Parameter(name={self.name!r}, shape={self.shape}, dtype={self.value.dtype})"


class Workspace:
    """Storage for intermediate results, optionally reused from one call to the next.

    Outside :meth:`reusing` every request returns a fresh array, so results a user keeps are
    never overwritten. Inside it (the training loop, batched prediction), a request for the same
    key, trailing shape and dtype returns the array from the previous step — or, for fewer rows
    (the last, smaller batch), a view of its first rows — so a steady-state step allocates nothing.
    """

    __slots__ = ("reuse", "_arrays")

    def __init__(self) -> None:
        self.reuse: bool = False
        self._arrays: dict[tuple[str, tuple[int, ...]], Array] = {}

    def get(self, key: str, shape: tuple[int, ...], dtype: npt.DTypeLike) -> Array:
        """An array of ``shape`` and ``dtype`` for the intermediate named ``key``."""
        if not self.reuse or not shape:
            return np.empty(shape, dtype=dtype)
        slot = (key, shape[1:])
        array = self._arrays.get(slot)
        if array is None or array.dtype != dtype or len(array) < shape[0]:
            array = np.empty(shape, dtype=dtype)
            self._arrays[slot] = array
        return array[: shape[0]]

    def set_reuse(self, flag: bool) -> None:
        self.reuse = flag
        if not flag:
            self._arrays.clear()


@contextmanager
def reusing(*workspaces: Workspace) -> Iterator[None]:
    """Reuse the storage of ``workspaces`` inside the block (see :class:`Workspace`)."""
    previous = [ws.reuse for ws in workspaces]
    for ws in workspaces:
        ws.set_reuse(True)
    try:
        yield
    finally:
        for ws, flag in zip(workspaces, previous, strict=True):
            ws.set_reuse(flag)


class Layer(ABC):
    """A differentiable function of a batch, with optional parameters.

    Subclasses implement :meth:`forward` and :meth:`backward` as a facing pair.

    ``init_rule`` tells a preceding Dense layer (with ``init="auto"``) which variance rule suits
    this layer: ``"he"`` for ReLU-like activations, ``"glorot"`` for saturating or linear ones.
    """

    init_rule: ClassVar[str] = "glorot"

    def __init__(self) -> None:
        self.workspace = Workspace()

    @abstractmethod
    def forward(self, x: Array, *, training: bool = False) -> Array:
        """Compute the layer's output; with ``training=True`` cache what backward needs."""

    @abstractmethod
    def backward(self, grad_out: Array) -> Array:
        """Given ∂L/∂output, set each parameter's grad and return ∂L/∂input."""

    def backward_params(self, grad_out: Array) -> None:
        """Like :meth:`backward` but the input gradient is not needed (first layer of a model).

        Layers whose input gradient costs real work (Dense: a matrix product) override this.
        """
        self.backward(grad_out)

    def parameters(self) -> list[Parameter]:
        """The layer's trainable parameters, in a stable order."""
        return []

    def output_features(self, in_features: int) -> int:
        """Width of the output for an input of width ``in_features`` (activations keep it)."""
        return in_features

    def workspaces(self) -> list[Workspace]:
        """The storage of this layer (and of any layers inside it)."""
        return [self.workspace]

    def _buffer(self, key: str, shape: tuple[int, ...], dtype: npt.DTypeLike) -> Array:
        return self.workspace.get(key, shape, dtype)

    def _require_cache(self, cache: Any) -> None:
        if cache is None:
            raise ForwardNotCalledError(
                f"{type(self).__name__}.backward called before forward(x, training=True); "
                "run a training forward pass first"
            )

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def check_input(x: Any, *, layer: str, in_features: int | None = None) -> Array:
    """Validate a layer input: a 2-D float array of the expected width.

    Raises:
        TypeError: for a non-array or non-float input.
        ShapeError: for a wrong number of dimensions or width.
    """
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{layer}: input must be a NumPy array, got {type(x).__name__}")
    if x.ndim != 2:
        raise ShapeError(f"{layer}: input must be 2-D (N, features), got shape {x.shape}")
    if in_features is not None and x.shape[1] != in_features:
        raise ShapeError(
            f"{layer}: input has {x.shape[1]} features (shape {x.shape}), expected {in_features}"
        )
    if x.dtype.kind != "f":
        raise TypeError(f"{layer}: input must be float32 or float64, got {x.dtype}")
    return x


def flatten_into(parameters: Sequence[Parameter], dtype: npt.DTypeLike) -> tuple[Array, Array]:
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


def flat_buffers(parameters: Sequence[Parameter]) -> tuple[Array, Array] | None:
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
