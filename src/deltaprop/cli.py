"""The ``deltaprop`` command: the only place where strings become objects."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any, NoReturn

import numpy as np
import typer
from rich.console import Console
from typer.core import TyperGroup

from . import gradcheck, registry
from .atomic import check_writable
from .backend import Array
from .builders import mlp
from .callbacks import EarlyStopping
from .derivation import explain
from .errors import ModelFileError, ShapeError
from .explanation import Explanation
from .files import inspect_file, load, save
from .losses import Loss, SigmoidBinaryCrossEntropy, SoftmaxCrossEntropy
from .model import Sequential
from .neuron import explain_neuron
from .train import evaluate, fit

# typer carries its own copy of click; its UsageError is the base of typer.BadParameter
_USAGE_ERROR: type[Exception] = next(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError"
)


class _OneLineErrors(TyperGroup):
    """Usage errors as one plain line, "Error: <what and which value>", without the usage block."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except _USAGE_ERROR as error:
            error.ctx = None  # type: ignore[attr-defined]  # no context: no usage block
            raise


app = typer.Typer(
    cls=_OneLineErrors,
    add_completion=False,
    no_args_is_help=False,
    rich_markup_mode=None,  # plain click errors, one line each
    help="Train neural networks by explicit forward and back propagation.",
)


def loss_for(n_classes: int) -> Loss:
    """The fused loss for ``n_classes``: sigmoid + BCE for two, softmax cross-entropy above."""
    return SigmoidBinaryCrossEntropy() if n_classes == 2 else SoftmaxCrossEntropy()


def _parse_widths(text: str, option: str = "--hidden") -> list[int]:
    try:
        widths = [int(w) for w in text.split(",")]
    except ValueError:
        widths = []
    if not widths or any(w <= 0 for w in widths):
        raise typer.BadParameter(
            f"expected comma-separated positive integers (such as 64,32), got {text!r}",
            param_hint=option,
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


def _fail(message: str) -> NoReturn:
    """A usage error: one plain line on stderr, exit code 2."""
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(2)


def _lookup(table: registry.Registry[Any], name: str, option: str) -> Any:
    try:
        return table.get(name)
    except ValueError as error:
        _fail(f"{option}: {error}")


def _explained_network(
    layers: str, activation: str, loss_name: str, batch: int, seed: int
) -> tuple[Sequential, Loss, Array, Array]:
    """A new network of the given widths on random samples, targets as the loss takes them."""
    widths = _parse_widths(layers, "--layers")
    if len(widths) < 2:
        _fail(f"--layers needs an input and an output width, such as 3,4,1; got {layers!r}")
    hidden = _lookup(registry.ACTIVATIONS, activation, "--activation")
    loss: Loss = _lookup(registry.LOSSES, loss_name, "--loss")()
    rng = np.random.default_rng(seed)
    model = mlp(widths, rng=rng, activation=hidden, dtype=np.float64)
    X = rng.standard_normal((batch, widths[0]))
    return model, loss, X, loss.derivation.example_targets(rng, batch, widths[-1])


def _explained_file(
    path: Path, loss_name: str | None, data: str | None, index: int, batch: int, seed: int
) -> tuple[Sequential, Loss, Array, Array]:
    """A saved model on rows ``index…`` of a data set's test split (or on random samples)."""
    try:
        loaded = load(path)
    except (ModelFileError, OSError) as error:
        _fail(str(error))
    if not isinstance(loaded, tuple):
        _fail(f"{str(path)!r} holds a {type(loaded).__name__}; --model takes a model file")
    model, loss = loaded
    if loss_name is not None:
        loss = _lookup(registry.LOSSES, loss_name, "--loss")()
    if loss is None:
        _fail(f"{str(path)!r} was saved without a loss; name one with --loss")
    width = model.input_features()
    if data is None:
        rng = np.random.default_rng(seed)
        X = rng.standard_normal((batch, width))
        return (
            model,
            loss,
            X,
            loss.derivation.example_targets(rng, batch, model.output_features(width)),
        )
    _, X_test, _, y_test = _lookup(registry.DATASETS, data, "--data")()
    if X_test.shape[1] != width:
        _fail(f"the model takes {width} features, but {data} has {X_test.shape[1]}")
    if index + batch > len(X_test):
        _fail(
            f"--index {index} with --batch {batch} is out of range: {data}'s test split has "
            f"{len(X_test)} rows (0 to {len(X_test) - 1})"
        )
    return model, loss, X_test[index : index + batch], y_test[index : index + batch]


@app.command("explain")
def explain_command(
    neuron: Annotated[
        bool, typer.Option("--neuron", help="the single neuron: dL/dw = (a − y) x")
    ] = False,
    layers: Annotated[
        str, typer.Option(help="widths from input to output, comma-separated")
    ] = "3,4,1",
    activation: Annotated[
        str, typer.Option(help=f"hidden activation: one of {registry.ACTIVATIONS.names()}")
    ] = "relu",
    loss_name: Annotated[
        str | None,
        typer.Option(
            "--loss",
            help=f"one of {registry.LOSSES.names()} or an alias (bce, softmax-ce, mse); "
            "default bce, or the model file's",
        ),
    ] = None,
    batch: Annotated[int, typer.Option(min=1, help="samples in the batch")] = 1,
    model_path: Annotated[
        Path | None, typer.Option("--model", help="explain this model file instead")
    ] = None,
    data: Annotated[
        str | None,
        typer.Option(
            help="with --model: rows of this data set's test split, one of "
            f"{registry.DATASETS.names()}"
        ),
    ] = None,
    index: Annotated[int, typer.Option(min=0, help="with --data: the first row")] = 0,
    seed: Annotated[int, typer.Option(min=0, help="seed of every random draw")] = 0,
    output_format: Annotated[
        str, typer.Option("--format", help="text, md (Markdown with TeX) or json")
    ] = "text",
    tolerance: Annotated[
        float, typer.Option(help="largest relative error that passes, > 0")
    ] = 1e-6,
) -> None:
    """Replay the seed's derivation on live numbers: forward, loss, every backward step, each
    gradient checked by central differences (exit code 1 if one disagrees)."""
    if output_format not in ("text", "md", "json"):
        _fail(f"--format must be text, md or json, got {output_format!r}")
    if not tolerance > 0:
        _fail(f"--tolerance must be > 0, got {tolerance}")
    if data is not None and model_path is None:
        _fail("--data needs --model (a new network is explained on random samples)")
    try:
        if neuron:
            rng = np.random.default_rng(seed)
            x, w, b = (float(np.round(v, 2)) for v in rng.standard_normal(3))
            explanation = explain_neuron(
                x, float(rng.integers(0, 2)), w=w, b=b, tolerance=tolerance
            )
        else:
            if model_path is not None:
                parts = _explained_file(model_path, loss_name, data, index, batch, seed)
            else:
                parts = _explained_network(layers, activation, loss_name or "bce", batch, seed)
            explanation = explain(*parts, seed=seed, tolerance=tolerance)
    except (ValueError, TypeError, ShapeError) as error:
        _fail(str(error))
    if output_format == "json":
        typer.echo(json.dumps(explanation.to_dict(), indent=1, allow_nan=False))
    elif output_format == "md":
        typer.echo(explanation.to_markdown(), nl=False)
    else:
        _print_text(explanation)
    if not explanation.ok:
        raise typer.Exit(1)


def _print_text(explanation: Explanation) -> None:
    """Plain text when piped; in a terminal, step titles and checks in colour."""
    console = Console(highlight=False)
    if not console.is_terminal:
        typer.echo(explanation.to_text())
        return
    headings = set(explanation.headings())
    for line in explanation.to_text().splitlines():
        style = None
        if line in headings:
            style = "bold"
        elif "✓" in line:
            style = "green"
        elif "✗" in line:
            style = "bold red"
        console.print(line, style=style, markup=False)


def main() -> None:
    """Entry point: ``deltaprop`` with no arguments trains on the default data set."""
    if len(sys.argv) == 1:
        sys.argv.append("train")
    app()
