"""The ``deltaprop`` command: the only place where strings become objects."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from . import gradcheck, registry
from .atomic import check_writable
from .callbacks import EarlyStopping
from .errors import ModelFileError
from .files import inspect_file, save
from .losses import Loss, SigmoidBinaryCrossEntropy, SoftmaxCrossEntropy
from .model import Sequential, mlp
from .train import evaluate, fit

app = typer.Typer(
    add_completion=False,
    no_args_is_help=False,
    rich_markup_mode=None,  # usage errors as one plain line: "Error: Invalid value for ..."
    help="Train neural networks by explicit forward and back propagation.",
)


def loss_for(n_classes: int) -> Loss:
    """The fused loss for ``n_classes``: sigmoid + BCE for two, softmax cross-entropy above."""
    return SigmoidBinaryCrossEntropy() if n_classes == 2 else SoftmaxCrossEntropy()


def _parse_widths(hidden: str) -> list[int]:
    try:
        widths = [int(w) for w in hidden.split(",")]
    except ValueError:
        widths = []
    if not widths or any(w <= 0 for w in widths):
        raise typer.BadParameter(
            f"expected comma-separated positive integers (such as 64,32), got {hidden!r}",
            param_hint="--hidden",
        )
    return widths


@app.command()
def train(
    dataset: Annotated[
        str, typer.Option(help=f"one of {registry.DATASETS.names()}")
    ] = "breast-cancer",
    hidden: Annotated[str, typer.Option(help="hidden widths, comma-separated")] = "16",
    epochs: Annotated[int, typer.Option(min=0)] = 50,
    batch_size: Annotated[int, typer.Option(min=1)] = 32,
    optimizer: Annotated[str, typer.Option(help=f"one of {registry.OPTIMIZERS.names()}")] = "Adam",
    lr: Annotated[float, typer.Option(help="learning rate, > 0")] = 3e-3,
    patience: Annotated[int, typer.Option(min=0, help="early-stopping patience (epochs)")] = 5,
    seed: Annotated[int, typer.Option(min=0, help="seed of every random draw")] = 0,
    save_to: Annotated[Path | None, typer.Option("--save", help="write the model here")] = None,
    verbose: Annotated[int, typer.Option(min=0, max=2)] = 2,
) -> None:
    """Train an MLP (ReLU hidden layers, fused output loss) and report test loss and accuracy."""
    try:
        load_data = registry.DATASETS.get(dataset)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--dataset") from None
    try:
        optimizer_class = registry.OPTIMIZERS.get(optimizer)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--optimizer") from None
    widths = _parse_widths(hidden)
    if save_to is not None:
        try:
            check_writable(save_to)  # before training, not after it
        except OSError as error:
            raise typer.BadParameter(str(error), param_hint="--save") from None
    X_train, X_test, y_train, y_test = load_data()
    rng = np.random.default_rng(seed)
    n_classes = int(max(y_train.max(), y_test.max())) + 1
    model = mlp([X_train.shape[1], *widths, 1 if n_classes == 2 else n_classes], rng=rng)
    loss = loss_for(n_classes)
    try:
        opt = optimizer_class(model.parameters(), lr=lr)
    except (TypeError, ValueError) as error:
        raise typer.BadParameter(str(error), param_hint="--lr") from None
    typer.echo(
        f"{dataset}: {len(X_train)} training and {len(X_test)} test samples, "
        f"{X_train.shape[1]} features, {n_classes} classes"
    )
    typer.echo(repr(model))
    history = fit(
        model,
        loss,
        opt,
        X_train,
        y_train,
        epochs=epochs,
        batch_size=batch_size,
        rng=rng,
        validation_split=0.1,
        verbose=verbose,
        callbacks=[EarlyStopping(patience=patience, restore_best_weights=True)],
    )
    if history.stop_reason:
        typer.echo(f"note: {history.stop_reason}")
    scores = evaluate(model, loss, X_test, y_test)
    typer.echo(f"test loss {scores['loss']:.4f}  test accuracy {scores['accuracy']:.4f}")
    if save_to is not None:
        _save_or_keep(model, loss, save_to)


def _save_or_keep(model: Sequential, loss: Loss, path: Path) -> None:
    """Save the model; if that fails after all, save it somewhere it can be, and say where."""
    try:
        save(model, path, loss=loss)
    except (OSError, ValueError) as error:
        fd, fallback = tempfile.mkstemp(prefix="deltaprop-model-", suffix=".safetensors")
        os.close(fd)
        save(model, fallback, loss=loss)
        typer.echo(
            f"error: could not save the model to {str(path)!r} ({error}); it was saved to "
            f"{fallback!r} instead",
            err=True,
        )
        raise typer.Exit(1) from None
    typer.echo(f"saved to {path}")


@app.command()
def info(path: Path) -> None:
    """Show what a deltaprop model or checkpoint file holds, without building the model."""
    try:
        typer.echo(str(inspect_file(path)))
    except (ModelFileError, OSError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None


@app.command("gradcheck")
def gradcheck_command(
    seed: Annotated[int, typer.Option(min=0, help="seed of every random draw")] = 0,
) -> None:
    """Check the seed's two-layer network (ReLU hidden, sigmoid + BCE) by finite differences."""
    rng = np.random.default_rng(seed)
    model = mlp([3, 4, 1], rng=rng)
    X = rng.standard_normal((8, 3))
    y = (rng.random(8) > 0.5).astype(np.float64)
    report = gradcheck.check_model(model, SigmoidBinaryCrossEntropy(), X, y)
    typer.echo(str(report))
    if not report.ok:
        raise typer.Exit(1)


def main() -> None:
    """Entry point: ``deltaprop`` with no arguments trains on the default data set."""
    if len(sys.argv) == 1:
        sys.argv.append("train")
    app()
