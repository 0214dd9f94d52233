"""The update rules of RMSprop and Adagrad, which scale each coordinate's step by its
accumulated squared gradients: each written twice, ``<rule>_reference`` in NumPy and ``<rule>``
as one compiled pass, under the conventions of :mod:`deltaprop.updates` (same keyword arguments,
state kept out of the subnormal range, float32 arithmetic for float32 parameters).

Shapes: every array argument is 1-D and of one length (the flat parameters of a whole model).
"""

from __future__ import annotations

import math

import numpy as np

from .backend import Array, compiled, run_kernel
from .updates import TINY, check_flat, flush

# --- RMSprop -------------------------------------------------------------------------------


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


# --- Adagrad -------------------------------------------------------------------------------


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
