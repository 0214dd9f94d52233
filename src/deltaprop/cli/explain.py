"""``deltaprop explain`` and ``deltaprop gradcheck``: every gradient, shown and checked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console

from .. import registry
from ..backend.arrays import Array
from ..data import catalog as datasets
from ..errors import ShapeError
from ..explanation import gradcheck
from ..explanation.document import Explanation
from ..explanation.explain import explain
from ..explanation.neuron import explain_neuron
from ..files.format import read_file
from ..files.model_files import load_contents, preprocessor_from
from ..nn.losses import Loss
from ..nn.mlp import mlp
from ..nn.sequential import Sequential
from .shared import (
    app,
    check_memory,
    echo_json,
    fail,
    input_width,
    labelled_rows,
    load_data,
    lookup,
    network_bytes,
    parse_widths,
    trained_on,
    user_input,
)


def checked_bytes(widths: list[int], batch: int) -> int:
    """Memory of checking a float64 network of these widths on ``batch`` rows: the network and
    its float64 copy, and each layer's activations and deltas."""
    return network_bytes(widths, 8, copies=4) + 4 * 8 * batch * sum(widths)


DEFAULT_SAMPLE = 1000
"""Entries of each tensor ``gradcheck`` checks by default on a network too large to check whole."""


@app.command("gradcheck")
def gradcheck_command(
    hidden: Annotated[str, typer.Option(help="hidden widths, comma-separated")] = "4",
    inputs: Annotated[int, typer.Option(min=1, help="input features")] = 3,
    outputs: Annotated[
        int | None,
        typer.Option(min=1, help="output width [default: 1, or 3 for softmax-ce]"),
    ] = None,
    activation: Annotated[
        str, typer.Option(help=f"hidden activation: one of {registry.ACTIVATIONS.names()}")
    ] = "relu",
    loss_name: Annotated[
        str, typer.Option("--loss", help=f"one of {registry.LOSSES.names()} or an alias")
    ] = "bce",
    batch: Annotated[int, typer.Option(min=1, help="samples in the batch")] = 8,
    model_path: Annotated[
        Path | None, typer.Option("--model", help="check this model file instead")
    ] = None,
    tolerance: Annotated[
        float, typer.Option(help="largest relative error that passes, > 0")
    ] = gradcheck.DEFAULT_TOLERANCE,
    sample: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="check this many random entries of each tensor [default: every entry, or "
            f"{DEFAULT_SAMPLE:,} of each when the network has over "
            f"{gradcheck.LARGE_CHECK:,} parameters]",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(min=0, max=2**32 - 1, help="seed of every random draw")] = 0,
    json_output: Annotated[bool, typer.Option("--json", help="print one JSON document")] = False,
) -> None:
    """Check a network's gradients by central differences, in float64 (the seed's network by
    default: 3 inputs, 4 ReLU units, sigmoid + BCE); exit code 1 if one disagrees. Each entry
    checked costs two passes of the network, so a large one is checked on a sample.

    Example: deltaprop gradcheck --hidden 8,8 --activation tanh --loss softmax-ce
    """
    if not tolerance > 0:
        fail(f"--tolerance must be > 0, got {tolerance}")
    rng = np.random.default_rng(seed)
    if model_path is not None:
        model, loss, _, _ = _explained_file(model_path, None, None, 0, batch, seed)
    else:
        loss = lookup(registry.LOSSES, loss_name, "--loss")()
        softmax = loss.output_activation == "Softmax"  # one output per class
        width = outputs or (3 if softmax else 1)
        make = lookup(registry.ACTIVATIONS, activation, "--activation")
        widths = [inputs, *parse_widths(hidden), width]
        check_memory(f"checking widths {widths} on --batch {batch}", checked_bytes(widths, batch))
        model = mlp(widths, rng=rng, activation=make, dtype=np.float64)
    n_in = input_width(model)
    X = rng.standard_normal((batch, n_in))
    with user_input():
        y = loss.derivation.example_targets(rng, batch, model.output_features(n_in))
        if sample is None and model.flat_values.size > gradcheck.LARGE_CHECK:
            sample = DEFAULT_SAMPLE
        report = gradcheck.check_model(
            model, loss, X, y, tolerance=tolerance, seed=seed, sample=sample
        )
    if json_output:
        echo_json(
            {
                "subject": report.subject,
                "tolerance": report.tolerance,
                "ok": report.ok,
                "worst": report.worst,
                "errors": report.errors,
                "sample": sample,
            }
        )
    else:
        typer.echo(str(report))
        if sample is not None:
            typer.echo(f"  (checked at {sample:,} random entries of each tensor; --sample sets it)")
    if not report.ok:
        raise typer.Exit(1)


def _explained_network(
    layers: str, activation: str, loss_name: str, batch: int, seed: int
) -> tuple[Sequential, Loss, Array, Array]:
    """A new network of the given widths on random samples, targets as the loss takes them."""
    widths = parse_widths(layers, "--layers")
    if len(widths) < 2:
        fail(f"--layers needs an input and an output width, such as 3,4,1; got {layers!r}")
    check_memory(f"--layers {layers} on --batch {batch}", checked_bytes(widths, batch))
    hidden = lookup(registry.ACTIVATIONS, activation, "--activation")
    loss: Loss = lookup(registry.LOSSES, loss_name, "--loss")()
    rng = np.random.default_rng(seed)
    model = mlp(widths, rng=rng, activation=hidden, dtype=np.float64)
    X = rng.standard_normal((batch, widths[0]))
    return model, loss, X, loss.derivation.example_targets(rng, batch, widths[-1])


def _explained_file(
    path: Path, loss_name: str | None, data: str | None, index: int, batch: int, seed: int
) -> tuple[Sequential, Loss, Array, Array]:
    """A saved model on rows ``index…`` of a data set's test split (or on random samples);
    the file's preprocessing is applied when it has one."""
    with user_input():
        contents = read_file(path)
        loaded = load_contents(contents, str(path))
        prep = preprocessor_from(contents, str(path))
    if not isinstance(loaded, tuple):
        fail(f"{str(path)!r} holds a {type(loaded).__name__}; --model takes a model file")
    model, loss = loaded
    if loss_name is not None:
        loss = lookup(registry.LOSSES, loss_name, "--loss")()
    if loss is None:
        fail(f"{str(path)!r} was saved without a loss; name one with --loss")
    width = input_width(model)
    if data is None and prep is not None and prep.data:
        known = not datasets.is_file_name(prep.data) or Path(prep.data).exists()
        data = prep.data if known else None
    if data is None:
        typer.echo(
            "note: no --data, and the model file names no data set that is here: the inputs are "
            "random samples (standard normal), not rows of real data; --data names a data set",
            err=True,
        )
        rng = np.random.default_rng(seed)
        X = rng.standard_normal((batch, width))
        targets = loss.derivation.example_targets(rng, batch, model.output_features(width))
        return model, loss, X, targets
    split = "test"
    with user_input("--data"):
        if prep is not None:
            own = not datasets.is_file_name(data) or bool(prep.split and trained_on(prep, data))
            split = "test" if own else "all"
            features, labels = labelled_rows(data, prep, split)
            X_test, y_test = prep.transform(features), prep.encode_target(labels)
        else:
            _, X_test, _, y_test = load_data(data).train_test_split()
    if X_test.shape[1] != width:
        fail(f"the model takes {width} features, but {data} has {X_test.shape[1]}")
    if index + batch > len(X_test):
        fail(
            f"--index {index} with --batch {batch} is out of range: {data}'s test split has "
            f"{len(X_test)} rows (0 to {len(X_test) - 1})"
        )
    rows = f"row {index}" if batch == 1 else f"rows {index} to {index + batch - 1}"
    typer.echo(f"note: {rows} of {data}'s {split} rows", err=True)
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
            help="with --model: rows of this data set's test split (one of "
            f"{registry.DATASETS.names()}, or a file) [default: the model's training data]"
        ),
    ] = None,
    index: Annotated[int, typer.Option(min=0, help="with --data: the first row")] = 0,
    seed: Annotated[int, typer.Option(min=0, max=2**32 - 1, help="seed of every random draw")] = 0,
    output_format: Annotated[
        str, typer.Option("--format", help="text, md (Markdown with TeX) or json")
    ] = "text",
    tolerance: Annotated[
        float, typer.Option(help="largest relative error that passes, > 0")
    ] = 1e-6,
    lr: Annotated[float, typer.Option(help="the learning rate of the update shown last")] = 0.1,
) -> None:
    """Replay the seed's derivation on live numbers: forward, loss, every backward step, each
    gradient checked by central differences (exit code 1 if one disagrees).

    Example: deltaprop explain --layers 3,4,1 --format md
    """
    if output_format not in ("text", "md", "json"):
        fail(f"--format must be text, md or json, got {output_format!r}")
    if not tolerance > 0:
        fail(f"--tolerance must be > 0, got {tolerance}")
    if data is not None and model_path is None:
        fail("--data needs --model (a new network is explained on random samples)")
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
            explanation = explain(*parts, seed=seed, tolerance=tolerance, lr=lr)
    except (ValueError, TypeError, ShapeError) as error:
        fail(str(error))
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
