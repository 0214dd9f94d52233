"""Pictures of a training run, written as PNG files with matplotlib (no display needed).

Each function draws one figure and writes it atomically to ``path``: learning curves, the
decision boundary of a model on 2-D data, a confusion matrix, per-layer diagnostics (gradient
norm, dead-ReLU fraction per epoch) and predicted against true values for regression. Figures
are built with matplotlib's object interface, never ``pyplot``, so no global state or display is
touched. matplotlib is a dependency of deltaprop; the import is deferred to the first plot.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..backend.arrays import Array
from ..files.atomic import atomic_write

FILES = {
    "curves": "learning-curves.png",
    "diagnostics": "diagnostics.png",
    "confusion": "confusion-matrix.png",
    "boundary": "decision-boundary.png",
    "regression": "predicted-vs-true.png",
}
"""The file each plot of a training run is written to, in its directory."""

CLASS_COLOURS = (
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#ff7f0e",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)


def _figure(width: float = 6.4, height: float = 4.8) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _write(figure: Any, path: str | os.PathLike[str]) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    atomic_write(path, buffer.getvalue())
    return os.fspath(path)


def learning_curves(history: dict[str, list[float]], path: str | os.PathLike[str]) -> str:
    """Loss, and accuracy (classification) or MSE (regression), per epoch: training rows
    solid, validation rows dashed."""
    metric = "accuracy" if "accuracy" in history else "mse" if "mse" in history else None
    panels = ["loss"] + ([metric] if metric else [])
    figure = _figure(5.2 * len(panels), 4.0)
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    for ax, name in zip(axes, panels, strict=True):
        epochs = np.arange(1, len(history.get(name, [])) + 1)
        ax.plot(epochs, history.get(name, []), "-o", ms=3, label="training")
        if f"val_{name}" in history:
            ax.plot(epochs, history[f"val_{name}"], "--o", ms=3, label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.set_title(f"{name} per epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    return _write(figure, path)


def decision_boundary(
    predict_proba: Callable[[Array], Array],
    X: Array,
    y: Array,
    class_names: Sequence[Any],
    path: str | os.PathLike[str],
    *,
    resolution: int = 200,
) -> str:
    """The predicted class over the plane of 2-D inputs, shaded by its probability, with the
    points coloured by their true class.

    Args:
        predict_proba: (M, 2) points → (M, C) class probabilities.
        X: (N, 2) points in the units of the data; y: (N,) class indices.
    """
    from matplotlib.colors import ListedColormap

    lo, hi = X.min(axis=0), X.max(axis=0)
    margin = 0.1 * (hi - lo) + 1e-9
    g0 = np.linspace(lo[0] - margin[0], hi[0] + margin[0], resolution)
    g1 = np.linspace(lo[1] - margin[1], hi[1] + margin[1], resolution)
    grid = np.array(np.meshgrid(g0, g1)).reshape(2, -1).T
    proba = predict_proba(grid)
    winner = np.argmax(proba, axis=1).reshape(resolution, resolution)
    confidence = np.max(proba, axis=1).reshape(resolution, resolution)
    colours = ListedColormap(CLASS_COLOURS[: max(len(class_names), 2)])
    figure = _figure(6.0, 5.0)
    ax = figure.subplots()
    ax.imshow(
        winner,
        origin="lower",
        extent=(g0[0], g0[-1], g1[0], g1[-1]),
        cmap=colours,
        vmin=0,
        vmax=colours.N - 1,
        alpha=0.15 + 0.35 * confidence,
        aspect="auto",
        interpolation="nearest",
    )
    if proba.shape[1] == 2:
        ax.contour(g0, g1, proba[:, 1].reshape(resolution, resolution), levels=[0.5], colors="k")
    for k, name in enumerate(class_names):
        mask = y == k
        ax.scatter(
            X[mask, 0],
            X[mask, 1],
            s=12,
            color=CLASS_COLOURS[k % 10],
            edgecolors="white",
            linewidths=0.4,
            label=str(name),
        )
    ax.set_title("decision boundary (shade: predicted class and its probability)")
    ax.legend(loc="best", fontsize="small")
    return _write(figure, path)


def confusion_matrix(
    counts: Array, class_names: Sequence[Any], path: str | os.PathLike[str]
) -> str:
    """Counts of (true class, predicted class) pairs, each cell annotated; rows are true."""
    k = len(class_names)
    figure = _figure(max(4.5, 0.6 * k + 2.5), max(4.0, 0.6 * k + 2.0))
    ax = figure.subplots()
    image = ax.imshow(counts, cmap="Blues")
    figure.colorbar(image, ax=ax, shrink=0.8)
    names = [str(c) for c in class_names]
    ax.set_xticks(range(k), names, rotation=45, ha="right")
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    top = counts.max() if counts.size else 0
    for i in range(k):
        for j in range(k):
            colour = "white" if counts[i, j] > top / 2 else "black"
            ax.text(
                j,
                i,
                str(int(counts[i, j])),
                ha="center",
                va="center",
                color=colour,
                fontsize="small",
            )
    ax.set_title("confusion matrix")
    return _write(figure, path)


def diagnostics(history: dict[str, list[float]], path: str | os.PathLike[str]) -> str:
    """Per layer and epoch: each parameter's mean gradient norm (log scale) and each ReLU-like
    layer's dead fraction (units whose gate stayed closed on every probe row)."""
    norms = {k.split("/", 1)[1]: v for k, v in history.items() if k.startswith("grad_norm/")}
    dead = {k.split("/", 1)[1]: v for k, v in history.items() if k.startswith("dead_fraction/")}
    figure = _figure(10.4, 4.0)
    left, right = figure.subplots(1, 2)
    for name, values in norms.items():
        left.plot(np.arange(1, len(values) + 1), values, "-o", ms=3, label=name)
    left.set_yscale("log")
    left.set_title("gradient norm per epoch (mean over batches)")
    for layer, values in dead.items():
        right.plot(np.arange(1, len(values) + 1), values, "-o", ms=3, label=f"layer {layer}")
    right.set_ylim(-0.02, 1.02)
    right.set_title("dead ReLU fraction per epoch")
    for ax in (left, right):
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
    return _write(figure, path)


def predicted_vs_true(y_true: Array, y_pred: Array, path: str | os.PathLike[str]) -> str:
    """Each test row's prediction against its true value, with the diagonal of perfect
    predictions."""
    figure = _figure(5.0, 5.0)
    ax = figure.subplots()
    t, p = np.ravel(y_true), np.ravel(y_pred)
    ax.scatter(t, p, s=10, alpha=0.6)
    lo, hi = float(min(t.min(), p.min())), float(max(t.max(), p.max()))
    ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="prediction = truth")
    ax.set_xlabel("true value")
    ax.set_ylabel("predicted value")
    ax.set_title("predicted vs true (test rows)")
    ax.grid(alpha=0.3)
    ax.legend()
    return _write(figure, path)
