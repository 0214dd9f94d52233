"""RMSprop, as ``torch.optim.RMSprop``: each coordinate's step scaled by a running mean of its
squared gradients — its class, its rule in NumPy and the same rule compiled."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from ..backend.arrays import Array, compiled, run_kernel
from ..nn.layer import Parameter
from ..validation import check_bool, check_fraction, check_positive
from .optimizer import TINY, LearningRate, Optimizer, check_flat, flush


def rmsprop_reference(
    p: Array,
    g: Array,
    square_avg: Array,
    grad_avg: Array,
    momentum_buffer: Array,
    *,
    lr: float,
    alpha: float,
    eps: float,
    weight_decay: float,
    momentum: float,
    centered: bool,
    grad_scale: float,
    step: int,
) -> None:
    """g ← g + λθ; v ← αv + (1 − α)g²; ṽ = v − ḡ² with ḡ ← αḡ + (1 − α)g (centered) or v;
    b ← μb + g / (√ṽ + ε), θ ← θ − γb (momentum) or θ ← θ − γ g / (√ṽ + ε)."""
    f = p.dtype.type
    tiny = float(TINY[p.dtype])
    grad = g * f(grad_scale) + f(weight_decay) * p
    square_avg *= f(alpha)
    square_avg += f(1 - alpha) * grad * grad
    flush(square_avg, tiny)
    if centered:
        grad_avg *= f(alpha)
        grad_avg += f(1 - alpha) * grad
        flush(grad_avg, tiny)
        avg = np.sqrt(np.maximum(square_avg - grad_avg * grad_avg, 0)) + f(eps)
    else:
        avg = np.sqrt(square_avg) + f(eps)
    if momentum > 0:
        momentum_buffer *= f(momentum)
        momentum_buffer += grad / avg
        flush(momentum_buffer, tiny)
        p -= f(lr) * momentum_buffer
    else:
        p -= f(lr) * grad / avg


def rmsprop(
    p: Array,
    g: Array,
    square_avg: Array,
    grad_avg: Array,
    momentum_buffer: Array,
    *,
    lr: float,
    alpha: float,
    eps: float,
    weight_decay: float,
    momentum: float,
    centered: bool,
    grad_scale: float,
    step: int,
) -> None:
    """:func:`rmsprop_reference` in one compiled pass."""
    check_flat(
        "rmsprop",
        "p g square_avg grad_avg momentum_buffer",
        p,
        g,
        square_avg,
        grad_avg,
        momentum_buffer,
    )
    f = p.dtype.type
    run_kernel(
        _rmsprop_kernel,
        p=p,
        g=g,
        square_avg=square_avg,
        grad_avg=grad_avg,
        buf=momentum_buffer,
        lr=f(lr),
        alpha=f(alpha),
        eps=f(eps),
        weight_decay=f(weight_decay),
        momentum=f(momentum),
        centered=bool(centered),
        grad_scale=f(grad_scale),
        tiny=TINY[p.dtype],
    )


@compiled
def _rmsprop_kernel(
    p,
    g,
    square_avg,
    grad_avg,
    buf,
    lr,
    alpha,
    eps,
    weight_decay,
    momentum,
    centered,
    grad_scale,
    tiny,
):  # pragma: no cover - compiled
    zero = tiny - tiny
    one = tiny / tiny
    for i in range(p.size):
        gi = g[i] * grad_scale + weight_decay * p[i]
        s = alpha * square_avg[i] + (one - alpha) * gi * gi
        s = s if s >= tiny else zero
        square_avg[i] = s
        if centered:
            a = alpha * grad_avg[i] + (one - alpha) * gi
            a = a if abs(a) >= tiny else zero
            grad_avg[i] = a
            avg = math.sqrt(max(s - a * a, zero)) + eps
        else:
            avg = math.sqrt(s) + eps
        if momentum > zero:
            b = momentum * buf[i] + gi / avg
            b = b if abs(b) >= tiny else zero
            buf[i] = b
            p[i] -= lr * b
        else:
            p[i] -= lr * gi / avg


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
    rule = rmsprop

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
