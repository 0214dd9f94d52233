"""Adagrad, as ``torch.optim.Adagrad``: each coordinate's step scaled by the sum of its squared
gradients so far — its class, its rule in NumPy and the same rule compiled."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from ..backend.arrays import Array, compiled, run_kernel
from ..nn.layer import Parameter
from ..validation import check_positive
from .optimizer import LearningRate, Optimizer, check_flat


def adagrad_reference(
    p: Array,
    g: Array,
    sum_sq: Array,
    *,
    lr: float,
    lr_decay: float,
    eps: float,
    weight_decay: float,
    grad_scale: float,
    step: int,
) -> None:
    """g ← g + λθ; γ̃ = γ / (1 + (t − 1)η); s ← s + g²; θ ← θ − γ̃ g / (√s + ε).

    (The sum only grows: no subnormal risk.)
    """
    f = p.dtype.type
    grad = g * f(grad_scale) + f(weight_decay) * p
    sum_sq += grad * grad
    p -= f(lr / (1.0 + (step - 1) * lr_decay)) * grad / (np.sqrt(sum_sq) + f(eps))


def adagrad(
    p: Array,
    g: Array,
    sum_sq: Array,
    *,
    lr: float,
    lr_decay: float,
    eps: float,
    weight_decay: float,
    grad_scale: float,
    step: int,
) -> None:
    """:func:`adagrad_reference` in one compiled pass."""
    check_flat("adagrad", "p g sum_sq", p, g, sum_sq)
    f = p.dtype.type
    run_kernel(
        _adagrad_kernel,
        p=p,
        g=g,
        total=sum_sq,
        lr=f(lr / (1.0 + (step - 1) * lr_decay)),
        eps=f(eps),
        weight_decay=f(weight_decay),
        grad_scale=f(grad_scale),
    )


@compiled
def _adagrad_kernel(p, g, total, lr, eps, weight_decay, grad_scale):  # pragma: no cover
    for i in range(p.size):
        gi = g[i] * grad_scale + weight_decay * p[i]
        s = total[i] + gi * gi
        total[i] = s
        p[i] -= lr * gi / (math.sqrt(s) + eps)


class Adagrad(Optimizer):
    r"""Adagrad (Duchi et al., 2011), as ``torch.optim.Adagrad``.

    .. math::
        g_t &= \nabla_\theta L + \lambda \theta_{t-1} \\
        \tilde\gamma &= \gamma / (1 + (t - 1) \eta) \\
        s_t &= s_{t-1} + g_t^2 \quad (s_0 = \text{initial\_accumulator\_value}) \\
        \theta_t &= \theta_{t-1} - \tilde\gamma \, g_t / (\sqrt{s_t} + \epsilon)

    with lr γ, lr_decay η, eps ε and weight decay λ.
    """

    state_names = ("sum",)
    rule = adagrad

    def __init__(
        self,
        parameters: Iterable[Parameter],
        lr: LearningRate = 1e-2,
        *,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
        clip_norm: float | None = None,
    ) -> None:
        super().__init__(parameters, lr, clip_norm=clip_norm)
        self.lr_decay = check_positive("lr_decay", lr_decay, owner="Adagrad", allow_zero=True)
        self.weight_decay = check_positive(
            "weight_decay", weight_decay, owner="Adagrad", allow_zero=True
        )
        self.initial_accumulator_value = check_positive(
            "initial_accumulator_value", initial_accumulator_value, owner="Adagrad", allow_zero=True
        )
        self.eps = check_positive("eps", eps, owner="Adagrad", allow_zero=True)
        self.state["sum"].fill(self.initial_accumulator_value)

    def rule_arguments(self) -> dict[str, Any]:
        return {"lr_decay": self.lr_decay, "eps": self.eps, "weight_decay": self.weight_decay}
