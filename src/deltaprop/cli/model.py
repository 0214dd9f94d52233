"""A trained model at work: ``evaluate``, ``predict``; and ``info`` and ``datasets``."""

from __future__ import annotations

import csv
import io
import math
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.table import Table as RichTable

from ..data import catalog as datasets
from ..data.idx import idx_shape
from ..data.tables import Table, read_table
from ..files.atomic import atomic_write
from ..files.format import read_file
from ..files.model_files import inspect_contents
from ..training.evaluation import predict as predict_outputs
from ..training.scoring import class_probabilities, predicted_classes, score
from . import plots
from .shared import (
    app,
    claim_output,
    echo_json,
    fail,
    labelled_rows,
    metric_name,
    number,
    open_model,
    trained_on,
    training_data,
    user_input,
)


@app.command()
def evaluate(
    model_path: Annotated[Path, typer.Argument(help="a model file written by deltaprop train")],
    data: Annotated[
        str | None,
        typer.Option("--data", "-d", help="a built-in set or a data file [default: the model's]"),
    ] = None,
    target: Annotated[
        str | None, typer.Option(help="the target column [default: as in training]")
    ] = None,
    split: Annotated[
        str | None,
        typer.Option(
            help="test (the test rows, as in training), train or all [default: test on "
            "the training data, all on other files]"
        ),
    ] = None,
    header: Annotated[
        bool | None,
        typer.Option("--header/--no-header", help="whether a CSV's first row names the columns"),
    ] = None,
    sep: Annotated[str | None, typer.Option(help="a CSV's field separator")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Fashion-MNIST's directory")] = None,
    plots_dir: Annotated[
        Path | None, typer.Option("--plots", help="write the confusion matrix here")
    ] = None,
    force: Annotated[bool, typer.Option(help="overwrite existing files")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="print one JSON document")] = False,
) -> None:
    """Score a model on labelled data: a metrics table and, for classes, the confusion matrix.

    Example: deltaprop evaluate model.safetensors --data test.csv --json
    """
    model, loss, prep = open_model(model_path)
    name = data or training_data(prep, model_path)
    own = data is None or trained_on(prep, name)
    own_split = not datasets.is_file_name(name) or bool(prep.split and own)
    chosen = split or ("test" if own_split else "all")
    features, labels = labelled_rows(name, prep, chosen, target, header, data_dir, sep, own)
    with user_input():
        X = prep.transform(features)
        y = prep.encode_target(labels)
        scores = score(model, loss, prep, X, y)
    written = []
    if plots_dir is not None and scores.confusion is not None:
        path = claim_output(plots_dir / plots.FILES["confusion"], force, "--plots")
        written.append(plots.confusion_matrix(scores.confusion, prep.class_names, path))
    if json_output:
        echo_json(
            {
                "model": str(model_path),
                "data": name,
                "split": chosen,
                **scores.to_dict(),
                "plots": written,
            }
        )
        return
    console = Console(highlight=False)
    console.print(f"{model_path} on {name}: {chosen} rows ({scores.rows})", markup=False)
    if chosen == "all" and own_split:
        console.print("note: all rows include those the model was trained on (--split test: not)")
    metrics = RichTable()
    metrics.add_column("metric")
    metrics.add_column("value", justify="right")
    for key, value in scores.metrics.items():
        metrics.add_row(metric_name(key, prep), number(value))
    console.print(metrics)
    if scores.confusion is not None:
        names = [str(c) for c in prep.class_names]
        per_class = RichTable()
        for heading in ("class", "precision", "recall", "f1", "support"):
            per_class.add_column(heading, justify="left" if heading == "class" else "right")
        for label, row in zip(names, scores.per_class, strict=True):
            per_class.add_row(
                label,
                number(row["precision"]),
                number(row["recall"]),
                number(row["f1"]),
                str(int(row["support"])),
            )
        console.print(per_class)
        console.print("confusion matrix (rows: true class, columns: predicted class, by number)")
        matrix = RichTable()
        matrix.add_column("")
        for k in range(len(names)):
            matrix.add_column(str(k), justify="right")
        for k, (label, counts) in enumerate(zip(names, scores.confusion.tolist(), strict=True)):
            matrix.add_row(f"{k} {label}", *(str(c) for c in counts))
        console.print(matrix)
    for plot in written:
        console.print(f"plot: {plot}")


# --- predict ----------------------------------------------------------------------------------


@app.command()
def predict(
    model_path: Annotated[Path, typer.Argument(help="a model file written by deltaprop train")],
    input_path: Annotated[
        Path,
        typer.Option(
            "--input", "-i", help="a .csv, .tsv, .parquet or .npz file of rows (-: CSV on stdin)"
        ),
    ],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="write the CSV here, not to stdout (-: stdout)"),
    ] = None,
    proba: Annotated[bool, typer.Option(help="add each class's probability")] = False,
    append: Annotated[
        bool, typer.Option(help="write the input rows, with the prediction appended to each")
    ] = False,
    header: Annotated[
        bool | None,
        typer.Option("--header/--no-header", help="whether a CSV's first row names the columns"),
    ] = None,
    sep: Annotated[str | None, typer.Option(help="a CSV's field separator")] = None,
    force: Annotated[bool, typer.Option(help="overwrite an existing --output")] = False,
) -> None:
    """Predict each row of a data file: a CSV of labels (or values), one row per input row.

    Example: deltaprop predict model.safetensors --input new.csv --append --proba > out.csv
    """
    model, loss, prep = open_model(model_path)
    if proba and prep.task == "regression":
        fail("--proba: the model is a regression model; it predicts values, not probabilities")
    destination = None
    if output is not None and str(output) != "-":  # "-" is standard output, as the default
        destination = claim_output(output, force, "--output")
    with user_input("--input"):
        table = _read_input(input_path, header, sep)
    extra = [name for name in table.names if name not in prep.columns] if table.header else []
    if extra:
        shown = ", ".join(repr(n) for n in extra[:5]) + (", ..." if len(extra) > 5 else "")
        typer.echo(f"Note: columns the model does not read: {shown}", err=True)
    with user_input():
        outputs = predict_outputs(model, loss, prep.transform(table))
    heading, rows = _predictions(prep, outputs, proba, np.finfo(model.dtype).precision + 1)
    if append:
        heading = [*table.names, *heading]
        given = [table.column(name).tolist() for name in table.names]
        rows = [
            [*(_cell(v) for v in values), *row]
            for values, row in zip(zip(*given, strict=True), rows, strict=True)
        ]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(heading)
    writer.writerows(rows)
    if destination is None:
        typer.echo(buffer.getvalue(), nl=False)
    else:
        atomic_write(destination, buffer.getvalue().encode())


def _predictions(
    prep: Any, outputs: Any, proba: bool, digits: int
) -> tuple[list[str], list[list[Any]]]:
    """The prediction columns' names and one row of them per input row; values with the
    significant ``digits`` the model computes (7 for float32, 16 for float64)."""
    if prep.task == "regression":
        values = prep.decode(outputs[:, 0] if outputs.ndim == 2 else outputs)
        return ["prediction"], [[f"{float(v):.{digits}g}"] for v in values]
    labels = prep.decode(predicted_classes(outputs))
    heading = ["prediction"] + ([f"p({c})" for c in prep.class_names] if proba else [])
    probabilities = class_probabilities(outputs)
    rows = [
        [label] + ([f"{p:.6g}" for p in row] if proba else [])
        for label, row in zip(labels.tolist(), probabilities.tolist(), strict=True)
    ]
    return heading, rows


def _cell(value: Any) -> Any:
    """An input cell as it is written back: empty for a missing value, numbers as read."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return repr(value) if isinstance(value, float) and not value.is_integer() else value


def _read_input(path: Path, header: bool | None, sep: str | None) -> Table:
    """The rows to predict: a data file, or with ``-`` a CSV read from standard input."""
    if str(path) != "-":
        return read_table(path, header=header, delimiter=sep)
    data = sys.stdin.buffer.read()
    with tempfile.TemporaryDirectory() as directory:
        rows = Path(directory) / "stdin.csv"
        rows.write_bytes(data)
        return read_table(rows, header=header, delimiter=sep)


# --- info, datasets ---------------------------------------------------------------------------


@app.command()
def info(
    path: Annotated[Path, typer.Argument(help="a deltaprop model or checkpoint file")],
    json_output: Annotated[bool, typer.Option("--json", help="print one JSON document")] = False,
) -> None:
    """Show what a deltaprop model or checkpoint file holds, without building the model.

    Example: deltaprop info model.safetensors --json
    """
    with user_input():
        described = inspect_contents(read_file(path), str(path))
    if not json_output:
        typer.echo(str(described))
        return
    prep = described.preprocessing
    echo_json(
        {
            "path": described.path,
            "kind": described.kind,
            "format_version": described.format_version,
            "library_version": described.library_version,
            "loss": described.loss,
            "parameters": described.n_parameters,
            "architecture": described.architecture,
            "tensors": {
                n: {"shape": list(s), "dtype": d} for n, (s, d) in described.tensors.items()
            },
            "epoch": described.epoch,
            "preprocessing": None if prep is None else prep.to_dict(),
        }
    )


def _describe_builtin(name: str) -> dict[str, Any]:
    """Rows, features, classes and source of a built-in set, without loading Fashion-MNIST."""
    if name == "fashion-mnist":
        try:
            paths = datasets.fashion_mnist_files()
            rows = f"{idx_shape(paths[0])[0]} + {idx_shape(paths[2])[0]} test"
            source = f"IDX files in {str(datasets.FASHION_MNIST_DIR)!r}"
        except (FileNotFoundError, ValueError):
            rows, source = "not installed", "apt-get install dataset-fashion-mnist"
        return {
            "name": name,
            "task": "classification",
            "rows": rows,
            "features": 784,
            "classes": 10,
            "source": source,
        }
    dataset = datasets.load(name)
    return {
        "name": name,
        "task": dataset.task,
        "rows": dataset.n_rows,
        "features": len(dataset.features.names),
        "classes": dataset.n_classes or None,
        "source": dataset.source,
    }


@app.command("datasets")
def datasets_command(
    json_output: Annotated[bool, typer.Option("--json", help="print one JSON document")] = False,
) -> None:
    """List the built-in data sets: task, size and source (data files work too: --data x.csv).

    Example: deltaprop datasets --json
    """
    rows = [_describe_builtin(name) for name in datasets.LOADERS]
    if json_output:
        echo_json(rows)
        return
    table = RichTable(
        title="built-in data sets (or --data FILE.csv/.tsv/.parquet/.npz --target COLUMN)",
        title_justify="left",
    )
    for heading in ("name", "task", "rows", "features", "classes", "source"):
        table.add_column(heading)
    for row in rows:
        synthetic = " (--samples, --noise)" if row["name"] in datasets.SYNTHETIC else ""
        table.add_row(
            row["name"],
            row["task"],
            str(row["rows"]),
            str(row["features"]),
            str(row["classes"] or "—"),
            row["source"] + synthetic,
        )
    Console(highlight=False, width=140).print(table)
