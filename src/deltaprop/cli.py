"""The ``deltaprop`` command: the only place where strings become objects."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from . import datasets, gradcheck
from .activations import ReLU
from .io import ModelFileError, inspect, save
from .layers import Dense
from .losses import Loss, SigmoidBinaryCrossEntropy, SoftmaxCrossEntropy
from .model import Sequential
from .optimizers import OPTIMIZERS
from .train import EarlyStopping, evaluate, fit

app = typer.Typer(
    add_completion=False,
    no_args_is_help=False,
    help="Train neural networks by explicit forward and back propagation.",
)


def build_mlp(
    in_features: int,
    hidden: list[int],
    n_classes: int,
    rng: np.random.Generator,
    dtype: str = "float32",
) -> tuple[Sequential, Loss]:
    """A ReLU MLP ending in logits, with the fused loss for ``n_classes``."""
    widths = [in_features, *hidden]
    layers: list = []
    for fan_in, fan_out in zip(widths[:-1], widths[1:], strict=True):
        layers += [Dense(fan_in, fan_out, rng=rng, dtype=dtype), ReLU()]
    binary = n_classes == 2
    layers.append(Dense(widths[-1], 1 if binary else n_classes, rng=rng, dtype=dtype))
    loss: Loss = SigmoidBinaryCrossEntropy() if binary else SoftmaxCrossEntropy()
    return Sequential(*layers), loss


@app.command()
def train(
    dataset: Annotated[
        str, typer.Option(help=f"one of {sorted(datasets.LOADERS)}")
    ] = "breast-cancer",
    hidden: Annotated[str, typer.Option(help="hidden widths, comma-separated")] = "16",
    epochs: Annotated[int, typer.Option(min=0)] = 50,
    batch_size: Annotated[int, typer.Option(min=1)] = 32,
    optimizer: Annotated[str, typer.Option(help=f"one of {sorted(OPTIMIZERS)}")] = "Adam",
    lr: Annotated[float, typer.Option(min=0.0)] = 3e-3,
    patience: Annotated[int, typer.Option(min=0, help="early-stopping patience (epochs)")] = 5,
    seed: int = 0,
    save_to: Annotated[Path | None, typer.Option("--save", help="write the model here")] = None,
    verbose: Annotated[int, typer.Option(min=0, max=2)] = 2,
) -> None:
    """Train an MLP (ReLU hidden layers, fused output loss) and report test loss and accuracy."""
    if dataset not in datasets.LOADERS:
        raise typer.BadParameter(
            f"unknown data set {dataset!r}; choose from {sorted(datasets.LOADERS)}",
            param_hint="--dataset",
        )
    if optimizer not in OPTIMIZERS:
        raise typer.BadParameter(
            f"unknown optimizer {optimizer!r}; choose from {sorted(OPTIMIZERS)}",
            param_hint="--optimizer",
        )
    try:
        widths = [int(w) for w in hidden.split(",") if w.strip()]
    except ValueError:
        raise typer.BadParameter(
            f"expected comma-separated integers, got {hidden!r}", param_hint="--hidden"
        ) from None
    X_train, X_test, y_train, y_test = datasets.LOADERS[dataset]()
    rng = np.random.default_rng(seed)
    n_classes = int(max(y_train.max(), y_test.max())) + 1
    model, loss = build_mlp(X_train.shape[1], widths, n_classes, rng)
    opt = OPTIMIZERS[optimizer](model.parameters(), lr=lr)
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
        save(model, save_to, loss=loss)
        typer.echo(f"saved to {save_to}")


@app.command()
def info(path: Path) -> None:
    """Show what a deltaprop model or checkpoint file holds, without building the model."""
    try:
        typer.echo(str(inspect(path)))
    except (ModelFileError, FileNotFoundError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None


@app.command("gradcheck")
def gradcheck_command(seed: int = 0) -> None:
    """Check the seed's two-layer network (ReLU hidden, sigmoid + BCE) by finite differences."""
    rng = np.random.default_rng(seed)
    model = Sequential(Dense(3, 4, rng=rng), ReLU(), Dense(4, 1, rng=rng))
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
