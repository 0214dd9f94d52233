"""What ``deltaprop train`` reports: the summary table, the JSON document and the plots."""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import typer
from rich.console import Console
from rich.table import Table as RichTable

from ..data.dataset import Dataset
from ..data.preprocessing import Preprocessor
from ..data.tables import Table
from ..files.model_files import save
from ..nn.losses import Loss
from ..nn.sequential import Sequential
from ..training.evaluation import predict
from ..training.protocol import History
from ..training.scoring import Scores, class_probabilities
from . import plots
from .shared import input_width, metric_name, number


@dataclass
class TrainingReport:
    """What a training run produced, for the summary and for ``--json``."""

    data: Dataset
    train: Dataset
    test: Dataset
    test_from: str
    prep: Preprocessor
    model: Sequential
    loss: Loss
    optimizer: str
    history: History
    scores: Scores
    seconds: float
    n_validation: int
    model_path: Path | None = None
    plots: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    dropped: tuple[str, ...] = ()


def write_plots(run: TrainingReport, X_test: np.ndarray, directory: Path) -> list[str]:
    """The plots that fit the run: curves and diagnostics always; a confusion matrix or
    predicted-vs-true on the test rows; the decision boundary for 2-D inputs."""
    written = [plots.learning_curves(run.history, directory / plots.FILES["curves"])]
    written.append(plots.diagnostics(run.history, directory / plots.FILES["diagnostics"]))
    scores, prep = run.scores, run.prep
    if scores.task == "classification":
        assert scores.confusion is not None
        written.append(
            plots.confusion_matrix(
                scores.confusion, prep.class_names, directory / plots.FILES["confusion"]
            )
        )
        if len(prep.columns) == 2 and not prep.categories:

            def proba(points: np.ndarray) -> np.ndarray:
                table = Table.from_matrix(points, prep.columns)
                return class_probabilities(predict(run.model, run.loss, prep.transform(table)))

            features = run.test.features.numeric(prep.columns)
            written.append(
                plots.decision_boundary(
                    proba,
                    features,
                    run.test.y,
                    prep.class_names,
                    directory / plots.FILES["boundary"],
                )
            )
    else:
        written.append(
            plots.predicted_vs_true(
                run.test.y, scores.predictions, directory / plots.FILES["regression"]
            )
        )
    return written


def identifier_notes(data: Dataset) -> list[str]:
    """Numeric columns that hold a distinct whole number in every row (more than 20 rows): they
    look like identifiers, which a network learns nothing general from."""
    features, notes = data.features, list[str]()
    if data.n_rows <= 20:
        return notes
    for name in features.names:
        if features.is_text(name):
            continue  # text identifiers are refused by the preprocessing
        values = np.asarray(features.column(name), dtype=np.float64)
        whole = np.all(np.isfinite(values) & (values == np.round(values)))
        if whole and len(np.unique(values)) == len(values):
            notes.append(
                f"column {name!r} holds a different whole number in every row: it looks like an "
                f"identifier and was used as a feature (--drop {name!r} leaves it out)"
            )
    return notes


def column_roles(run: TrainingReport) -> dict[str, list[str]]:
    """What each column of the data became: ``numbers``, ``categories`` (one-hot encoded, with
    their level counts), ``dropped`` (``--drop``) and the ``target``."""
    prep = run.prep
    roles = {
        "numbers": list(prep.numeric_columns),
        "categories": [
            f"{name} ({len(levels)} levels)" for name, levels in prep.categories.items()
        ],
        "dropped": list(run.dropped),
        "target": [prep.target] if prep.target else [],
    }
    return {role: columns for role, columns in roles.items() if columns}


def _listed(columns: list[str], most: int = 8) -> str:
    """``a, b, c`` — or ``a, b, c, ..., z (784 columns)`` for long lists."""
    if len(columns) <= most:
        return ", ".join(columns)
    return f"{', '.join(columns[: most - 2])}, ..., {columns[-1]} ({len(columns)} columns)"


def to_json(run: TrainingReport) -> dict[str, Any]:
    return {
        "notes": run.notes,
        "columns": column_roles(run),
        "data": {
            "name": run.data.name,
            "source": run.data.source,
            "task": run.prep.task,
            "features": run.prep.n_features,
            "classes": list(run.prep.class_names),
        },
        "split": {
            "train": len(run.train.y) - run.n_validation,
            "validation": run.n_validation,
            "test": len(run.test.y),
            "test_from": run.test_from,
        },
        "model": {
            "layers": [repr(layer) for layer in run.model.layers],
            "parameters": sum(p.value.size for p in run.model.parameters()),
            "loss": type(run.loss).__name__,
            "optimizer": run.optimizer,
            "device": run.model.device.name,
        },
        "epochs": run.history.n_epochs,
        "stop_reason": run.history.stop_reason,
        "seconds": run.seconds,
        "history": dict(run.history),
        "test": run.scores.to_dict(),
        "model_path": run.model_path,
        "plots": run.plots,
    }


def print_summary(run: TrainingReport) -> None:
    console = Console(highlight=False)
    table = RichTable(title="deltaprop train", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    prep, history = run.prep, run.history
    classes = f", {len(prep.class_names)} classes" if prep.class_names else ""
    table.add_row("data", f"{run.data.name} ({run.data.source})")
    table.add_row(
        "task",
        f"{prep.task}: {prep.n_features} features{classes}"
        + (", standardized" if prep.mean else ""),
    )
    for role, columns in column_roles(run).items():
        table.add_row(role, _listed(columns))
    for note in run.notes:
        table.add_row("note", note)
    table.add_row(
        "split",
        f"{len(run.train.y) - run.n_validation} train, {run.n_validation} "
        f"validation, {len(run.test.y)} test ({run.test_from})",
    )
    arch = _architecture(run.model)
    n_params = sum(p.value.size for p in run.model.parameters())
    device = "" if run.model.device.name == "cpu" else f", on {run.model.device.name}"
    table.add_row("model", f"{arch}, {type(run.loss).__name__}, {n_params:,} parameters{device}")
    table.add_row("optimizer", run.optimizer)
    stop = f"; {history.stop_reason}" if history.stop_reason else ""
    table.add_row("epochs", f"{history.n_epochs} in {run.seconds:.1f} s{stop}")
    for name in ("loss", "accuracy", "mse"):
        if name in history:
            val = history.get(f"val_{name}", [math.nan])
            table.add_row(
                f"last epoch {metric_name(name, prep, during_training=True)}",
                f"train {number(history[name][-1])}, validation {number(val[-1])}",
            )
    for name, value in run.scores.metrics.items():
        table.add_row(f"test {metric_name(name, prep)}", number(value))
    if run.model_path is not None:
        table.add_row("model file", str(run.model_path))
    for path in run.plots:
        table.add_row("plot", path)
    console.print(table)


def _architecture(model: Sequential) -> str:
    """``30 → 16 ReLU → 1``: each affine layer's width, then the layers after it by name."""
    width = input_width(model)
    parts = [str(width)]
    for layer in model.layers:
        if layer.affine:
            width = layer.output_features(width)
            parts.append(str(width))
        else:
            parts[-1] += f" {type(layer).__name__}"
    return " → ".join(parts)


def save_or_keep(model: Sequential, loss: Loss, prep: Preprocessor, path: Path) -> Path:
    """Save the model; if that fails after all, save it somewhere it can be, and say where."""
    try:
        save(model, path, loss=loss, preprocessor=prep)
        return path
    except (OSError, ValueError) as error:
        fd, fallback = tempfile.mkstemp(prefix="deltaprop-model-", suffix=".safetensors")
        os.close(fd)
        save(model, fallback, loss=loss, preprocessor=prep)
        typer.echo(
            f"Error: could not save the model to {str(path)!r} ({error}); it was saved "
            f"to {fallback!r} instead",
            err=True,
        )
        raise typer.Exit(1) from None
