"""Adam and AdamW, as ``torch.optim.Adam`` and ``torch.optim.AdamW`` — the classes, the rule in
NumPy, the same rule compiled, and its step as the compiled epoch takes it."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, ClassVar

import numpy as np

from ..backend.arrays import Array, compiled, run_kernel
from ..nn.layer import Parameter
from ..validation import check_fraction, check_positive
from .optimizer import TINY, LearningRate, Optimizer, check_flat, flush


def adam_reference(
    p: Array,
    g: Array,
    exp_avg: Array,
    exp_avg_sq: Array,
    *,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    decoupled: bool,
    grad_scale: float,
    step: int,
) -> None:
    """Adam (or AdamW when ``decoupled``), step ``step`` >= 1:

    θ ← θ(1 − γλ) (AdamW) or g ← g + λθ (Adam); m ← β1 m + (1 − β1) g; v ← β2 v + (1 − β2) g²;
    θ ← θ − γ m̂ / (√v̂ + ε) with m̂ = m / (1 − β1^t), v̂ = v / (1 − β2^t).
    """
    f = p.dtype.type
    tiny = float(TINY[p.dtype])
    grad = g * f(grad_scale)
    if decoupled:
        p *= f(1 - lr * weight_decay)
    else:
        grad = grad + f(weight_decay) * p
    exp_avg *= f(beta1)
    exp_avg += f(1 - beta1) * grad
    exp_avg_sq *= f(beta2)
    exp_avg_sq += f(1 - beta2) * grad * grad
    flush(exp_avg, tiny)
    flush(exp_avg_sq, tiny)
    m_hat = exp_avg / f(1 - beta1**step)
    v_hat = exp_avg_sq / f(1 - beta2**step)
    p -= f(lr) * m_hat / (np.sqrt(v_hat) + f(eps))


def adam(
    p: Array,
    g: Array,
    exp_avg: Array,
    exp_avg_sq: Array,
    *,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    decoupled: bool,
    grad_scale: float,
    step: int,
) -> None:
    """:func:`adam_reference` in one compiled pass, with the bias corrections folded into
    the step size: θ ← θ − (γ / (1 − β1^t)) m / (√v / √(1 − β2^t) + ε)."""
    check_flat("adam", "p g exp_avg exp_avg_sq", p, g, exp_avg, exp_avg_sq)
    f = p.dtype.type
    run_kernel(
        _adam_kernel,
        p=p,
        g=g,
        m=exp_avg,
        v=exp_avg_sq,
        beta1=f(beta1),
        beta2=f(beta2),
        step_size=f(lr / (1.0 - beta1**step)),
        inv_bias2_sqrt=f(1.0 / math.sqrt(1.0 - beta2**step)),
        eps=f(eps),
        weight_decay=f(weight_decay),
        shrink=f(1.0 - lr * weight_decay),
        decoupled=bool(decoupled),
        grad_scale=f(grad_scale),
        tiny=TINY[p.dtype],
    )


@compiled
def _adam_kernel(
    p,
    g,
    m,
    v,
    beta1,
    beta2,
    step_size,
    inv_bias2_sqrt,
    eps,
    weight_decay,
    shrink,
    decoupled,
    grad_scale,
    tiny,
):  # pragma: no cover - compiled
    zero = tiny - tiny
    one = tiny / tiny
    for i in range(p.size):
        gi = g[i] * grad_scale
        if decoupled:
            p[i] *= shrink
        else:
            gi += weight_decay * p[i]
        mi = beta1 * m[i] + (one - beta1) * gi
        vi = beta2 * v[i] + (one - beta2) * gi * gi
        mi = mi if abs(mi) >= tiny else zero  # keep the moments out of the subnormal range
        vi = vi if vi >= tiny else zero
        m[i] = mi
        v[i] = vi
        p[i] -= step_size * mi / (math.sqrt(vi) * inv_bias2_sqrt + eps)


@compiled
def epoch_step(p, g, s1, s2, h, step, lr, grad_scale, tiny):  # pragma: no cover - compiled
    """:func:`adam` as the compiled epoch calls it, on one thread's slice: ``s1``, ``s2`` are
    m and v, ``h`` the rule arguments named by :data:`EPOCH_ARGUMENTS`, in that order."""
    f = p.dtype.type
    beta1, beta2, eps, weight_decay, decoupled = h[0], h[1], h[2], h[3], h[4]
    _adam_kernel(
        p,
        g,
        s1,
        s2,
        f(beta1),
        f(beta2),
        f(lr / (1.0 - beta1**step)),
        f(1.0 / math.sqrt(1.0 - beta2**step)),
        f(eps),
        f(weight_decay),
        f(1.0 - lr * weight_decay),
        decoupled != 0,
        f(grad_scale),
        tiny,
    )


EPOCH_ARGUMENTS = ("beta1", "beta2", "eps", "weight_decay", "decoupled")
"""The rule arguments :func:`epoch_step` reads from its ``h``, in its order."""


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
    rule = adam
    epoch_step = epoch_step
    epoch_arguments = EPOCH_ARGUMENTS
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
