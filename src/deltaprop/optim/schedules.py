"""Learning-rate schedules: callables ``step -> lr``, where step counts the updates done so far.

Pass one as an optimizer's ``lr``: ``dp.Adam(params, lr=dp.CosineDecay(1e-3, total_steps=5000))``.
Steps are optimizer updates (mini-batches), not epochs; for a per-epoch decay use
``step_size = batches_per_epoch``. Reduce-on-plateau is a callback
(:class:`deltaprop.ReduceLROnPlateau`) because it needs the validation loss.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, Self

from ..nn.layer import format_call
from ..validation import check_int, check_number, check_positive


class Schedule(ABC):
    """A learning rate as a function of the optimizer's step count."""

    def __init__(self, lr: float) -> None:
        self.lr = check_positive("lr", lr, owner=type(self).__name__)

    @abstractmethod
    def __call__(self, step: int) -> float:
        """The learning rate for the update that follows ``step`` completed updates."""

    def config(self) -> dict[str, Any]:
        """Constructor arguments (JSON-able), for checkpoints and repr."""
        return {"lr": self.lr}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Self:
        return cls(**config)

    def __repr__(self) -> str:
        return format_call(type(self).__name__, self.config())


class Constant(Schedule):
    """lr(t) = lr."""

    def __call__(self, step: int) -> float:
        return self.lr


class StepDecay(Schedule):
    """lr(t) = lr · γ^⌊t / step_size⌋ (PyTorch's StepLR, counted in updates)."""

    def __init__(self, lr: float, step_size: int, gamma: float = 0.1) -> None:
        super().__init__(lr)
        self.step_size = check_int("step_size", step_size, 1, owner="StepDecay")
        self.gamma = check_positive("gamma", gamma, owner="StepDecay")

    def __call__(self, step: int) -> float:
        return self.lr * self.gamma ** (step // self.step_size)

    def config(self) -> dict[str, Any]:
        return {"lr": self.lr, "step_size": self.step_size, "gamma": self.gamma}


class ExponentialDecay(Schedule):
    """lr(t) = lr · γ^(t / every): a smooth decay by γ every ``every`` updates."""

    def __init__(self, lr: float, gamma: float, every: int = 1) -> None:
        super().__init__(lr)
        self.gamma = check_positive("gamma", gamma, owner="ExponentialDecay")
        self.every = check_int("every", every, 1, owner="ExponentialDecay")

    def __call__(self, step: int) -> float:
        return self.lr * self.gamma ** (step / self.every)

    def config(self) -> dict[str, Any]:
        return {"lr": self.lr, "gamma": self.gamma, "every": self.every}


class CosineDecay(Schedule):
    """Linear warm-up to lr over ``warmup_steps``, then a half cosine down to ``min_lr``.

    lr(t) = lr · (t + 1) / warmup_steps                          for t < warmup_steps
    lr(t) = min_lr + ½ (lr − min_lr)(1 + cos(π (t − w) / (T − w)))  for w ≤ t < T
    lr(t) = min_lr                                               for t ≥ T = total_steps
    """

    def __init__(
        self, lr: float, total_steps: int, *, min_lr: float = 0.0, warmup_steps: int = 0
    ) -> None:
        super().__init__(lr)
        self.total_steps = check_int("total_steps", total_steps, 1, owner="CosineDecay")
        self.warmup_steps = check_int("warmup_steps", warmup_steps, 0, owner="CosineDecay")
        if self.warmup_steps >= self.total_steps:
            raise ValueError(
                f"CosineDecay: warmup_steps must be an integer in [0, total_steps={total_steps}), "
                f"got {warmup_steps}"
            )
        self.min_lr = check_number("min_lr", min_lr, owner="CosineDecay", low=0.0, high=self.lr)

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        if step >= self.total_steps:
            return self.min_lr
        progress = (step - self.warmup_steps) / (self.total_steps - self.warmup_steps)
        return self.min_lr + 0.5 * (self.lr - self.min_lr) * (1 + math.cos(math.pi * progress))

    def config(self) -> dict[str, Any]:
        return {
            "lr": self.lr,
            "total_steps": self.total_steps,
            "min_lr": self.min_lr,
            "warmup_steps": self.warmup_steps,
        }


class InverseScaling(Schedule):
    """lr(t) = lr / (t + 1)^power_t (scikit-learn's ``learning_rate="invscaling"``)."""

    def __init__(self, lr: float, power_t: float = 0.5) -> None:
        super().__init__(lr)
        self.power_t = check_positive("power_t", power_t, owner="InverseScaling", allow_zero=True)

    def __call__(self, step: int) -> float:
        return self.lr / (step + 1) ** self.power_t

    def config(self) -> dict[str, Any]:
        return {"lr": self.lr, "power_t": self.power_t}
