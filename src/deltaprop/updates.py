"""The optimizers' update rules, each written twice: as NumPy formulas and as one compiled loop.

For every rule, ``<rule>_reference`` is the algorithm as PyTorch documents it, in plain NumPy
(one array expression per line of the math), and ``<rule>`` is the same update as a single
compiled pass over flat arrays — instead of a dozen array passes, each reading and writing all of
memory. The two take the same arguments, by keyword, and update ``p`` and the state arrays in
place; ``tests/test_optimizers.py`` checks that they agree, in float32 and float64.

Both keep optimizer state out of the subnormal range: a moment that decays below the smallest
normal float (≈1.2e-38 in float32) is set to 0. Subnormal arithmetic is 10-100× slower on x86 and
would otherwise slow training down after a few epochs, for weights whose gradients are always
zero (the edge pixels of an image). The floating-point environment is left untouched.

Scalars are cast to the parameters' dtype before the loop, so float32 parameters are updated in
float32 arithmetic, as PyTorch does.

Shapes: every array argument is 1-D and of one length (the flat parameters of a whole model).
"""

from __future__ import annotations

import math

import numpy as np

from .backend import Array, compiled
from .errors import ShapeError


def _flush(state: Array, tiny: float) -> None:
    """Set entries with |x| below ``tiny`` (the smallest normal float) to 0, in place."""
    state[np.abs(state) < tiny] = 0


def _check_flat(rule: str, names: str, *arrays: Array) -> None:
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


_TINY = {np.dtype(t): np.finfo(t).tiny for t in (np.float32, np.float64)}
"""The smallest normal number of each dtype: state below it is flushed to 0."""


# --- SGD --------------------------------------------------------------------------------------


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
        _flush(momentum_buffer, float(_TINY[p.dtype]))
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
    _check_flat("sgd", "p g momentum_buffer", p, g, momentum_buffer)
    f = p.dtype.type
    _sgd_kernel(
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
        tiny=_TINY[p.dtype],
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


# --- Adam and AdamW -----------------------------------------------------------------------


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
    tiny = float(_TINY[p.dtype])
    grad = g * f(grad_scale)
    if decoupled:
        p *= f(1 - lr * weight_decay)
    else:
        grad = grad + f(weight_decay) * p
    exp_avg *= f(beta1)
    exp_avg += f(1 - beta1) * grad
    exp_avg_sq *= f(beta2)
    exp_avg_sq += f(1 - beta2) * grad * grad
    _flush(exp_avg, tiny)
    _flush(exp_avg_sq, tiny)
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
    _check_flat("adam", "p g exp_avg exp_avg_sq", p, g, exp_avg, exp_avg_sq)
    f = p.dtype.type
    _adam_kernel(
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
        tiny=_TINY[p.dtype],
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
    tiny = float(_TINY[p.dtype])
    grad = g * f(grad_scale) + f(weight_decay) * p
    square_avg *= f(alpha)
    square_avg += f(1 - alpha) * grad * grad
    _flush(square_avg, tiny)
    if centered:
        grad_avg *= f(alpha)
        grad_avg += f(1 - alpha) * grad
        _flush(grad_avg, tiny)
        avg = np.sqrt(np.maximum(square_avg - grad_avg * grad_avg, 0)) + f(eps)
    else:
        avg = np.sqrt(square_avg) + f(eps)
    if momentum > 0:
        momentum_buffer *= f(momentum)
        momentum_buffer += grad / avg
        _flush(momentum_buffer, tiny)
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
    _check_flat(
        "rmsprop",
        "p g square_avg grad_avg momentum_buffer",
        p,
        g,
        square_avg,
        grad_avg,
        momentum_buffer,
    )
    f = p.dtype.type
    _rmsprop_kernel(
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
        tiny=_TINY[p.dtype],
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
    _check_flat("adagrad", "p g sum_sq", p, g, sum_sq)
    f = p.dtype.type
    _adagrad_kernel(
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
