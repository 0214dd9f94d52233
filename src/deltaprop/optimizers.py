"""Optimizers: each is its update rule plus a small state record.

The base class validates, resolves the learning rate (a float or a schedule ``step -> lr``),
clips gradients by global norm and loops; each subclass is one update formula. The formula is
written twice: as math in the class docstring, and as the scalar loop of a compiled kernel (Numba)
that applies it to every parameter of the model in *one* pass over the flat buffers — instead of a
dozen separate array passes, each reading and writing all of memory.

The kernels also keep optimizer state out of the subnormal range: a moment that decays below the
smallest normal float (≈1.2e-38 in float32) is set to 0. Subnormal arithmetic is 10-100× slower
on x86 and would otherwise slow training down after a few epochs, for weights whose gradients are
always zero (the edge pixels of an image). The floating-point environment is left untouched.

Every rule matches the algorithm PyTorch documents for the same hyperparameters.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import numpy as np

from .backend import Array
from .core import Parameter, flat_buffers
from .functional import compiled

LearningRate = float | Callable[[int], float]


def _check_positive(owner: str, name: str, value: float, *, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        raise TypeError(f"{owner}: {name} must be a number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{owner}: {name} must be {bound}, got {value}")
    return value


def _check_unit_interval(owner: str, name: str, value: float) -> float:
    value = float(value)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{owner}: {name} must be in [0, 1), got {value}")
    return value


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

    def __init__(
        self, parameters: Iterable[Parameter], lr: LearningRate, *, clip_norm: float | None = None
    ) -> None:
        name = type(self).__name__
        self.parameters: list[Parameter] = list(parameters)
        if not self.parameters:
            raise ValueError(f"{name}: got an empty parameter list")
        for p in self.parameters:
            if not isinstance(p, Parameter):
                raise TypeError(f"{name}: parameters must be Parameters, got {type(p).__name__}")
        if not callable(lr):
            lr = _check_positive(name, "lr", lr)
        self.lr: LearningRate = lr
        self.clip_norm = (
            None if clip_norm is None else _check_positive(name, "clip_norm", clip_norm)
        )
        self.lr_scale = 1.0
        self.step_count = 0
        flat = flat_buffers(self.parameters)
        if flat is not None:
            self._groups: list[tuple[Array, Array]] = [flat]
        else:
            for p in self.parameters:
                if not (p.value.flags.c_contiguous and p.grad.flags.c_contiguous):
                    raise ValueError(f"{name}: parameter {p.name!r} is not a contiguous array")
            self._groups = [(p.value.reshape(-1), p.grad.reshape(-1)) for p in self.parameters]
        size = sum(values.size for values, _ in self._groups)
        dtype = self._groups[0][0].dtype
        self.state: dict[str, Array] = {
            key: np.zeros(size, dtype=dtype) for key in self.state_names
        }
        self._tiny = float(np.finfo(dtype).tiny)

    # --- learning rate ----------------------------------------------------------------------

    def current_lr(self) -> float:
        """The learning rate of the next update: schedule(step_count) × lr_scale."""
        base = self.lr(self.step_count) if callable(self.lr) else self.lr
        return float(base) * self.lr_scale

    # --- the update -----------------------------------------------------------------------

    def grad_norm(self) -> float:
        """Global L2 norm of all gradients (inf or nan if any gradient is not finite)."""
        total = 0.0
        for _, grads in self._groups:
            total += float(np.dot(grads, grads))
        return math.sqrt(total) if total >= 0 else math.nan

    def step(self, grad_norm: float | None = None) -> None:
        """Apply one update to every parameter from its current ``grad``.

        Args:
            grad_norm: the global gradient norm if the caller already computed it (saves a pass
                when clipping).
        """
        lr = self.current_lr()
        grad_scale = 1.0
        if self.clip_norm is not None:
            norm = self.grad_norm() if grad_norm is None else grad_norm
            if norm > self.clip_norm:
                grad_scale = self.clip_norm / (norm + 1e-6)
        self.step_count += 1
        offset = 0
        for values, grads in self._groups:
            size = values.size
            views = [self.state[key][offset : offset + size] for key in self.state_names]
            self._update(values, grads, views, lr, grad_scale)
            offset += size

    @abstractmethod
    def _update(self, p: Array, g: Array, state: list[Array], lr: float, grad_scale: float) -> None:
        """Update flat parameters ``p`` in place from gradients ``g`` (scaled by grad_scale)."""

    # --- description ----------------------------------------------------------------------

    @abstractmethod
    def hyperparameters(self) -> dict[str, Any]:
        """The constructor arguments other than parameters and lr, for files and repr."""

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters().items())
        return f"{type(self).__name__}(lr={self.lr!r}, {args})"


# --- SGD ----------------------------------------------------------------------------------
#
# Kernels take their scalars already cast to the parameters' dtype (see Optimizer._scalars), so
# float32 parameters are updated in float32 arithmetic, as PyTorch does. They are compiled as the
# loops in functional.py are (without ``error_model="numpy"`` the Adam pass was 4x slower: LLVM
# could not vectorise it). One thread: the pass sits between BLAS calls, and a parallel version on
# two threads made Fashion-MNIST epochs 4x slower.


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
        self.momentum = _check_unit_interval("SGD", "momentum", momentum)
        self.dampening = _check_unit_interval("SGD", "dampening", dampening)
        self.weight_decay = _check_positive("SGD", "weight_decay", weight_decay, allow_zero=True)
        if nesterov and (self.momentum == 0 or self.dampening != 0):
            raise ValueError(
                f"SGD: nesterov needs momentum > 0 and dampening = 0, got momentum={momentum}, "
                f"dampening={dampening}"
            )
        self.nesterov = bool(nesterov)

    def _update(self, p: Array, g: Array, state: list[Array], lr: float, grad_scale: float) -> None:
        f = p.dtype.type
        _sgd_kernel(
            p,
            g,
            state[0],
            f(lr),
            f(self.momentum),
            f(1.0 - self.dampening),
            self.nesterov,
            f(self.weight_decay),
            f(grad_scale),
            self.step_count == 1,
            f(self._tiny),
        )

    def hyperparameters(self) -> dict[str, Any]:
        return {
            "momentum": self.momentum,
            "dampening": self.dampening,
            "nesterov": self.nesterov,
            "weight_decay": self.weight_decay,
            "clip_norm": self.clip_norm,
        }


# --- Adam and AdamW -----------------------------------------------------------------------


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
        if len(betas) != 2:
            raise ValueError(f"{name}: betas must be a pair (beta1, beta2), got {betas!r}")
        self.betas = (
            _check_unit_interval(name, "betas[0]", betas[0]),
            _check_unit_interval(name, "betas[1]", betas[1]),
        )
        self.eps = _check_positive(name, "eps", eps, allow_zero=True)
        self.weight_decay = _check_positive(name, "weight_decay", weight_decay, allow_zero=True)

    def _update(self, p: Array, g: Array, state: list[Array], lr: float, grad_scale: float) -> None:
        f = p.dtype.type
        beta1, beta2 = self.betas
        t = self.step_count
        _adam_kernel(
            p,
            g,
            state[0],
            state[1],
            f(beta1),
            f(beta2),
            f(lr / (1.0 - beta1**t)),
            f(1.0 / math.sqrt(1.0 - beta2**t)),
            f(self.eps),
            f(self.weight_decay),
            f(1.0 - lr * self.weight_decay),
            self.decoupled_weight_decay,
            f(grad_scale),
            f(self._tiny),
        )

    def hyperparameters(self) -> dict[str, Any]:
        return {
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


# --- RMSprop -------------------------------------------------------------------------------


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
        self.alpha = _check_unit_interval("RMSprop", "alpha", alpha)
        self.eps = _check_positive("RMSprop", "eps", eps, allow_zero=True)
        self.weight_decay = _check_positive(
            "RMSprop", "weight_decay", weight_decay, allow_zero=True
        )
        self.momentum = _check_unit_interval("RMSprop", "momentum", momentum)
        self.centered = bool(centered)

    def _update(self, p: Array, g: Array, state: list[Array], lr: float, grad_scale: float) -> None:
        f = p.dtype.type
        _rmsprop_kernel(
            p,
            g,
            state[0],
            state[1],
            state[2],
            f(lr),
            f(self.alpha),
            f(self.eps),
            f(self.weight_decay),
            f(self.momentum),
            self.centered,
            f(grad_scale),
            f(self._tiny),
        )

    def hyperparameters(self) -> dict[str, Any]:
        return {
            "alpha": self.alpha,
            "eps": self.eps,
            "weight_decay": self.weight_decay,
            "momentum": self.momentum,
            "centered": self.centered,
            "clip_norm": self.clip_norm,
        }


# --- Adagrad -------------------------------------------------------------------------------


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

    with lr γ, lr_decay η, eps ε and weight decay λ. (The sum only grows: no subnormal risk.)
    """

    state_names = ("sum",)

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
        self.lr_decay = _check_positive("Adagrad", "lr_decay", lr_decay, allow_zero=True)
        self.weight_decay = _check_positive(
            "Adagrad", "weight_decay", weight_decay, allow_zero=True
        )
        self.initial_accumulator_value = _check_positive(
            "Adagrad", "initial_accumulator_value", initial_accumulator_value, allow_zero=True
        )
        self.eps = _check_positive("Adagrad", "eps", eps, allow_zero=True)
        self.state["sum"].fill(self.initial_accumulator_value)

    def _update(self, p: Array, g: Array, state: list[Array], lr: float, grad_scale: float) -> None:
        f = p.dtype.type
        decayed_lr = lr / (1.0 + (self.step_count - 1) * self.lr_decay)
        _adagrad_kernel(
            p, g, state[0], f(decayed_lr), f(self.eps), f(self.weight_decay), f(grad_scale)
        )

    def hyperparameters(self) -> dict[str, Any]:
        return {
            "lr_decay": self.lr_decay,
            "weight_decay": self.weight_decay,
            "initial_accumulator_value": self.initial_accumulator_value,
            "eps": self.eps,
            "clip_norm": self.clip_norm,
        }


OPTIMIZERS: dict[str, type[Optimizer]] = {
    cls.__name__: cls for cls in (SGD, Adam, AdamW, RMSprop, Adagrad)
}
