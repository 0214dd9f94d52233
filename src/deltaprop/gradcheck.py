"""Finite-difference checks of every gradient deltaprop computes.

Each check runs on a float64 copy of the object (the original is untouched), compares the
analytical gradient from ``backward`` with central differences

    ∂f/∂θ_i ≈ (f(θ + ε e_i) − f(θ − ε e_i)) / 2ε

and reports, per parameter and for the input, the relative error
``‖g_analytic − g_numeric‖ / max(‖g_analytic‖ + ‖g_numeric‖, 1e-12)``.

For a layer the scalar checked is ``f = Σ G ⊙ layer(x)`` with a fixed random G (so every output
contributes); for a loss it is the loss itself; for a model it is ``loss(model(X), y)``.

A layer that computes differently in training (:meth:`~deltaprop.core.Layer.differs_in_training`:
dropout, batch statistics) is checked in training mode — the function its backward differentiates —
with its random generators reset before every evaluation, so each sees the same randomness.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .backend import Array
from .core import Layer
from .losses import Loss
from .validation import check_positive

DEFAULT_EPS = 1e-6
DEFAULT_TOLERANCE = 1e-6


@dataclass
class GradcheckReport:
    """Worst relative errors of a gradient check.

    Attributes:
        subject: what was checked (its repr).
        errors: relative error per parameter name (and ``"input"`` / ``"logits"``).
        tolerance: the largest error counted as agreement.
    """

    subject: str
    errors: dict[str, float] = field(default_factory=dict)
    tolerance: float = DEFAULT_TOLERANCE

    @property
    def ok(self) -> bool:
        """True when every error is finite and at most ``tolerance``."""
        return all(np.isfinite(e) and e <= self.tolerance for e in self.errors.values())

    @property
    def worst(self) -> float:
        return max(self.errors.values(), default=0.0)

    def __str__(self) -> str:
        width = max((len(k) for k in self.errors), default=5)
        lines = [f"gradient check of {self.subject}  (tolerance {self.tolerance:.0e})"]
        for name, error in self.errors.items():
            mark = "ok" if np.isfinite(error) and error <= self.tolerance else "FAIL"
            lines.append(f"  {name:<{width}}  relative error {error:.2e}  {mark}")
        lines.append("  => " + ("all gradients agree" if self.ok else "gradients DISAGREE"))
        return "\n".join(lines)


def _one_line(obj: object) -> str:
    return " ".join(line.strip() for line in repr(obj).splitlines())


def relative_error(analytic: Array, numeric: Array) -> float:
    """‖a − n‖ / max(‖a‖ + ‖n‖, 1e-12)."""
    diff = float(np.linalg.norm(analytic - numeric))
    scale = float(np.linalg.norm(analytic) + np.linalg.norm(numeric))
    return diff / max(scale, 1e-12)


def numeric_gradient(f: Callable[[], float], x: Array, eps: float = DEFAULT_EPS) -> Array:
    """Central differences of the scalar ``f()`` with respect to ``x`` (perturbed in place)."""
    grad = np.zeros_like(x, dtype=np.float64)
    flat, flat_grad = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        original = flat[i]
        flat[i] = original + eps
        f_plus = f()
        flat[i] = original - eps
        f_minus = f()
        flat[i] = original
        flat_grad[i] = (f_plus - f_minus) / (2 * eps)
    return grad


def float64_copy(layer: Layer) -> Layer:
    """A deep copy of ``layer`` whose parameters (and computations) are float64."""
    return copy.deepcopy(layer).astype(np.float64)


def _training_function(clone: Layer) -> tuple[bool, Callable[[], None]]:
    """Whether to evaluate ``clone`` in training mode, and how to reset its randomness."""
    generators = clone.generators()
    states = [g.bit_generator.state for g in generators]

    def reset() -> None:
        for generator, state in zip(generators, states, strict=True):
            generator.bit_generator.state = state

    return clone.differs_in_training(), reset


def _check_arguments(eps: float, tolerance: float, n_rows: int) -> None:
    check_positive("eps", eps)
    check_positive("tolerance", tolerance)
    if n_rows == 0:
        raise ValueError("gradient check needs at least one row of input, got 0")


def _compare(
    subject: str,
    clone: Layer,
    f: Callable[[], float],
    x: Array,
    grad_x: Array,
    eps: float,
    tolerance: float,
) -> GradcheckReport:
    """Compare each parameter's grad and the input gradient with central differences of f."""
    report = GradcheckReport(subject, tolerance=tolerance)
    for p in clone.parameters():
        report.errors[p.name] = relative_error(p.grad, numeric_gradient(f, p.value, eps))
    report.errors["input"] = relative_error(grad_x, numeric_gradient(f, x, eps))
    return report


def check_layer(
    layer: Layer,
    x: Array,
    *,
    eps: float = DEFAULT_EPS,
    tolerance: float = DEFAULT_TOLERANCE,
    seed: int = 0,
) -> GradcheckReport:
    """Check ``layer.backward`` against finite differences at input ``x``. Shapes: x (N, in)."""
    clone = float64_copy(layer)
    x = np.array(x, dtype=np.float64)
    _check_arguments(eps, tolerance, len(x))
    training, reset = _training_function(clone)

    def output() -> Array:
        reset()
        return clone.forward(x, training=training)

    G = np.random.default_rng(seed).standard_normal(output().shape)

    def f() -> float:
        return float(np.sum(G * output()))

    reset()
    clone.forward(x, training=True)
    grad_x = clone.backward(G)
    return _compare(_one_line(layer), clone, f, x, grad_x, eps, tolerance)


def check_loss(
    loss: Loss,
    logits: Array,
    y: Any,
    *,
    eps: float = DEFAULT_EPS,
    tolerance: float = DEFAULT_TOLERANCE,
) -> GradcheckReport:
    """Check the fused delta ``loss.backward()`` = (ŷ − y)/N against finite differences."""
    clone = copy.deepcopy(loss)
    z = np.array(logits, dtype=np.float64)
    _check_arguments(eps, tolerance, len(z))
    clone.forward(z, y)
    delta = clone.backward().copy()
    numeric = numeric_gradient(lambda: clone.forward(z, y), z, eps)
    return GradcheckReport(repr(loss), {"logits": relative_error(delta, numeric)}, tolerance)


def check_model(
    model: Layer,
    loss: Loss,
    X: Array,
    y: Any,
    *,
    eps: float = DEFAULT_EPS,
    tolerance: float = DEFAULT_TOLERANCE,
) -> GradcheckReport:
    """Check every parameter gradient of ``loss(model(X), y)`` and ∂L/∂X."""
    clone = float64_copy(model)
    loss_clone = copy.deepcopy(loss)
    X = np.array(X, dtype=np.float64)
    _check_arguments(eps, tolerance, len(X))
    training, reset = _training_function(clone)

    def f() -> float:
        reset()
        return loss_clone.forward(clone.forward(X, training=training), y)

    reset()
    loss_clone.forward(clone.forward(X, training=True), y)
    grad_X = clone.backward(loss_clone.backward())
    return _compare(_one_line(model), clone, f, X, grad_X, eps, tolerance)
