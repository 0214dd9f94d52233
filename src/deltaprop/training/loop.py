"""Training: ``fit``, ``evaluate`` and ``predict``.

``fit`` owns the loop: one permutation of the training rows per epoch, one gather per mini-batch
into storage reused from the previous batch, forward, the fused loss delta, backward, one fused
optimizer pass. Everything optional — early stopping, progress display, checkpoints, diagnostics —
is a :class:`~deltaprop.training.callbacks.Callback`.

Thread safety: a ``fit`` call owns its model, loss, optimizer and callbacks until it returns.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Sequence
from hashlib import sha256
from typing import Any

import numpy as np

from ..backend.arrays import Array, moved_to
from ..backend.memory import reusing
from ..nn.dense_chain import threads_in_use
from ..nn.losses import Loss
from ..nn.sequential import Sequential
from ..optim.optimizer import Optimizer
from ..validation import (
    check_bool,
    check_int,
    check_number,
    check_rng,
    check_validation_data,
    prepare_weights,
)
from .compiled_epoch import COMPILING, CompiledEpochs, compiled_epochs, first_compile
from .data_parallel import DataParallel, resolve
from .evaluation import evaluate_prepared
from .inputs import (
    Batches,
    check_batch_rows,
    check_callbacks,
    check_optimizer,
    check_parts,
    prepare_data,
    validation_split_indices,
)
from .metrics import Metrics
from .progress import EpochLogger, ProgressBar
from .protocol import Callback, History, TrainingRun
from .resume import resume
from .rollback import Fallbacks, stop_on_non_finite
from .threads import Threads

# --- the loop -----------------------------------------------------------------------------


def train_step(
    model: Sequential,
    loss: Loss,
    optimizer: Optimizer,
    xb: Array,
    yb: Array,
    wb: Array | None = None,
) -> tuple[float, float, Array]:
    """One update from a prepared batch: forward, fused loss, backward, optimizer.

    Does nothing to the weights when the loss or a gradient is not finite.

    Args:
        wb: the batch's sample weights (None: every row counts once).

    Returns:
        ``(loss, grad_norm, logits)``, the loss with the model's L2 penalty; the update was
        applied only if both numbers are finite (grad_norm is NaN when the loss already was
        not).
    """
    logits = model.forward(xb, training=True)
    value = loss.forward_prepared(logits, yb, wb)
    penalty = model.penalty()
    if penalty:
        value += penalty / loss.normalizer  # the loss's normalizer divides the penalty too
    if not math.isfinite(value):
        return value, math.nan, logits
    # the seed's backward pass: Step 1 in the loss (δ = ŷ − y), Steps 2-5 layer by layer
    model.backward_params(loss.backward())
    if penalty:
        model.penalty_backward(1.0 / loss.normalizer)
    norm = optimizer.grad_norm()
    if math.isfinite(norm):
        optimizer.step(grad_norm=norm)
    return value, norm, logits


def fit(
    model: Sequential,
    loss: Loss,
    optimizer: Optimizer,
    X: Any,
    y: Any,
    *,
    epochs: int = 1,
    batch_size: int = 32,
    rng: np.random.Generator | int | None = None,
    sample_weight: Any = None,
    validation_data: tuple[Any, ...] | None = None,
    validation_split: float = 0.0,
    shuffle: bool = True,
    callbacks: Sequence[Callback] = (),
    verbose: int = 1,
    resume_from: str | os.PathLike[str] | None = None,
    engine: str = "auto",
    n_threads: int | None = None,
    distributed: Any = None,
    train_rows: Any = None,
) -> History:
    """Train ``model`` on (X, y) with mini-batches, and return the per-epoch History.

    Args:
        model: the network; its last layer emits logits for ``loss``.
        loss: a fused loss (its task decides the metrics: accuracy, or MSE / MAE / R²).
        optimizer: built on ``model.parameters()``.
        X: inputs, shape (N, in_features). Converted to the model's dtype once (no per-batch copy).
        y: targets as ``loss`` takes them, N rows.
        epochs: total number of epochs (counting those of a resumed run), >= 0.
        batch_size: rows per update, > 0 (the last batch of an epoch may be smaller).
        rng: the generator for the validation split and the per-epoch shuffles, also offered
            to layers that draw random numbers in training and have no generator of their own
            (:meth:`~deltaprop.nn.layer.Layer.offer_rng`). The same seed gives bit-identical
            weights.
        sample_weight: one weight >= 0 per row of (X, y): each batch's loss is then the
            weighted mean Σ w ℓ / Σ w (as scikit-learn's and Keras's); None: every row counts
            once.
        validation_data: ``(X_val, y_val)`` or ``(X_val, y_val, weights)`` evaluated after
            each epoch (``val_*`` metrics).
        validation_split: fraction of (X, y) held out instead, shuffled and stratified by class
            for classification. Ignored when validation_data is given.
        shuffle: draw a new permutation of the training rows each epoch.
        callbacks: :class:`Callback` objects, called in order.
        verbose: 0 silent, 1 a progress bar (on a terminal), 2 one line per epoch.
        resume_from: a checkpoint written by :class:`ModelCheckpoint`: weights, optimizer state,
            schedule position, random state, History and callbacks' state are restored and
            training continues with the next epoch, exactly as if it had never stopped.
        engine: ``"auto"`` runs each epoch as one compiled, multi-threaded function
            (:mod:`deltaprop.training.compiled_epoch`) where it can — Dense layers with ReLU or no
            activation between them, softmax cross-entropy on class labels, SGD, Adam or
            AdamW, unweighted rows, a CPU — when the run is large enough to repay compiling
            it (rows × parameters × epochs ≥ 10¹⁰), at any batch size; the reference path
            elsewhere.
            ``"compiled"`` insists (ValueError naming the reason otherwise); ``"reference"``
            never compiles. Both give the same numbers to float32 rounding.
        n_threads: threads of the compiled epoch, fixed. By default it runs on the cores that
            other processes leave free, read from the load as it trains
            (:mod:`deltaprop.training.threads`), at most Numba's count and
            ``OMP_NUM_THREADS``; the numbers are the same to the bit on any count. The
            reference path's products use OpenBLAS's own threads, held at ``n_threads`` where
            it is given (OpenBLAS's last bits depend on its count).
        distributed: train data-parallel on every rank of an MPI job
            (:mod:`deltaprop.training.data_parallel`): True for all the ranks ``mpirun``
            started, or a :class:`deltaprop.distributed.Communicator`; each rank computes its
            share of every batch, the gradients are summed, and every rank ends with the same
            weights as one process training on the whole batches (to float rounding). Run every
            rank with the same arguments; rank 0 alone prints and writes files.
        train_rows: row indices of (X, y) to train on, in this order (an epoch without
            shuffle goes through them so); the other rows are not used. A part of a large
            memory-mapped X, without copying it. Not with ``validation_split``.

    Returns:
        The History: ``history["loss"]``, ``history["accuracy"]``, ``history["val_loss"]``, ...,
        ``history["lr"]``, and ``history.stop_reason``.

    Raises:
        ValueError / TypeError: bad arguments, mismatched lengths, NaN or inf in the data, before
            any training.
    """
    epochs = check_int("epochs", epochs, 0)
    batch_size = check_int("batch_size", batch_size, 1)
    check_parts(model, loss)
    check_optimizer(model, optimizer)
    callbacks = check_callbacks(callbacks)
    check_validation_data(validation_data)
    validation_split = check_number(
        "validation_split", validation_split, low=0, high=1, high_open=True
    )
    rng = check_rng("rng", np.random.default_rng() if rng is None else rng)
    shuffle = check_bool("shuffle", shuffle)
    if check_int("verbose", verbose) not in (0, 1, 2):
        raise ValueError(f"verbose must be 0, 1 or 2, got {verbose!r}")
    X_all, y_all = prepare_data(model, loss, X, y)
    w_all = None
    if sample_weight is not None:
        w_all = prepare_weights(sample_weight, len(X_all), training=True)

    run = TrainingRun(
        model=model,
        loss=loss,
        optimizer=optimizer,
        history=History(),
        epochs=epochs,
        batch_size=batch_size,
        X=X_all,
        y=y_all,
        train_index=np.arange(len(X_all)),
        rng=rng,
        val_index=None,
        callbacks=callbacks,
        epoch=0,
        settings={
            "batch_size": batch_size,
            "validation_split": validation_split,
            "shuffle": shuffle,
            "sample_weight": None if w_all is None else sha256(w_all.tobytes()).hexdigest(),
        },
    )
    given = None if validation_data is None else _prepare_validation(run, validation_data)
    resume(run, resume_from)  # after every check of the data: a refused fit restores nothing
    if given is not None:  # validation_data replaces any split
        run.val_index = None
    if train_rows is not None:
        run.train_index = _checked_rows(train_rows, len(X_all), validation_split)
    validation = given if given is not None else _split(run, w_all, validation_split)
    parallel = resolve(distributed)
    if parallel is not None:
        parallel.check(run)
        if not parallel.comm.is_root:  # rank 0 alone prints and writes
            callbacks[:] = [c for c in callbacks if not c.root_only]
            verbose = 0
    _add_display(callbacks, verbose)
    most = threads_in_use() if n_threads is None else check_int("n_threads", n_threads, 1)
    threads = Threads(most, adaptive=n_threads is None)
    work = len(run.train_index) * sum(p.value.size for p in model.parameters()) * epochs
    data = (X_all, y_all, w_all)
    compiled = compiled_epochs(engine, model, loss, optimizer, data, batch_size, work)
    check_batch_rows(model, len(run.train_index), batch_size)
    if compiled is not None and verbose and first_compile():
        print(COMPILING, file=sys.stderr, flush=True)
    if parallel is None:
        _train(run, w_all, validation, shuffle, compiled, threads)
    else:
        with parallel.threads():
            try:
                _train(run, w_all, validation, shuffle, compiled, threads, parallel)
            except BaseException as error:  # one rank alone: end them all, none waits forever
                parallel.abort(error)
                raise
    run.history.stop_reason = run.stop_reason
    return run.history


Validation = tuple[Array, Array, Array | None] | None
"""The validation rows as ``(X_val, y_val, weights or None)``, or None for no validation."""


def _prepare_validation(run: TrainingRun, validation_data: tuple[Any, ...]) -> Validation:
    """``validation_data`` checked and converted as the training data are."""
    X_val, y_val = prepare_data(run.model, run.loss, *validation_data[:2], name="X_val")
    w_val = None
    if len(validation_data) == 3:
        w_val = prepare_weights(validation_data[2], len(X_val))
    return X_val, y_val, w_val


def _split(run: TrainingRun, w_all: Array | None, validation_split: float) -> Validation:
    """Set ``run.train_index`` and ``run.val_index`` and return the validation rows: a
    ``validation_split`` of (X, y) held out (the rows a resumed run held out before), or none."""
    if validation_split == 0:
        return None
    if run.val_index is None:
        classification = run.loss.task == "classification"
        run.train_index, run.val_index = validation_split_indices(
            run.y, validation_split, classification, run.rng
        )
    else:
        run.train_index = np.setdiff1d(np.arange(len(run.X)), run.val_index, assume_unique=True)
    w_val = None if w_all is None else w_all[run.val_index]
    return run.X[run.val_index], run.y[run.val_index], w_val


def _checked_rows(rows: Any, n: int, validation_split: float) -> Array:
    """``train_rows`` as int64 indices into the n rows, each used once.

    Raises:
        ValueError / TypeError: for indices outside [0, n), repeated, not whole numbers, or
            beside a ``validation_split``.
    """
    if validation_split:
        raise ValueError("train_rows and validation_split cannot both be given")
    index = np.asarray(rows)
    if index.ndim != 1 or index.dtype.kind not in "iu" or len(index) == 0:
        raise TypeError(
            f"train_rows must be a 1-D array of row indices, got {index.dtype} {index.shape}"
        )
    if index.min() < 0 or index.max() >= n or len(np.unique(index)) != len(index):
        raise ValueError(
            f"train_rows must be distinct indices in [0, {n}), got {index.min()} to {index.max()}"
        )
    return index.astype(np.int64)


def _add_display(callbacks: list[Callback], verbose: int) -> None:
    """A progress bar (``verbose=1``) or a line per epoch (``2``), unless one is there."""
    if verbose == 1 and not any(isinstance(c, ProgressBar) for c in callbacks):
        callbacks.append(ProgressBar())
    elif verbose == 2 and not any(isinstance(c, EpochLogger) for c in callbacks):
        callbacks.append(EpochLogger())


def _train(
    run: TrainingRun,
    w_all: Array | None,
    validation: Validation,
    shuffle: bool,
    compiled: CompiledEpochs | None,
    threads: Threads,
    parallel: DataParallel | None = None,
) -> None:
    """The loop: epoch after epoch (``compiled``, or the reference path where it is None), the
    callbacks told at each turn, the validation rows evaluated, and a roll-back to finite
    weights if the loss or a gradient blows up."""
    model, loss, history = run.model, run.loss, run.history
    # on a GPU, the data are copied there once, here; the host's copies serve the checks
    here = model.flat_values
    w_here = None if w_all is None else moved_to(w_all, here)
    batches = Batches(moved_to(run.X, here), moved_to(run.y, here), w_here)
    if validation is not None:
        X_val, y_val, w_val = validation
        X_val, y_val = moved_to(X_val, here), moved_to(y_val, here)
        w_val = None if w_val is None else moved_to(w_val, here)
    # validation rows scored on the fit's own path: compiled after a compiled epoch (OpenBLAS's
    # threads, woken by a product, spin ~0.1 s after it, on the cores the next epoch needs)
    scoring: dict[str, Any] = {"prefix": "val_", "engine": "compiled" if compiled else "reference"}
    fallbacks = Fallbacks(model, run.epoch)  # weights to roll back to after a blow-up
    train_index = run.train_index
    y_train_reference = run.y if len(train_index) == len(run.y) else run.y[train_index]

    for callback in run.callbacks:
        callback.on_train_begin(run)
    try:
        with reusing(*model.workspaces(), loss.workspace), threads.fixed_blas():
            for epoch in range(run.epoch, run.epochs):
                run.epoch = epoch
                for callback in run.callbacks:
                    callback.on_epoch_begin(run, epoch)
                started = time.perf_counter()
                order = run.rng.permutation(train_index) if shuffle else train_index
                metrics = Metrics(loss, y_train_reference)
                lr = run.optimizer.current_lr()
                if parallel is not None and compiled is not None:
                    stopped = parallel.train_compiled_epoch(
                        run, order, metrics, compiled, threads.most
                    )
                elif parallel is not None:
                    stopped = parallel.train_epoch(run, order, metrics, batches)
                elif compiled is None:
                    stopped = _reference_epoch(run, order, metrics, batches)
                else:
                    stopped = compiled.train_epoch(run, order, metrics, threads)
                if stopped is not None:
                    value, norm, batch = stopped
                    check = (run.X, run.y, train_index)
                    stop_on_non_finite(run, value, norm, epoch, batch, fallbacks, check)
                    history.diverged = True
                    break
                logs = metrics.result()
                if parallel is not None and validation is not None:
                    logs.update(parallel.validate(model, loss, X_val, y_val, w_val))
                elif validation is not None:
                    logs.update(evaluate_prepared(model, loss, X_val, y_val, w_val, **scoring))
                logs["lr"] = lr
                logs["epoch_time"] = time.perf_counter() - started
                for callback in run.callbacks:
                    callback.on_epoch_end(run, epoch, logs)
                history.append(logs)
                fallbacks.record(epoch + 1)
                run.epoch = epoch + 1
                for callback in run.callbacks:
                    callback.on_epoch_recorded(run)
                if run.stop_training:
                    break
    finally:
        for callback in run.callbacks:
            callback.on_train_end(run)


def _reference_epoch(
    run: TrainingRun, order: Array, metrics: Metrics, batches: Batches
) -> tuple[float, float, int] | None:
    """The readable path: one :func:`train_step` per batch, the seed's steps layer by layer.
    Returns (loss, gradient norm, batch) at a non-finite loss or gradient, else None."""
    order = moved_to(order, batches.X)  # the row numbers, on the data's device
    for batch, start in enumerate(range(0, len(order), run.batch_size)):
        xb, yb, wb = batches.gather(order[start : start + run.batch_size])
        value, norm, logits = train_step(run.model, run.loss, run.optimizer, xb, yb, wb)
        if not (math.isfinite(value) and math.isfinite(norm)):
            return value, norm, batch
        metrics.update(logits, yb, value, run.loss.normalizer)
        for callback in run.callbacks:
            callback.on_batch_end(run, batch, value)
    return None
