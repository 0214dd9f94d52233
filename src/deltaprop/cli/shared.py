"""What every ``deltaprop`` command shares: the typer app, one-line errors, names, outputs.

Bad input ends a command with exit code 2 and one plain line on stderr, ``Error: <what, and the
value>``; ``deltaprop --debug ...`` shows the traceback instead. Strings become objects here only,
through the registry.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NoReturn

import numpy as np
import typer
from typer.core import TyperGroup

from .. import registry
from ..data import catalog as datasets
from ..data.catalog import Dataset
from ..data.missing import drop_incomplete
from ..data.preprocessing import Preprocessor
from ..data.tables import Table
from ..errors import DeltapropError, ModelFileError, ShapeError
from ..files.atomic import check_writable
from ..files.format import json_value, read_file
from ..files.model_files import load_contents, preprocessor_from
from ..nn.losses import Loss
from ..nn.sequential import Sequential

# typer carries its own copy of click; its UsageError is the base of typer.BadParameter
_USAGE_ERROR: type[Exception] = next(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError"
)


@dataclass
class _State:
    debug: bool = False


STATE = _State()


class _OneLineErrors(TyperGroup):
    """Usage errors as one plain line, "Error: <what and which value>", without the usage block."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except _USAGE_ERROR as error:
            error.ctx = None  # type: ignore[attr-defined]  # no context: no usage block
            raise
        except MemoryError:
            if STATE.debug:
                raise
            fail(
                "out of memory: the data or the network asked for is larger than this machine "
                f"can hold ({available_memory() / 1e9:.1f} GB available); ask for less"
            )


app = typer.Typer(
    cls=_OneLineErrors,
    no_args_is_help=False,
    rich_markup_mode=None,  # plain click errors, one line each
    help="Train neural networks by explicit forward and back propagation.",
)


def _print_version(asked: bool) -> None:
    if asked:
        from .. import __version__

        typer.echo(f"deltaprop {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[
        bool, typer.Option("--debug", help="show the traceback of an error, not one line")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="print the version and stop"
        ),
    ] = False,
) -> None:
    """Train neural networks by explicit forward and back propagation: every gradient is the
    one the textbook derivation names, and you can look at each one."""
    STATE.debug = debug


def fail(message: str) -> NoReturn:
    """A usage error: one plain line on stderr, exit code 2."""
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(2)


def available_memory() -> int:
    """Bytes of memory this machine can still give (Linux's MemAvailable; else all of it)."""
    try:
        with open("/proc/meminfo") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_memory(what: str, nbytes: float) -> None:
    """A one-line error, before anything is allocated, when ``what`` would take ``nbytes``
    bytes and this machine has not that much available."""
    available = available_memory()
    if nbytes > available:
        fail(
            f"{what} would take {nbytes / 1e9:,.1f} GB of memory; {available / 1e9:,.1f} GB "
            "are available"
        )


def network_bytes(widths: Sequence[int], itemsize: int, copies: int = 4) -> int:
    """Memory of a network of Dense layers of these widths: its parameters ``copies`` times
    (values, gradients and an optimizer's two moments)."""
    parameters = sum((a + 1) * b for a, b in zip(widths[:-1], widths[1:], strict=False))
    return parameters * itemsize * copies


USER_ERRORS = (ValueError, TypeError, OSError, ShapeError, ModelFileError, DeltapropError)
"""What bad input raises: shown as one line (exit 2), or as a traceback with --debug."""


def _described(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror and error.filename is not None:
        return f"{error.strerror}: {str(error.filename)!r}"
    return str(error).strip("'\"") if isinstance(error, KeyError) else str(error)


@contextmanager
def user_input(what: str = "") -> Iterator[None]:
    """Turn an error raised by bad input into :func:`fail`'s one line, prefixed by ``what``."""
    try:
        yield
    except (*USER_ERRORS, KeyError) as error:
        if STATE.debug:
            raise
        fail(f"{what}{': ' if what else ''}{_described(error)}")


def lookup(table: registry.Registry[Any], name: str, option: str) -> Any:
    """``table[name]``, or a usage error that lists the known names."""
    with user_input(option):
        return table.get(name)


def parse_widths(text: str, option: str = "--hidden") -> list[int]:
    """``"64,32"`` → ``[64, 32]``; anything else is a usage error naming ``option``."""
    try:
        widths = [int(w) for w in text.split(",")]
    except ValueError:
        widths = []
    if not widths or any(w <= 0 for w in widths):
        fail(f"{option}: expected comma-separated positive integers (such as 64,32), got {text!r}")
    return widths


def _value(text: str) -> Any:
    """A NAME=VALUE value: a number, true/false, or comma-separated numbers."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if "," in text:
        return tuple(_value(part) for part in text.split(","))
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def parse_assignments(items: list[str], option: str) -> dict[str, Any]:
    """``["momentum=0.9", "betas=0.9,0.99"]`` → ``{"momentum": 0.9, "betas": (0.9, 0.99)}``."""
    out = {}
    for item in items:
        match = re.fullmatch(r"\s*([A-Za-z_]\w*)\s*=(.+)", item)
        if not match:
            fail(f"{option}: expected NAME=VALUE (such as momentum=0.9), got {item!r}")
        out[match.group(1)] = _value(match.group(2))
    return out


def claim_output(path: Path, force: bool, option: str) -> Path:
    """Check before any work that ``path`` may be written: not an existing file unless
    ``force`` (nothing the user has is overwritten unasked), in a writable directory."""
    if path.exists() and not path.is_dir() and not force:
        fail(f"{option}: {str(path)!r} exists; pass --force to overwrite it")
    with user_input(option):
        return check_writable(path)


def fresh_run_directory(name: str, root: Path = Path("deltaprop-runs")) -> Path:
    """``deltaprop-runs/<name>``, or ``<name>-2``, ``-3``, ... : a directory no run has used."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "run"
    candidate, k = root / slug, 1
    while candidate.exists():
        k += 1
        candidate = root / f"{slug}-{k}"
    return candidate


def load_data(name: str, **options: Any) -> Dataset:
    """A built-in set or a data file, as the command line names them; bad input fails in one
    line. ``options`` that are None are left to the loader's defaults."""
    given = {k: v for k, v in options.items() if v not in (None, ())}
    file = datasets.is_file_name(name)
    allowed = {"target", "task", "header", "drop", "sep"} if file else set()
    if not file:
        loader = lookup(registry.DATASETS, name, "--data")
        allowed = set(inspect.signature(loader).parameters)
    translated = {"samples": "n", "data_dir": "directory"}
    given = {translated.get(k, k): v for k, v in given.items()}
    for option in given:
        if option not in allowed:
            flag = {"n": "samples", "directory": "data-dir"}.get(option, option)
            fail(f"--{flag.replace('_', '-')} does not apply to data set {name!r}")
    with user_input("--data"):
        return datasets.load(name, **given)


def open_model(path: Path) -> tuple[Sequential, Loss, Preprocessor]:
    """A model file's network, loss and preprocessing (plain columns if it was saved without)."""
    with user_input():
        contents = read_file(path)
        loaded = load_contents(contents, str(path))
        if not isinstance(loaded, tuple):
            raise ValueError(f"{str(path)!r} holds a {type(loaded).__name__}, not a model")
        model, loss = loaded
        if loss is None:
            raise ValueError(f"{str(path)!r} was saved without a loss; it cannot predict")
        prep = preprocessor_from(contents, str(path))
    if prep is None:
        n_out = model.output_features(input_width(model))
        n_classes = (2 if n_out == 1 else n_out) if loss.task == "classification" else 0
        prep = Preprocessor.plain(input_width(model), loss.task, n_classes)
    return model, loss, prep


def rows_of(dataset: Dataset, prep: Preprocessor, split: str) -> Dataset:
    """The rows to score: ``test`` as in training, ``train``, or ``all``."""
    if split == "all":
        if dataset.test is None:
            return dataset
        both = np.concatenate([dataset.X, dataset.test.X])
        return Dataset(
            dataset.name,
            Table.from_matrix(both, dataset.features.names),
            np.concatenate([dataset.y, dataset.test.y]),
            dataset.task,
            dataset.class_names,
            dataset.source,
        )
    recorded = prep.split if prep.data in (dataset.name, dataset.path) and prep.split else {}
    train, test = dataset.split(recorded.get("test_size"), int(recorded.get("seed", 0)))
    return test if split == "test" else train


def labels_of(dataset: Dataset) -> np.ndarray:
    """The target as labels (class names) or values, for the model's own encoding."""
    if dataset.task == "classification":
        return np.array(dataset.class_names, dtype=object)[dataset.y]
    return dataset.y


def input_width(model: Sequential) -> int:
    """The model's input width (its first layer of fixed width); a one-line error without."""
    width = model.input_features()
    if width is None:
        fail(
            "the model's network has no layer of fixed input width (such as Dense), so the "
            "number of features it takes is unknown"
        )
    return width


def labelled_rows(
    name: str,
    prep: Preprocessor,
    split: str = "test",
    target: str | None = None,
    header: bool | None = None,
    data_dir: Path | None = None,
    sep: str | None = None,
    own: bool = False,
) -> tuple[Table, Any]:
    """(feature columns, target labels) of the rows to score: a built-in set's or the training
    file's ``test`` rows as in training (the split is in the model file), their ``train`` rows,
    or ``all`` the rows (any file). ``own``: ``name`` is the training file (found by
    :func:`training_data`), whatever its path now."""
    if split not in ("test", "train", "all"):
        fail(f"--split must be test, train or all, got {split!r}")
    if not datasets.is_file_name(name):
        dataset = rows_of(load_data(name, data_dir=data_dir), prep, split)
        return dataset.features, labels_of(dataset)
    column = target or prep.target or "y"
    if split != "all":
        if not (prep.split and (own or trained_on(prep, name))):
            fail(
                f"--split {split}: the model file does not record how the test rows of "
                f"{name!r} were drawn (it was trained on {prep.data!r}); score all its rows "
                "with --split all"
            )
        dataset = load_data(name, target=column, task=prep.task, header=header, sep=sep)
        if prep.split.get("missing") == "drop":
            dataset, _ = drop_incomplete(dataset)
        part = rows_of(dataset, prep, split)
        return part.features, labels_of(part)
    with user_input("--data"):
        table = datasets.read_table(name, header=header, delimiter=sep)
    if column not in table:
        fail(f"--target: {name!r} has no column {column!r}; the columns are {list(table.names)}")
    return table.without(column), table.column(column)


def trained_on(prep: Preprocessor, name: str) -> bool:
    """Whether the data file ``name`` is the one the model was trained on (by its absolute
    path; by its name for files written before the path was kept)."""
    return prep.data in (str(Path(name).resolve()), Path(name).name)


def training_data(prep: Preprocessor, model_path: Path) -> str:
    """The data the model was trained on, to evaluate on when no ``--data`` is given: a built-in
    set's name, or the training file — where it was, else beside the model file or here.

    Raises:
        typer.Exit: when the model file names no data, or the file is nowhere to be found.
    """
    if not prep.data:
        fail("--data: name the data to evaluate on (the model file does not record its own)")
    if not datasets.is_file_name(prep.data) or Path(prep.data).exists():
        return prep.data
    base = Path(prep.data).name
    for candidate in (model_path.parent / base, Path(base)):
        if candidate.exists():
            return str(candidate)
    fail(
        f"--data: the model was trained on {prep.data!r}, which is no longer there (nor beside "
        "the model file); name the data to evaluate on with --data"
    )


def metric_name(key: str, prep: Preprocessor, *, during_training: bool = False) -> str:
    """A metric's name in a table: one computed on a standardized regression target says so
    (the loss; during training the mse too), beside the test's mse, rmse and mae in the
    target's own units."""
    scaled = ("loss", "mse") if during_training else ("loss",)
    if key in scaled and prep.task == "regression" and prep.target_scale != 1.0:
        return f"{key} (standardized target)"
    return key


def echo_json(document: Any) -> None:
    """Print one JSON document on stdout (NaN as null)."""
    typer.echo(json.dumps(json_value(document, finite_only=True), indent=1, allow_nan=False))


def number(value: float, digits: int = 4) -> str:
    """A metric for a table: 4 decimals, or '—' when it is not a number."""
    if value is None or not math.isfinite(value):
        return "—"
    if abs(value) >= 10**5:
        return f"{value:.{digits}g}"
    return f"{value:.{digits}f}"
