"""RMSprop and Adagrad: optimizers whose step for each coordinate is scaled by that coordinate's
accumulated squared gradients. Each is its update rule (:mod:`deltaprop.adaptive_updates`) and a
state record, on the base class of :mod:`deltaprop.optimizers`; each matches the algorithm
PyTorch documents.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from . import adaptive_updates
from .core import Parameter
from .optimizers import LearningRate, Optimizer
from .validation import check_bool, check_fraction, check_positive


class RMSprop(Optimizer):
    r"""RMSprop (Hinton, 2012), as ``torch.optim.RMSprop``.

    .. math::
        g_t &= \nabla_\theta L + \lambda \theta_{t-1} \\
        v_t &= \alpha v_{t-1} + (1 - \alpha) g_t^2 \\
        \tilde v_t &= v_t - \bar g_t^2 \text{ with } \bar g_t = \alpha \bar g_{t-1}
                      + (1 - \alpha) g_t \text{ (centered only; else } \tilde v_t = v_t) \\
        b_t &= \mu b_{t-1} + g_t / (\sqrt{\tilde v_t} + \epsilon),\;
               \theta_t = \theta_{t-1} - \gamma b_t \text{ (momentum μ > 0)} \\
        \theta_t &= \theta_{t-1} - \gamma g_t / (\sqrt{\tilde v_t} + \epsilon)
                    \text{ (otherwise)}
    """

    state_names = ("square_avg", "grad_avg", "momentum_buffer")
    rule = adaptive_updates.rmsprop

    def __init__(
        self,
        parameters: Iterable[Parameter],
        lr: LearningRate = 1e-2,
        *,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
        clip_norm: float | None = None,
    ) -> None:
        super().__init__(parameters, lr, clip_norm=clip_norm)
        self.alpha = check_fraction("alpha", alpha, owner="RMSprop")
        self.eps = check_positive("eps", eps, owner="RMSprop", allow_zero=True)
        self.weight_decay = check_positive(
            "weight_decay", weight_decay, owner="RMSprop", allow_zero=True
        )
        self.momentum = check_fraction("momentum", momentum, owner="RMSprop")
        self.centered = check_bool("centered", centered, owner="RMSprop")

    def rule_arguments(self) -> dict[str, Any]:
        return {
            "alpha": self.alpha,
            "eps": self.eps,
            "weight_decay": self.weight_decay,
            "momentum": self.momentum,
            "centered": self.centered,
        }

    def config(self) -> dict[str, Any]:
        return {
            "lr": self.lr,
            "alpha": self.alpha,
            "eps": self.eps,
            "weight_decay": self.weight_decay,
            "momentum": self.momentum,
            "centered": self.centered,
            "clip_norm": self.clip_norm,
        }


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
    rule = adaptive_updates.adagrad

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

    def config(self) -> dict[str, Any]:
        return {
            "lr": self.lr,
            "lr_decay": self.lr_decay,
            "weight_decay": self.weight_decay,
            "initial_accumulator_value": self.initial_accumulator_value,
            "eps": self.eps,
            "clip_norm": self.clip_norm,
        }
