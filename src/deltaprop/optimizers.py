"""Optimizers: each is its update rule plus a small state record.

The base class validates, resolves the learning rate (a float or a schedule ``step -> lr``),
clips gradients by global norm and loops over parameter groups; each subclass names its state and
hands its hyperparameters to one update rule of :mod:`deltaprop.updates` — the formula as math in
the class docstring, as NumPy in ``<rule>_reference`` and as the one compiled pass that runs over
the whole model's flat buffers.

This module holds the base class, SGD, Adam and AdamW; RMSprop and Adagrad, which scale each
coordinate by its accumulated squared gradients, are in :mod:`deltaprop.adaptive_optimizers`.

Every rule matches the algorithm PyTorch documents for the same hyperparameters.
"""

from __future__ import annotations

import math
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import numpy as np

from . import updates
from .backend import Array, namespace
from .core import Parameter, format_call
from .deprecation import moved
from .memory import UpdateGroups
from .validation import check_bool, check_fraction, check_positive

LearningRate = float | Callable[[int], float]


class Optimizer(ABC):
    """Base class: validation, learning rate, clipping and the loop over parameter groups.

    Args:
        parameters: the parameters to update (``model.parameters()``). When they tile a model's
            flat buffer the update is one pass over it; otherwise one pass per parameter.
        lr: a float > 0, or a schedule: a callable ``step -> lr`` (see :mod:`deltaprop.schedules`)
            called with the number of updates done so far.
        clip_norm: if given, gradients are scaled so their global L2 norm is at most this.

    Attributes:
        step_count: updates done so far (PyTorch's ``state["step"]``).
        lr_scale: a factor on the learning rate (ReduceLROnPlateau lowers it).
        state: the optimizer's state arrays by name, each flat over all parameters.
    """

    state_names: ClassVar[tuple[str, ...]] = ()
    rule: ClassVar[Callable[..., None]]
    """The update rule of :mod:`deltaprop.updates`: ``rule(p, g, *state, lr, grad_scale, step,
    **rule_arguments())``."""

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
        """Update the parameters where they live now (see :class:`~deltaprop.memory.UpdateGroups`),
        keeping the state, which is laid out parameter by parameter whatever the storage."""
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

    @abstractmethod
    def config(self) -> dict[str, Any]:
        """The constructor arguments other than ``parameters`` (for checkpoints and repr)."""

    def hyperparameters(self) -> dict[str, Any]:
        """Deprecated: :meth:`config` without ``lr``."""
        warnings.warn(
            "Optimizer.hyperparameters() is deprecated: use config()",
            DeprecationWarning,
            stacklevel=2,
        )
        return {k: v for k, v in self.config().items() if k != "lr"}

    def __repr__(self) -> str:
        return format_call(type(self).__name__, self.config())


class SGD(Optimizer):
    r"""Stochastic gradient descent with optional momentum, Nesterov and weight decay.

    .. math::
        g_t &= \nabla_\theta L + \lambda \theta_{t-1} \\
        b_t &= \mu b_{t-1} + (1 - \tau) g_t \quad (b_1 = g_1) \\
        g_t &\leftarrow g_t + \mu b_t \text{ (Nesterov) or } b_t \\
        \theta_t &= \theta_{t-1} - \gamma g_t

    with lr γ, momentum μ, dampening τ, weight decay λ (as ``torch.optim.SGD``).
    """

    state_names = ("momentum_buffer",)
    rule = updates.sgd

    def __init__(
        self,
        parameters: Iterable[Parameter],
        lr: LearningRate = 0.01,
        *,
        momentum: float = 0.0,
        dampening: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        clip_norm: float | None = None,
    ) -> None:
        super().__init__(parameters, lr, clip_norm=clip_norm)
        self.momentum = check_fraction("momentum", momentum, owner="SGD")
        self.dampening = check_fraction("dampening", dampening, owner="SGD")
        self.weight_decay = check_positive(
            "weight_decay", weight_decay, owner="SGD", allow_zero=True
        )
        self.nesterov = check_bool("nesterov", nesterov, owner="SGD")
        if self.nesterov and (self.momentum == 0 or self.dampening != 0):
            raise ValueError(
                f"SGD: nesterov needs momentum > 0 and dampening = 0, got momentum={momentum}, "
                f"dampening={dampening}"
            )

    def rule_arguments(self) -> dict[str, Any]:
        return {
            "momentum": self.momentum,
            "dampening": self.dampening,
            "nesterov": self.nesterov,
            "weight_decay": self.weight_decay,
        }

    def config(self) -> dict[str, Any]:
        return {
            "lr": self.lr,
            "momentum": self.momentum,
            "dampening": self.dampening,
            "nesterov": self.nesterov,
            "weight_decay": self.weight_decay,
            "clip_norm": self.clip_norm,
        }


class Adam(Optimizer):
    r"""Adam (Kingma & Ba, 2015), as ``torch.optim.Adam``.

    .. math::
        g_t &= \nabla_\theta L + \lambda \theta_{t-1} \\
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t \\
        v_t &= \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \\
        \theta_t &= \theta_{t-1} - \frac{\gamma}{1 - \beta_1^t}
                    \frac{m_t}{\sqrt{v_t} / \sqrt{1 - \beta_2^t} + \epsilon}

    with lr γ, betas (β1, β2), eps ε and L2 weight decay λ (added to the gradient).
    """

    state_names = ("exp_avg", "exp_avg_sq")
    rule = updates.adam
    decoupled_weight_decay: ClassVar[bool] = False

    def __init__(
        self,
        parameters: Iterable[Parameter],
        lr: LearningRate = 1e-3,
        *,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        clip_norm: float | None = None,
    ) -> None:
        super().__init__(parameters, lr, clip_norm=clip_norm)
        name = type(self).__name__
        if not isinstance(betas, tuple | list) or len(betas) != 2:
            raise ValueError(f"{name}: betas must be a pair (beta1, beta2), got {betas!r}")
        self.betas = (
            check_fraction("betas[0]", betas[0], owner=name),
            check_fraction("betas[1]", betas[1], owner=name),
        )
        self.eps = check_positive("eps", eps, owner=name, allow_zero=True)
        self.weight_decay = check_positive(
            "weight_decay", weight_decay, owner=name, allow_zero=True
        )

    def rule_arguments(self) -> dict[str, Any]:
        return {
            "beta1": self.betas[0],
            "beta2": self.betas[1],
            "eps": self.eps,
            "weight_decay": self.weight_decay,
            "decoupled": self.decoupled_weight_decay,
        }

    def config(self) -> dict[str, Any]:
        return {
            "lr": self.lr,
            "betas": list(self.betas),
            "eps": self.eps,
            "weight_decay": self.weight_decay,
            "clip_norm": self.clip_norm,
        }


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter, 2019), as ``torch.optim.AdamW``.

    .. math::
        \theta_{t-1} &\leftarrow \theta_{t-1} (1 - \gamma \lambda) \\
        &\text{then Adam's update with } g_t = \nabla_\theta L

    Default weight decay λ = 0.01, as PyTorch.
    """

    decoupled_weight_decay = True

    def __init__(
        self,
        parameters: Iterable[Parameter],
        lr: LearningRate = 1e-3,
        *,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.01,
        clip_norm: float | None = None,
    ) -> None:
        super().__init__(
            parameters, lr, betas=betas, eps=eps, weight_decay=weight_decay, clip_norm=clip_norm
        )


__getattr__ = moved(__name__, {"OPTIMIZERS": "registry"})
