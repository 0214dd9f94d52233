"""SGD: stochastic gradient descent with momentum, Nesterov and weight decay, as
``torch.optim.SGD`` — its class, its rule in NumPy, the same rule compiled, and its step as the
compiled epoch takes it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..backend.arrays import Array, compiled, run_kernel
from ..nn.layer import Parameter
from ..validation import check_bool, check_fraction, check_positive
from .optimizer import TINY, LearningRate, Optimizer, check_flat, flush


def sgd_reference(
    p: Array,
    g: Array,
    momentum_buffer: Array,
    *,
    lr: float,
    momentum: float,
    dampening: float,
    nesterov: bool,
    weight_decay: float,
    grad_scale: float,
    step: int,
) -> None:
    """g ← g + λθ; b ← μb + (1 − τ)g (b = g at step 1); g ← g + μb (Nesterov) or b; θ ← θ − γg."""
    f = p.dtype.type
    grad = g * f(grad_scale) + f(weight_decay) * p
    if momentum != 0:
        if step == 1:
            momentum_buffer[:] = grad
        else:
            momentum_buffer *= f(momentum)
            momentum_buffer += f(1 - dampening) * grad
        flush(momentum_buffer, float(TINY[p.dtype]))
        grad = grad + f(momentum) * momentum_buffer if nesterov else momentum_buffer
    p -= f(lr) * grad


def sgd(
    p: Array,
    g: Array,
    momentum_buffer: Array,
    *,
    lr: float,
    momentum: float,
    dampening: float,
    nesterov: bool,
    weight_decay: float,
    grad_scale: float,
    step: int,
) -> None:
    """:func:`sgd_reference` in one compiled pass."""
    check_flat("sgd", "p g momentum_buffer", p, g, momentum_buffer)
    f = p.dtype.type
    run_kernel(
        _sgd_kernel,
        p=p,
        g=g,
        buf=momentum_buffer,
        lr=f(lr),
        momentum=f(momentum),
        one_minus_dampening=f(1.0 - dampening),
        nesterov=bool(nesterov),
        weight_decay=f(weight_decay),
        grad_scale=f(grad_scale),
        first_step=step == 1,
        tiny=TINY[p.dtype],
    )


@compiled
def _sgd_kernel(
    p,
    g,
    buf,
    lr,
    momentum,
    one_minus_dampening,
    nesterov,
    weight_decay,
    grad_scale,
    first_step,
    tiny,
):  # pragma: no cover - compiled
    zero = tiny - tiny
    for i in range(p.size):
        gi = g[i] * grad_scale + weight_decay * p[i]
        if momentum != zero:
            b = gi if first_step else momentum * buf[i] + one_minus_dampening * gi
            b = b if abs(b) >= tiny else zero  # keep the state out of the subnormal range
            buf[i] = b
            gi = gi + momentum * b if nesterov else b
        p[i] -= lr * gi


@compiled
def epoch_step(p, g, s1, s2, h, step, lr, grad_scale, tiny):  # pragma: no cover - compiled
    """:func:`sgd` as the compiled epoch calls it, on one thread's slice: ``s1`` is the
    momentum buffer (``s2`` unused), ``h`` the rule arguments named by :data:`EPOCH_ARGUMENTS`,
    in that order."""
    f = p.dtype.type
    momentum, dampening, nesterov, weight_decay = h[0], h[1], h[2], h[3]
    _sgd_kernel(
        p,
        g,
        s1,
        f(lr),
        f(momentum),
        f(1.0 - dampening),
        nesterov != 0,
        f(weight_decay),
        f(grad_scale),
        step == 1,
        tiny,
    )


EPOCH_ARGUMENTS = ("momentum", "dampening", "nesterov", "weight_decay")
"""The rule arguments :func:`epoch_step` reads from its ``h``, in its order."""


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
    rule = sgd
    epoch_step = epoch_step
    epoch_arguments = EPOCH_ARGUMENTS

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
