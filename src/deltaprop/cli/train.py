"""``deltaprop train``: data in; a model file, a summary, and plots out."""

from __future__ import annotations

import inspect
import math
import time
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from .. import registry
from ..data import catalog as datasets
from ..data.catalog import Dataset
from ..data.missing import STRATEGIES
from ..training import pipeline
from ..training.callbacks import Diagnostics, EarlyStopping
from ..training.loop import fit
from ..training.protocol import Callback
from ..training.scoring import score
from ..training.tensorboard import TensorBoard
from . import outcome
from .inputs import mpi_world, stream_notes, streamed
from .outputs import outputs, removed_unless_written
from .report import (
    TrainingReport,
    identifier_notes,
    print_summary,
    save_or_keep,
    to_json,
    write_plots,
)
from .shared import (
    app,
    check_memory,
    echo_json,
    fail,
    load_data,
    lookup,
    network_bytes,
    parse_assignments,
    parse_widths,
    user_input,
)


@app.command()
def train(
    data: Annotated[
        str,
        typer.Option(
            "--data",
            "--dataset",
            "-d",
            help="a built-in set (deltaprop datasets lists them) or a .csv, .tsv, .parquet or "
            ".npz file",
        ),
    ] = "breast-cancer",
    target: Annotated[
        str | None, typer.Option(help="the target column of a data file (default: y)")
    ] = None,
    target_file: Annotated[
        Path | None,
        typer.Option(
            help="with --data X.npy: the targets, one per row, in another .npy file; X is "
            "memory-mapped and streamed, never loaded whole"
        ),
    ] = None,
    task: Annotated[
        str | None, typer.Option(help="auto, classification or regression (data files)")
    ] = None,
    drop: Annotated[
        list[str] | None, typer.Option(help="leave this column of a data file out (repeatable)")
    ] = None,
    header: Annotated[
        bool | None,
        typer.Option("--header/--no-header", help="whether a CSV's first row names the columns"),
    ] = None,
    sep: Annotated[
        str | None,
        typer.Option(help="a CSV's field separator [default: ; or , as its first line shows]"),
    ] = None,
    missing: Annotated[
        str,
        typer.Option(
            help="missing cells: refuse, drop (the rows), or impute (training column means, "
            "most frequent category for text; kept in the model file for predict)"
        ),
    ] = "refuse",
    data_dir: Annotated[
        Path | None, typer.Option(help="the directory of Fashion-MNIST's IDX files")
    ] = None,
    samples: Annotated[int | None, typer.Option(min=4, help="rows of a synthetic set")] = None,
    noise: Annotated[float | None, typer.Option(min=0, help="noise of a synthetic set")] = None,
    standardize: Annotated[
        bool | None,
        typer.Option(
            "--standardize/--no-standardize",
            help="scale numeric columns (and a regression target) to mean 0, std 1 on the "
            "training rows [default: on for files; for built-in sets, as each recommends]",
        ),
    ] = None,
    test_size: Annotated[
        float | None,
        typer.Option(
            help="fraction of rows held out for the test [default: the set's own test "
            "split, else 0.25]"
        ),
    ] = None,
    val_split: Annotated[
        float, typer.Option(help="fraction of the training rows held out for validation")
    ] = 0.1,
    hidden: Annotated[str, typer.Option(help="hidden layer widths, comma-separated")] = "16",
    activation: Annotated[
        str, typer.Option(help=f"hidden activation: {registry.ACTIVATIONS.names()}")
    ] = "relu",
    loss_name: Annotated[
        str | None,
        typer.Option("--loss", help="bce, softmax-ce, mse, poisson [default: by the task]"),
    ] = None,
    init: Annotated[
        str, typer.Option(help=f"weight init: auto, {registry.INITIALIZERS.names()}")
    ] = "auto",
    dropout: Annotated[
        float, typer.Option(min=0, max=0.99, help="dropout rate after each hidden layer")
    ] = 0.0,
    l2: Annotated[float, typer.Option(min=0, help="L2 penalty ½λ‖W‖² per Dense layer")] = 0.0,
    optimizer: Annotated[str, typer.Option(help=f"one of {registry.OPTIMIZERS.names()}")] = "adam",
    lr: Annotated[float, typer.Option(help="learning rate, > 0")] = 1e-3,
    momentum: Annotated[float | None, typer.Option(help="SGD's or RMSprop's momentum")] = None,
    weight_decay: Annotated[float | None, typer.Option(help="the optimizer's weight decay")] = None,
    opt: Annotated[
        list[str] | None,
        typer.Option(help="another optimizer argument, NAME=VALUE (betas=0.9,0.99; nesterov=true)"),
    ] = None,
    schedule: Annotated[
        str,
        typer.Option(
            help="learning-rate schedule: cosine (from --lr down to 0 over the epochs), "
            "constant, step, exponential, inverse-scaling"
        ),
    ] = "cosine",
    schedule_arg: Annotated[
        list[str] | None,
        typer.Option(
            help="a schedule argument, NAME=VALUE (step_size=10, gamma=0.5, warmup_steps=100)"
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="rows per update")] = 32,
    epochs: Annotated[int, typer.Option(min=0, help="passes over the training rows")] = 50,
    patience: Annotated[
        int, typer.Option(min=0, help="early stopping: epochs without improvement (0: off)")
    ] = 5,
    dtype: Annotated[str, typer.Option(help="float32 or float64")] = "float32",
    device: Annotated[
        str,
        typer.Option(
            help="where to train: cpu, or cuda / cuda:N for an NVIDIA GPU through CuPy "
            "(pip install 'deltaprop[cuda12]')"
        ),
    ] = "cpu",
    seed: Annotated[int, typer.Option(min=0, max=2**32 - 1, help="seed of every random draw")] = 0,
    threads: Annotated[
        int | None, typer.Option(min=1, help="threads, fixed (BLAS's too) [default: by the load]")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "--save",
            "-o",
            help="the model file [default: deltaprop-runs/<data>/model.safetensors]",
        ),
    ] = None,
    plots_dir: Annotated[
        Path | None,
        typer.Option(
            "--plots",
            help="write the plots into this directory [default: beside the "
            "model in deltaprop-runs/; none with --out]",
        ),
    ] = None,
    no_plots: Annotated[bool, typer.Option("--no-plots", help="write no plots")] = False,
    tensorboard: Annotated[
        Path | None,
        typer.Option(
            help="write TensorBoard event files here (pip install 'deltaprop[tensorboard]')"
        ),
    ] = None,
    force: Annotated[bool, typer.Option(help="overwrite existing files")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="print one JSON document")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="print only errors")] = False,
    verbose: Annotated[
        int, typer.Option(min=0, max=2, help="0 silent, 1 a progress bar, 2 a line per epoch")
    ] = 1,
) -> None:
    """Train an MLP on a data set: a summary table, the model file (with its preprocessing)
    and plots; the split used is stated.

    Example: deltaprop train --data houses.csv --target price --hidden 64,32 --epochs 100
    """
    _check_numbers(lr, dtype, test_size, val_split)
    if missing not in STRATEGIES:
        fail(f"--missing must be one of {', '.join(STRATEGIES)}, got {missing!r}")
    hidden_widths = parse_widths(hidden)
    optimizer_class = lookup(registry.OPTIMIZERS, optimizer, "--optimizer")
    schedule_class = lookup(registry.SCHEDULES, schedule, "--schedule")
    if samples is not None:  # a synthetic set's rows: two features, copied a few times
        check_memory(f"--samples {samples}", samples * 2 * 8 * 6)
    created: list[Path] = []
    world = mpi_world()
    if world is not None and not world.is_root:  # rank 0 alone prints and writes
        quiet, json_output, model_path, plot_dir = True, False, None, None
    else:
        model_path, plot_dir = outputs(data, out, plots_dir, no_plots, force, created)
    with removed_unless_written(created):
        dataset = (
            streamed(data, target_file, task)
            if target_file
            else load_data(
                data,
                target=target,
                task=task,
                drop=tuple(drop or ()),
                header=header,
                data_dir=data_dir,
                samples=samples,
                noise=noise,
                sep=sep,
            )
        )
        with user_input("--data"):
            prepared = pipeline.prepare(
                dataset,
                test_size=test_size,
                seed=seed,
                standardize=standardize,
                target=target or ("y" if datasets.is_file_name(data) else None),
                record_split=True,
                missing=missing,
            )
        with user_input("--loss"):
            loss = pipeline.choose_loss(loss_name, prepared.prep)
        rng = np.random.default_rng(seed)
        lookup(registry.ACTIVATIONS, activation, "--activation")
        widths = pipeline.widths(prepared.prep, loss, hidden_widths)
        check_memory(f"--hidden {hidden}", network_bytes(widths, np.dtype(dtype).itemsize))
        with user_input("--init"):
            model = pipeline.build_mlp(
                prepared.prep,
                loss,
                hidden_widths,
                rng=rng,
                activation=activation,
                init=init,
                dropout=dropout,
                l2=l2,
                dtype=np.dtype(dtype),
            )
        with user_input("--device"):
            model.to(device)
        steps = epochs * math.ceil(len(prepared.X_train) * (1 - val_split) / batch_size)
        rate = _schedule(schedule_class, lr, schedule_arg or [], max(steps, 1))
        kwargs = _optimizer_arguments(opt, momentum, weight_decay)
        with user_input("--optimizer"):
            opt_object = pipeline.build_optimizer(optimizer_class, model, rate, **kwargs)
        callbacks: list[Callback] = []
        early = None
        if patience > 0:
            monitor = "val_loss" if val_split > 0 else "loss"
            early = EarlyStopping(monitor, patience=patience, restore_best_weights=True)
            callbacks.append(early)
        if plot_dir is not None:
            callbacks.append(Diagnostics())
        if tensorboard is not None:
            try:
                callbacks.append(TensorBoard(tensorboard))
            except ImportError as error:
                fail(f"--tensorboard: {error}")
        interruption = outcome.Interruption(early)
        callbacks.append(interruption)
        notes = outcome.lr_notes(lr, type(opt_object).__name__)
        if not (quiet or json_output):
            for note in notes:
                typer.echo(f"note: {note}", err=True)
        started = time.perf_counter()
        try:
            with user_input(), outcome.caught_warnings(quiet or json_output):
                history = fit(
                    model,
                    loss,
                    opt_object,
                    prepared.X_train,
                    prepared.y_train,
                    epochs=epochs,
                    batch_size=batch_size,
                    rng=rng,
                    validation_split=val_split,
                    callbacks=callbacks,
                    verbose=0 if quiet or json_output else verbose,
                    distributed=world,
                    n_threads=threads,
                )
        except KeyboardInterrupt:
            outcome.save_interrupted(interruption, model, loss, prepared.prep, model_path)
        seconds = time.perf_counter() - started
        if world is not None:
            notes.append(f"trained data-parallel on {world.size} MPI ranks")
        with user_input(), outcome.caught_warnings(quiet or json_output):
            scores = score(model, loss, prepared.prep, prepared.X_test, prepared.y_test)
        run = TrainingReport(
            dataset,
            prepared.train,
            prepared.test,
            _test_from(dataset, test_size, seed),
            prepared.prep,
            model,
            loss,
            _describe_optimizer(opt_object, kwargs, lr, rate),
            history,
            scores,
            seconds,
            round(val_split * len(prepared.X_train)) if val_split > 0 else 0,
            notes=[*notes, *stream_notes(dataset, prepared), *identifier_notes(dataset)]
            + prepared.notes,
            dropped=tuple(drop or ()),
        )
        failed = outcome.diverged(history, scores)
        if not failed:
            run.notes += outcome.quality_notes(
                history, scores, prepared.test, prepared.prep, prepared.train
            )
        if model_path is not None and not (failed and not history.kept_epochs):
            run.model_path = save_or_keep(model, loss, prepared.prep, model_path)
        if plot_dir is not None:
            run.plots = write_plots(run, prepared.X_test, plot_dir)
        if json_output:
            echo_json(to_json(run))
        elif not quiet:
            print_summary(run)
        if failed:
            saved = None if run.model_path is None else str(run.model_path)
            typer.echo(f"Error: {outcome.diverged_message(history, lr, saved)}", err=True)
            raise typer.Exit(1)


def _check_numbers(lr: float, dtype: str, test_size: float | None, val_split: float) -> None:
    """The options typer cannot check by their type alone, before any work is done."""
    if not (math.isfinite(lr) and lr > 0):
        fail(f"--lr must be > 0, got {lr}")
    if dtype not in ("float32", "float64"):
        fail(f"--dtype must be float32 or float64, got {dtype!r}")
    for name, value in (("--test-size", test_size), ("--val-split", val_split)):
        if value is not None and not (0 <= value < 1 and (value > 0 or name == "--val-split")):
            fail(f"{name} must be in {'[0' if name == '--val-split' else '(0'}, 1), got {value}")


def _test_from(dataset: Dataset, test_size: float | None, seed: int) -> str:
    """Where the test rows came from, as the summary says it."""
    if dataset.test is not None and test_size is None:
        return f"{dataset.name}'s own test split"
    if dataset.streamed:
        return f"the last {test_size or 0.25:.0%} of the rows, a slice of the file"
    stratified = " stratified by class," if dataset.task == "classification" else ""
    return f"{test_size or 0.25:.0%} of the rows,{stratified} drawn with seed {seed}"


def _optimizer_arguments(
    opt: list[str] | None, momentum: float | None, weight_decay: float | None
) -> dict[str, Any]:
    """``--opt NAME=VALUE`` pairs, with ``--momentum`` and ``--weight-decay`` where given."""
    kwargs = parse_assignments(opt or [], "--opt")
    given = (("momentum", momentum), ("weight_decay", weight_decay))
    kwargs.update({k: v for k, v in given if v is not None})
    return kwargs


def _schedule(schedule_class: type, lr: float, args: list[str], steps: int) -> Any:
    """A float for the constant rate, else the schedule (cosine decays over the whole run)."""
    kwargs = parse_assignments(args, "--schedule-arg")
    if schedule_class is registry.SCHEDULES.get("Constant") and not kwargs:
        return lr
    if "total_steps" in inspect.signature(schedule_class).parameters:
        kwargs.setdefault("total_steps", steps)
    with user_input("--schedule"):
        return schedule_class(lr, **kwargs)


def _describe_optimizer(opt: Any, given: dict[str, Any], lr: float, rate: Any) -> str:
    """``Adam, lr 0.001, cosine decay over 900 steps`` with the arguments the user gave."""
    parts = [type(opt).__name__, f"lr {lr}"]
    parts += [f"{k} {v}" for k, v in given.items()]
    if not isinstance(rate, float):
        config = {k: v for k, v in rate.config().items() if k != "lr"}
        shown = ", ".join(f"{k}={v}" for k, v in config.items())
        parts.append(f"schedule {type(rate).__name__}({shown})")
    return ", ".join(parts)
