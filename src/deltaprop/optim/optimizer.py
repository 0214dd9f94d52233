"""The base of every optimizer: validation, learning rate, clipping, the loop over parameters.

Each optimizer (one module each: :mod:`.sgd`, :mod:`.adam`, :mod:`.rmsprop`, :mod:`.adagrad`) is
a subclass that names its state and hands its hyperparameters to its update rule, written in its
own module three ways: the math in the class docstring, ``<rule>_reference`` in NumPy (one array
expression per line of the math, as PyTorch documents the algorithm) and ``<rule>``, the same
update as one compiled pass over the whole model's flat buffers — instead of a dozen array passes,
each reading and writing all of memory. The two take the same keyword arguments and update ``p``
and the state arrays in place; ``tests/optim/test_optimizers.py`` checks that they agree.

Both keep optimizer state out of the subnormal range: a moment that decays below the smallest
normal float (≈1.2e-38 in float32) is set to 0 (:func:`flush`). Subnormal arithmetic is 10-100×
slower on x86 and would otherwise slow training down after a few epochs, for weights whose
gradients are always zero (the edge pixels of an image). Scalars are cast to the parameters'
dtype before the loop, so float32 parameters are updated in float32 arithmetic, as PyTorch does.

Shapes: every array argument of a rule is 1-D and of one length (the flat parameters of a model).
"""

from __future__ import annotations

import inspect
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import numpy as np

from ..backend.arrays import Array, namespace
from ..backend.memory import UpdateGroups
from ..errors import ShapeError
from ..nn.layer import Parameter, format_call
from ..validation import check_positive


def flush(state: Array, tiny: float) -> None:
    """Set entries with |x| below ``tiny`` (the smallest normal float) to 0, in place."""
    state[np.abs(state) < tiny] = 0


def check_flat(rule: str, names: str, *arrays: Array) -> None:
    """Refuse arrays that are not 1-D and of one length, before a compiled loop indexes them."""
    shape = arrays[0].shape
    if len(shape) == 1:
        for array in arrays:
            if array.shape != shape:
                break
        else:
            return
    shapes = dict(zip(names.split(), (a.shape for a in arrays), strict=True))
    raise ShapeError(f"{rule}: arguments must be 1-D arrays of one length, got {shapes}")


TINY = {np.dtype(t): np.finfo(t).tiny for t in (np.float32, np.float64)}
"""The smallest normal number of each dtype: state below it is flushed to 0."""


LearningRate = float | Callable[[int], float]


class Optimizer(ABC):
    """Base class: validation, learning rate, clipping and the loop over parameter groups.

    Args:
        parameters: the parameters to update (``model.parameters()``). When they tile a model's
            flat buffer the update is one pass over it; otherwise one pass per parameter.
        lr: a float > 0, or a schedule: a callable ``step -> lr`` (see
            :mod:`deltaprop.optim.schedules`) called with the number of updates done so far.
        clip_norm: if given, gradients are scaled so their global L2 norm is at most this.

    Attributes:
        step_count: updates done so far (PyTorch's ``state["step"]``).
        lr_scale: a factor on the learning rate (ReduceLROnPlateau lowers it).
        state: the optimizer's state arrays by name, each flat over all parameters.
    """

    state_names: ClassVar[tuple[str, ...]] = ()
    rule: ClassVar[Callable[..., None]]
    epoch_step: ClassVar[Callable[..., None] | None] = None
    """The rule as the compiled epoch calls it on a thread's slice of the flat buffers,
    ``epoch_step(p, g, s1, s2, h, step, lr, grad_scale, tiny)`` (None: the compiled epoch cannot
    train with this optimizer); ``h`` is :meth:`epoch_hyperparameters`."""
    epoch_arguments: ClassVar[tuple[str, ...]] = ()
    """The rule arguments that :attr:`epoch_step` reads from ``h``, in its order."""

    def __init__(
        self, parameters: Iterable[Parameter], lr: LearningRate, *, clip_norm: float | None = None
    ) -> None:
        name = type(self).__name__
        self.parameters: list[Parameter] = list(parameters)
        if not self.parameters:
            raise ValueError(f"{name}: got an empty parameter list")
        seen: dict[int, int] = {}
        for index, p in enumerate(self.parameters):
            if not isinstance(p, Parameter):
                raise TypeError(f"{name}: parameters must be Parameters, got {type(p).__name__}")
            if id(p) in seen:
                raise ValueError(
                    f"{name}: parameter {p.name!r} appears twice in the list (at {seen[id(p)]} "
                    f"and {index}); it would be updated twice per step"
                )
            seen[id(p)] = index
        self.lr: LearningRate = lr if callable(lr) else check_positive("lr", lr, owner=name)
        self.clip_norm = (
            None if clip_norm is None else check_positive("clip_norm", clip_norm, owner=name)
        )
        self.lr_scale = 1.0
        self.step_count = 0
        self._groups = UpdateGroups(self.parameters, owner=name)
        self.state: dict[str, Array] = {
            key: namespace(self._groups.arrays[0][0]).zeros(self._groups.size, self._groups.dtype)
            for key in self.state_names
        }
        self._state_views: list[list[Array]] = []  # per group, its span of each state array
        self._slice_state()

    def _slice_state(self) -> None:
        self._state_views = [
            [self.state[key][span] for key in self.state_names] for span in self._groups.spans
        ]

    def _follow_parameters(self) -> None:
        """Update the parameters where they live now (see
        :class:`~deltaprop.backend.memory.UpdateGroups`), keeping the state, which is laid out
        parameter by parameter whatever the storage."""
        if self._groups.follow():
            self._slice_state()

    # --- learning rate ----------------------------------------------------------------------

    def current_lr(self) -> float:
        """The learning rate of the next update: schedule(step_count) × lr_scale.

        Raises:
            ValueError: if a schedule gives a negative or non-finite rate (training would
                ascend or blow up).
        """
        return self.upcoming_lrs(1)[0]

    def upcoming_lrs(self, count: int) -> list[float]:
        """The learning rates of the next ``count`` updates (schedule × lr_scale).

        Raises:
            ValueError: as :meth:`current_lr`, for the first that is negative or not finite.
        """
        rates = []
        for k in range(count):
            base = self.lr(self.step_count + k) if callable(self.lr) else self.lr
            lr = float(base) * self.lr_scale
            if not (math.isfinite(lr) and lr >= 0):
                raise ValueError(
                    f"{type(self).__name__}: the learning rate for step {self.step_count + k + 1} "
                    f"is {lr} (from lr={self.lr!r}); it must be finite and >= 0"
                )
            rates.append(lr)
        return rates

    # --- the update -----------------------------------------------------------------------

    def flat_buffers(self) -> tuple[Array, Array, list[Array]] | None:
        """``(values, grads, state arrays)`` as 1-D arrays when all the parameters live in one
        flat buffer (a compiled epoch updates them in place), else None."""
        self._follow_parameters()
        if len(self._groups.arrays) != 1:
            return None
        values, grads = self._groups.arrays[0]
        return values, grads, self._state_views[0]

    def grad_norm(self) -> float:
        """Global L2 norm of all gradients (inf or nan if any gradient is not finite)."""
        self._follow_parameters()
        total = 0.0
        for _, grads in self._groups.arrays:
            total += float(np.dot(grads, grads))
        return math.sqrt(total) if total >= 0 else math.nan

    def step(self, grad_norm: float | None = None) -> None:
        """Apply one update to every parameter from its current ``grad``.

        Args:
            grad_norm: the global gradient norm if the caller already computed it (saves a pass
                when clipping).
        """
        self._follow_parameters()
        lr = self.current_lr()
        grad_scale = 1.0
        if self.clip_norm is not None:
            norm = self.grad_norm() if grad_norm is None else grad_norm
            if norm > self.clip_norm:
                grad_scale = self.clip_norm / (norm + 1e-6)
        self.step_count += 1
        arguments = self.rule_arguments()
        for (values, grads), views in zip(self._groups.arrays, self._state_views, strict=True):
            type(self).rule(
                values,
                grads,
                *views,
                lr=lr,
                grad_scale=grad_scale,
                step=self.step_count,
                **arguments,
            )

    @abstractmethod
    def rule_arguments(self) -> dict[str, Any]:
        """The hyperparameters the update rule takes, by its argument names."""

    # --- description ----------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        """The constructor arguments other than ``parameters`` (for checkpoints and repr), read
        from the attributes of the same names: the constructor is the one declaration."""
        names = inspect.signature(type(self).__init__).parameters
        return {
            name: list(value) if isinstance(value := getattr(self, name), tuple) else value
            for name in names
            if name not in ("self", "parameters")
        }

    def epoch_hyperparameters(self) -> Array:
        """The rule arguments named by :attr:`epoch_arguments`, in that order, as float64: the
        ``h`` that :attr:`epoch_step` reads."""
        arguments = self.rule_arguments()
        return np.array([float(arguments[name]) for name in self.epoch_arguments])

    def __repr__(self) -> str:
        return format_call(type(self).__name__, self.config())
