"""How a ``deltaprop train`` run ended, in words a user can act on: a learning rate far from the
usual, a run that diverged, a run interrupted with Ctrl-C, and a model far from what the data
allow (no better than always answering the most common class, or a loss that did not fall)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import typer

from ..backend.arrays import Array
from ..data.dataset import Dataset
from ..data.preprocessing import Preprocessor
from ..training.callbacks import EarlyStopping
from ..training.protocol import Callback, History, TrainingRun
from ..training.rollback import ADVICE
from ..training.scoring import Scores
from .report import save_or_keep

USUAL_LR = {"SGD": 0.01, "Adam": 1e-3, "AdamW": 1e-3, "RMSprop": 1e-3, "Adagrad": 1e-2}
"""The learning rate each optimizer is usually run with (PyTorch's and Keras' defaults)."""

LARGE_LR = 1.0
"""Above this, ``--lr`` is pointed out: almost every network diverges with it."""


def lr_notes(lr: float, optimizer: str) -> list[str]:
    """A note for a learning rate above :data:`LARGE_LR`, with the optimizer's usual one."""
    if lr <= LARGE_LR:
        return []
    usual = USUAL_LR.get(optimizer)
    hint = f" ({optimizer}'s usual is {usual:g})" if usual else ""
    return [f"--lr {lr:g} is unusually large{hint}: training is likely to diverge"]


@contextmanager
def caught_warnings(quiet: bool) -> Iterator[None]:
    """Floating-point warnings from inside the run are dropped (a diverged run is reported once,
    by :func:`diverged_message`); any other warning is shown as one line, without the source
    path it was raised at, unless ``quiet``."""
    with warnings.catch_warnings(record=True) as caught, np.errstate(all="ignore"):
        warnings.simplefilter("always")
        yield
    shown = {str(w.message) for w in caught if not issubclass(w.category, RuntimeWarning)}
    if not quiet:
        for message in sorted(shown):
            typer.echo(f"warning: {message}", err=True)


def diverged_message(history: History, lr: float, saved: str | None) -> str:
    """What happened to a run whose loss became non-finite, what was kept, and the CLI's fix."""
    reason = (history.stop_reason or "the loss became non-finite").replace(" " + ADVICE, "")
    kept = f" The model of epoch {history.kept_epochs} was saved to {saved}." if saved else ""
    return (
        f"training diverged: {reason}{kept} Try a smaller --lr (it was {lr:g}) or gradient "
        "clipping with --opt clip_norm=1"
    )


def diverged(history: History, scores: Scores) -> bool:
    """Whether the run blew up: a non-finite loss stopped it, or its test scores are not finite."""
    return history.diverged or not all(math.isfinite(v) for v in scores.metrics.values())


class Interruption(Callback):
    """Keeps what a Ctrl-C must save: the newest finished epoch's weights, where no early
    stopping keeps the best ones (``fit`` restores those itself when it ends).

    Args:
        early: the run's early stopping, or None.
    """

    batch_end_reads_model = False

    def __init__(self, early: EarlyStopping | None) -> None:
        self.early = early
        self.run: TrainingRun | None = None
        self.snapshot: list[Array] | None = None

    def on_train_begin(self, run: TrainingRun) -> None:
        self.run = run

    def on_epoch_recorded(self, run: TrainingRun) -> None:
        if self.early is None:
            self.snapshot = run.model.snapshot(into=self.snapshot)

    @property
    def epochs_done(self) -> int:
        return 0 if self.run is None else self.run.history.n_epochs

    def restore_kept(self) -> str:
        """Put back the weights to save (early stopping's best are back already), and say
        which they are."""
        assert self.run is not None
        if self.snapshot is not None:
            self.run.model.restore(self.snapshot)
        early = self.early
        if early is not None and early.best_epoch >= 0:
            return (
                f"the best model so far (epoch {early.best_epoch + 1}, {early.monitor} "
                f"{early.best:.4g})"
            )
        return f"the model after epoch {self.epochs_done}"


def save_interrupted(
    interruption: Interruption,
    model: Any,
    loss: Any,
    prep: Any,
    model_path: Path | None,
) -> NoReturn:
    """Ctrl-C: save the best model so far (or the newest finished epoch's) and say where, as an
    interrupted Keras ``fit`` keeps its model; exit 130 as an interrupted command does."""
    if interruption.epochs_done == 0:
        typer.echo("interrupted before the first epoch ended: nothing was saved", err=True)
    elif model_path is None:
        typer.echo("interrupted: no --out was given, so no model was saved", err=True)
    else:
        kept = interruption.restore_kept()
        path = save_or_keep(model, loss, prep, model_path)
        typer.echo(
            f"interrupted after {interruption.epochs_done} epochs: saved {kept} to {path}",
            err=True,
        )
    raise typer.Exit(130)


# --- a model far from what the data allow ------------------------------------------------------


def quality_notes(
    history: History, scores: Scores, test: Dataset, prep: Preprocessor, train: Dataset
) -> list[str]:
    """Notes for a run that ended far from a useful model, each with its likely cause: test
    accuracy within 2 points of always answering the most common class, an r² below 0.05
    (predicting the mean scores 0), or a training loss that ended where it began."""
    notes: list[str] = []
    metrics = scores.metrics
    if prep.task == "classification" and "accuracy" in metrics and len(test.y):
        counts = np.bincount(test.y, minlength=len(prep.class_names))
        majority = counts.max() / counts.sum()
        if metrics["accuracy"] <= majority + 0.02:
            label = prep.class_names[int(counts.argmax())]
            notes.append(
                f"test accuracy {metrics['accuracy']:.3f} is no better than always answering "
                f"the most common class {label!r} ({majority:.3f}): the network learned little"
                + _likely_cause(history, prep, train)
            )
    elif prep.task == "regression" and "r2" in metrics and metrics["r2"] < 0.05:
        notes.append(
            f"test r2 {metrics['r2']:.3f}: no better than predicting the mean target"
            + _likely_cause(history, prep, train)
        )
    losses = [v for v in history.get("loss", []) if math.isfinite(v)]
    if len(losses) >= 3 and min(losses[1:]) >= 0.99 * losses[0]:
        notes.append(
            f"the training loss did not fall ({losses[0]:.4g} after epoch 1, {losses[-1]:.4g} "
            "at the end): try a larger --lr, or a smaller one if it rose"
        )
    return notes


def _likely_cause(history: History, prep: Preprocessor, train: Dataset) -> str:
    if not prep.mean and prep.numeric_columns:
        block = train.features.numeric(prep.numeric_columns)
        spread = np.abs(block).max(axis=0) if len(block) else np.zeros(1)
        if spread.max() > 100 * max(spread.min(), 1e-12) or spread.max() > 1e3:
            return (
                "; likely cause: the features are not standardized and their scales differ "
                f"(largest |value| per column from {spread.min():.3g} to {spread.max():.3g}): "
                "leave out --no-standardize"
            )
    if history.n_epochs <= 5:
        return f"; likely cause: only {history.n_epochs} epochs: raise --epochs"
    return (
        "; try more --epochs, wider --hidden layers or another --lr, and check that the "
        "features carry information about the target"
    )
