"""Learning-rate schedules: callables ``step -> lr``, where step counts the updates done so far.

Pass one as an optimizer's ``lr``: ``dp.Adam(params, lr=dp.CosineDecay(1e-3, total_steps=5000))``.
Steps are optimizer updates (mini-batches), not epochs; for a per-epoch decay use
``step_size = batches_per_epoch``. Reduce-on-plateau is a callback
(:class:`deltaprop.ReduceLROnPlateau`) because it needs the validation loss.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any


def _positive(owner: str, name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{owner}: {name} must be > 0, got {value}")
    return value


class Schedule(ABC):
    """A learning rate as a function of the optimizer's step count."""

    def __init__(self, lr: float) -> None:
        self.lr = _positive(type(self).__name__, "lr", lr)

    @abstractmethod
    def __call__(self, step: int) -> float:
        """The learning rate for the update that follows ``step`` completed updates."""

    def config(self) -> dict[str, Any]:
        """Constructor arguments, for model files."""
        return {"lr": self.lr}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"


class Constant(Schedule):
    """lr(t) = lr."""

    def __call__(self, step: int) -> float:
        return self.lr


class StepDecay(Schedule):
    """lr(t) = lr · γ^⌊t / step_size⌋ (PyTorch's StepLR, counted in updates)."""

    def __init__(self, lr: float, step_size: int, gamma: float = 0.1) -> None:
        super().__init__(lr)
        if int(step_size) != step_size or step_size <= 0:
            raise ValueError(f"StepDecay: step_size must be a positive integer, got {step_size}")
        self.step_size = int(step_size)
        self.gamma = _positive("StepDecay", "gamma", gamma)

    def __call__(self, step: int) -> float:
        return self.lr * self.gamma ** (step // self.step_size)

    def config(self) -> dict[str, Any]:
        return {"lr": self.lr, "step_size": self.step_size, "gamma": self.gamma}


class ExponentialDecay(Schedule):
    """lr(t) = lr · γ^(t / every): a smooth decay by γ every ``every`` updates."""

    def __init__(self, lr: float, gamma: float, every: int = 1) -> None:
        super().__init__(lr)
        self.gamma = _positive("ExponentialDecay", "gamma", gamma)
        if int(every) != every or every <= 0:
            raise ValueError(f"ExponentialDecay: every must be a positive integer, got {every}")
        self.every = int(every)

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
        if int(total_steps) != total_steps or total_steps <= 0:
            raise ValueError(
                f"CosineDecay: total_steps must be a positive integer, got {total_steps}"
            )
        if int(warmup_steps) != warmup_steps or not 0 <= warmup_steps < total_steps:
            raise ValueError(
                f"CosineDecay: warmup_steps must be an integer in [0, total_steps={total_steps}), "
                f"got {warmup_steps}"
            )
        if not 0 <= min_lr <= lr:
            raise ValueError(f"CosineDecay: min_lr must be in [0, lr={lr}], got {min_lr}")
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.min_lr = float(min_lr)

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
        self.power_t = float(power_t)
        if not math.isfinite(self.power_t) or self.power_t < 0:
            raise ValueError(f"InverseScaling: power_t must be >= 0, got {power_t}")

    def __call__(self, step: int) -> float:
        return self.lr / (step + 1) ** self.power_t

    def config(self) -> dict[str, Any]:
        return {"lr": self.lr, "power_t": self.power_t}


SCHEDULES: dict[str, type[Schedule]] = {
    cls.__name__: cls
    for cls in (Constant, StepDecay, ExponentialDecay, CosineDecay, InverseScaling)
}
