"""Finite-difference checks of every gradient deltaprop computes.

Each check runs on a float64 copy of the object (the original is untouched), compares the
analytical gradient from ``backward`` with central differences

    ∂f/∂θ_i ≈ (f(θ + ε e_i) − f(θ − ε e_i)) / 2ε

and reports, per parameter and for the input, the relative error
``‖g_analytic − g_numeric‖ / max(‖g_analytic‖ + ‖g_numeric‖, 1e-12)``.

For a layer the scalar checked is ``f = Σ G ⊙ layer(x)`` with a fixed random G (so every output
contributes); for a loss it is the loss itself; for a model it is ``loss(model(X), y)``.

A layer that computes differently in training
(:meth:`~deltaprop.nn.layer.Layer.differs_in_training`: dropout, batch statistics) is checked in
training mode — the function its backward differentiates — with its random generators reset before
every evaluation, so each sees the same randomness.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..backend.arrays import Array, moved_to, to_host
from ..nn.layer import Layer, on_its_device
from ..nn.losses import Loss
from ..validation import check_int, check_positive

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


def relative_error(analytic: Array, numeric: Array, *, floor: float = 1e-12) -> float:
    """‖a − n‖ / max(‖a‖ + ‖n‖, floor): gradients smaller than ``floor`` are compared on that
    absolute scale (see :func:`resolution`)."""
    diff = float(np.linalg.norm(analytic - numeric))
    scale = float(np.linalg.norm(analytic) + np.linalg.norm(numeric))
    return diff / max(scale, floor)


def resolution(value: float, eps: float, entries: int, tolerance: float) -> float:
    """The gradient norm below which central differences cannot judge a relative error.

    Each difference (f(x + eps) − f(x − eps)) / 2eps carries round-off of about
    ε_machine (|f| + 1) / eps; over ``entries`` entries, √entries times that. A gradient that is
    exactly 0 (a bias before batch normalization) is measured as that noise, so its relative
    error would be 1. Returned: 10 × that noise / ``tolerance``, the floor for
    :func:`relative_error` at which noise-level differences pass and any error larger than it
    still fails.
    """
    noise = math.sqrt(entries) * float(np.finfo(np.float64).eps) * (abs(value) + 1) / eps
    return 10 * noise / tolerance


def numeric_gradient(
    f: Callable[[], float],
    x: Array,
    eps: float = DEFAULT_EPS,
    *,
    entries: Array | None = None,
    done: Callable[[int], None] | None = None,
) -> Array:
    """Central differences of the scalar ``f()`` with respect to ``x`` (perturbed in place).

    Args:
        entries: flat indices to differentiate at; the result is then 1-D, one value each.
            None: every entry, and the result has ``x``'s shape.
        done: called with 1 after each entry (a progress display).
    """
    flat = x.reshape(-1)
    indices = np.arange(flat.size) if entries is None else np.asarray(entries)
    grad = np.zeros(len(indices), dtype=np.float64)
    for k, i in enumerate(indices):
        original = flat[i].copy()  # a copy: on a GPU an element is a view of the array
        flat[i] = original + eps
        f_plus = f()
        flat[i] = original - eps
        f_minus = f()
        flat[i] = original
        grad[k] = (f_plus - f_minus) / (2 * eps)
        if done is not None:
            done(1)
    return grad.reshape(x.shape) if entries is None else grad


def float64_copy(layer: Layer) -> Layer:
    """A deep copy of ``layer`` whose parameters (and computations) are float64."""
    return copy.deepcopy(layer).astype(np.float64)


def hold_randomness(layer: Layer) -> Callable[[], None]:
    """A function that puts the layer's generators back to their present states, so each
    training forward after it draws the same dropout masks."""
    generators = layer.generators()
    states = [g.bit_generator.state for g in generators]

    def reset() -> None:
        for generator, state in zip(generators, states, strict=True):
            generator.bit_generator.state = state

    return reset


def _training_function(clone: Layer) -> tuple[bool, Callable[[], None]]:
    """Whether to evaluate ``clone`` in training mode, and how to reset its randomness."""
    return clone.differs_in_training(), hold_randomness(clone)


LARGE_CHECK = 50_000
"""Entries beyond which a check without ``sample`` warns (each costs two passes of the model)."""


def _compare(
    subject: str,
    clone: Layer,
    f: Callable[[], float],
    x: Array,
    grad_x: Array,
    options: _Options,
) -> GradcheckReport:
    """Compare each parameter's grad and the input gradient with central differences of f,
    at every entry or at ``options.sample`` random entries of each."""
    report = GradcheckReport(subject, tolerance=options.tolerance)
    targets = [(p.name, p.value, p.grad) for p in clone.parameters()] + [("input", x, grad_x)]
    rng = np.random.default_rng(options.seed)
    picks = {
        name: None
        if options.sample is None or value.size <= options.sample
        else np.sort(rng.choice(value.size, options.sample, replace=False))
        for name, value, _ in targets
    }
    total = sum(
        value.size if picks[name] is None else options.sample or 0 for name, value, _ in targets
    )
    if options.sample is None and total > LARGE_CHECK:
        warnings.warn(
            f"checking {total:,} entries by central differences takes {2 * total:,} passes of "
            "the model; pass sample=<entries per tensor> to check a random subset",
            UserWarning,
            stacklevel=3,
        )
    level = f()
    with _progress(total, options.progress) as done:
        for name, value, analytic in targets:
            pick = picks[name]
            numeric = numeric_gradient(f, value, options.eps, entries=pick, done=done)
            analytic = to_host(analytic)
            chosen = analytic if pick is None else analytic.reshape(-1)[pick]
            floor = resolution(level, options.eps, chosen.size, options.tolerance)
            report.errors[name] = relative_error(chosen, numeric, floor=floor)
    return report


@dataclass
class _Options:
    eps: float
    tolerance: float
    sample: int | None
    seed: int
    progress: bool | None


def _options(
    eps: float, tolerance: float, sample: int | None, seed: int, progress: bool | None, rows: int
) -> _Options:
    check_positive("eps", eps)
    check_positive("tolerance", tolerance)
    if rows == 0:
        raise ValueError("gradient check needs at least one row of input, got 0")
    if sample is not None:
        sample = check_int("sample", sample, 1)
    return _Options(eps, tolerance, sample, check_int("seed", seed, 0), progress)


@contextmanager
def _progress(total: int, enabled: bool | None) -> Iterator[Callable[[int], None]]:
    """A progress bar on the terminal for long checks (``enabled=None``: when worth it)."""
    from rich.console import Console
    from rich.progress import Progress

    console = Console(stderr=True)
    show = enabled if enabled is not None else (console.is_terminal and total > 2000)
    if not show:
        yield lambda _: None
        return
    with Progress(console=console, transient=console.is_terminal) as bar:
        task = bar.add_task("gradient check", total=total)
        yield lambda n: bar.advance(task, n)


def check_layer(
    layer: Layer,
    x: Array,
    *,
    eps: float = DEFAULT_EPS,
    tolerance: float = DEFAULT_TOLERANCE,
    seed: int = 0,
    sample: int | None = None,
    progress: bool | None = None,
) -> GradcheckReport:
    """Check ``layer.backward`` against finite differences at input ``x``. Shapes: x (N, in).

    ``sample``, ``progress``: as in :func:`check_model`.
    """
    clone = float64_copy(layer)
    x = on_its_device(clone, np.array(x, dtype=np.float64))
    options = _options(eps, tolerance, sample, seed, progress, len(x))
    training, reset = _training_function(clone)

    def output() -> Array:
        reset()
        return clone.forward(x, training=training)

    G = moved_to(np.random.default_rng(seed).standard_normal(output().shape), x)

    def f() -> float:
        return float(np.sum(G * output()))

    reset()
    clone.forward(x, training=True)
    grad_x = clone.backward(G)
    return _compare(_one_line(layer), clone, f, x, grad_x, options)


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
    _options(eps, tolerance, None, 0, None, len(z))
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
    sample: int | None = None,
    seed: int = 0,
    progress: bool | None = None,
) -> GradcheckReport:
    """Check every parameter gradient of ``loss(model(X), y)`` and ∂L/∂X.

    Each entry costs two passes of the model, so a large model takes long: ``sample=k`` checks
    k randomly chosen entries of each tensor (drawn with ``seed``), and a check of more than
    :data:`LARGE_CHECK` entries without it warns. ``progress``: a progress bar on the
    terminal (None: for long checks on a terminal).
    """
    clone = float64_copy(model)
    loss_clone = copy.deepcopy(loss)
    X = on_its_device(clone, np.array(X, dtype=np.float64))
    options = _options(eps, tolerance, sample, seed, progress, len(X))
    training, reset = _training_function(clone)

    def f() -> float:
        reset()
        return loss_clone.forward(clone.forward(X, training=training), y)

    reset()
    loss_clone.forward(clone.forward(X, training=True), y)
    grad_X = clone.backward(loss_clone.backward())
    return _compare(_one_line(model), clone, f, X, grad_X, options)
