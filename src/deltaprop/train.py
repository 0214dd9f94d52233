"""Training: ``fit``, ``evaluate``, ``predict``, the History and the callbacks.

``fit`` owns the loop: one permutation of the training rows per epoch, one gather per mini-batch
into storage reused from the previous batch, forward, the fused loss delta, backward, one fused
optimizer pass. Everything optional — early stopping, progress display, checkpoints, diagnostics —
is a :class:`Callback`.
"""

from __future__ import annotations

import csv
import math
import os
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from . import io
from .activations import GELU, LeakyReLU, ReLU, Softplus
from .backend import Array, as_float_array
from .core import ShapeError, reusing
from .losses import Loss
from .model import Sequential
from .optimizers import Optimizer

# --- History ------------------------------------------------------------------------------


class History(dict[str, list[float]]):
    """Metric name → one value per epoch (``history["loss"]``, ``history["val_accuracy"]``).

    Attributes:
        stop_reason: why training ended before ``epochs`` (early stopping, a non-finite loss),
            or None when it ran to the end.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stop_reason: str | None = None

    @property
    def epochs(self) -> int:
        """Number of epochs recorded."""
        return len(self.get("loss", []))

    def append(self, logs: dict[str, float]) -> None:
        """Record one epoch's logs; a metric first seen late is padded with NaN before it."""
        done = self.epochs
        for key, value in logs.items():
            self.setdefault(key, [math.nan] * done).append(float(value))
        for values in self.values():
            if len(values) < done + 1:
                values.append(math.nan)


# --- the state a callback sees ----------------------------------------------------------------


@dataclass
class TrainingRun:
    """What callbacks see of a running ``fit``.

    Set ``stop_training = True`` (and ``stop_reason``) to end training after the current epoch.
    """

    model: Sequential
    loss: Loss
    optimizer: Optimizer
    history: History
    epochs: int
    batch_size: int
    X: Array
    train_index: Array
    rng: np.random.Generator
    val_index: Array | None = None  # rows held out by validation_split (kept in checkpoints)
    callbacks: list[Callback] = field(default_factory=list)
    epoch: int = 0
    stop_training: bool = False
    stop_reason: str | None = None

    def stop(self, reason: str) -> None:
        self.stop_training = True
        self.stop_reason = reason


class Callback:
    """Hooks into ``fit``; every hook is optional.

    Callbacks with state that must survive a resume implement :meth:`state_dict` (JSON-able
    values and NumPy arrays) and :meth:`load_state_dict`.
    """

    def on_train_begin(self, run: TrainingRun) -> None: ...

    def on_epoch_begin(self, run: TrainingRun, epoch: int) -> None: ...

    def on_batch_end(self, run: TrainingRun, batch: int, loss: float) -> None: ...

    def on_epoch_end(self, run: TrainingRun, epoch: int, logs: dict[str, float]) -> None:
        """``logs`` holds this epoch's metrics; a callback may add its own keys."""

    def after_epoch(self, run: TrainingRun) -> None:
        """Called once the epoch's logs are in the History and every callback has seen them."""

    def on_train_end(self, run: TrainingRun) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


# --- metrics ------------------------------------------------------------------------------


class _Metrics:
    """Running metrics over batches: accuracy for classification; MSE, MAE, R² for regression.

    ``y_reference`` gives R² its baseline: the variance of the targets being scored.
    """

    def __init__(self, loss: Loss, y_reference: Array) -> None:
        self.loss = loss
        self.classification = loss.task == "classification"
        self.loss_sum = 0.0
        self.count = 0
        self.correct = 0
        self.sq = 0.0
        self.abs = 0.0
        self.n_outputs = 1 if y_reference.ndim == 1 else y_reference.shape[1]
        self.variance_per_row = 0.0
        if not self.classification:
            centered = y_reference - y_reference.mean(axis=0)
            self.variance_per_row = float(np.sum(centered * centered)) / len(y_reference)

    def update(self, logits: Array, y: Array, batch_loss: float) -> None:
        n = logits.shape[0]
        self.loss_sum += batch_loss * n
        self.count += n
        if self.classification:
            self.correct += self.loss.n_correct(logits, y)
        else:
            residual = logits - y
            self.sq += float(np.sum(residual * residual))
            self.abs += float(np.sum(np.abs(residual)))

    def result(self, prefix: str = "") -> dict[str, float]:
        if self.count == 0:
            return {}
        logs = {prefix + "loss": self.loss_sum / self.count}
        if self.classification:
            logs[prefix + "accuracy"] = self.correct / self.count
        else:
            elements = self.count * self.n_outputs
            logs[prefix + "mse"] = self.sq / elements
            logs[prefix + "mae"] = self.abs / elements
            total = self.variance_per_row * self.count
            logs[prefix + "r2"] = 1.0 - self.sq / total if total > 0 else math.nan
        return logs


def _true_labels(y: Array) -> Array:
    if y.ndim == 1:
        return y
    if y.shape[1] == 1:
        return (y[:, 0] > 0.5).astype(np.intp)
    return np.argmax(y, axis=1)


# --- validation of user input -------------------------------------------------------------


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _check_finite_rows(name: str, array: Array) -> None:
    if array.dtype.kind != "f" or array.size == 0:
        return
    rows = array.reshape(len(array), -1)
    # rows @ 0 is 0 for a finite row and NaN for a row holding NaN or inf (0 · inf = NaN): one
    # BLAS pass over the data, with no mask the data's size
    with np.errstate(invalid="ignore"):
        flags = rows @ np.zeros(rows.shape[1], rows.dtype)  # (N,)
    if not np.isnan(flags).any():
        return
    finite = np.isfinite(rows)
    bad_rows = ~finite.all(axis=1)
    raise ValueError(
        f"{name} contains {int((~finite).sum())} NaN or inf values in "
        f"{int(bad_rows.sum())} rows (first in row {int(np.argmax(bad_rows))})"
    )


def _prepare_data(
    model: Sequential, loss: Loss, X: Any, y: Any, *, name: str = "X"
) -> tuple[Array, Array]:
    X_arr = as_float_array(X, model.dtype, name=name)
    y_raw = np.asarray(y)
    y_name = "y" if name == "X" else name.replace("X", "y")
    if X_arr.ndim != 2:
        raise ShapeError(f"{name} must be 2-D (n_samples, n_features), got shape {X_arr.shape}")
    if y_raw.ndim == 0:
        raise ShapeError(f"{y_name} must have one row per sample, got a scalar")
    if len(X_arr) != len(y_raw):
        raise ValueError(
            f"{name} and {y_name} have different lengths: {len(X_arr)} rows in {name} "
            f"(shape {X_arr.shape}), {len(y_raw)} in {y_name} (shape {y_raw.shape})"
        )
    if len(X_arr) == 0:
        raise ValueError(f"{name} is empty: need at least one sample, got shape {X_arr.shape}")
    if X_arr.shape[1] != model.in_features:
        raise ShapeError(
            f"{name} has {X_arr.shape[1]} features (shape {X_arr.shape}), "
            f"but the model's first Dense layer expects {model.in_features}"
        )
    _check_finite_rows(name, X_arr)
    if y_raw.dtype.kind in "fc":
        _check_finite_rows(y_name, y_raw)
    y_prepared = loss.prepare_targets(y_raw, model.out_features or 1)
    if y_prepared.dtype.kind == "f":
        y_prepared = np.ascontiguousarray(y_prepared, dtype=model.dtype)
    return X_arr, y_prepared


def _split(
    y: Array, fraction: float, classification: bool, rng: np.random.Generator
) -> tuple[Array, Array]:
    """Shuffled train/validation split of row indices, stratified by class for classification."""
    n = len(y)
    if classification:
        labels = _true_labels(y)
        val_parts = []
        for label in np.unique(labels):
            members = rng.permutation(np.flatnonzero(labels == label))
            val_parts.append(members[: int(round(fraction * len(members)))])
        val = np.sort(np.concatenate(val_parts))
    else:
        val = np.sort(rng.permutation(n)[: int(round(fraction * n))])
    train = np.setdiff1d(np.arange(n), val, assume_unique=True)
    if len(val) == 0 or len(train) == 0:
        raise ValueError(
            f"validation_split={fraction} leaves {len(train)} training and {len(val)} validation "
            f"samples out of {n}; both must be non-empty"
        )
    return train, val


# --- the loop -----------------------------------------------------------------------------


class _Batches:
    """Mini-batches gathered from a per-epoch permutation into reused storage."""

    def __init__(self, X: Array, y: Array) -> None:
        self.X, self.y = X, y
        self._storage: dict[int, tuple[Array, Array]] = {}

    def gather(self, index: Array) -> tuple[Array, Array]:
        n = len(index)
        storage = self._storage.get(n)
        if storage is None:
            storage = (
                np.empty((n, *self.X.shape[1:]), self.X.dtype),
                np.empty((n, *self.y.shape[1:]), self.y.dtype),
            )
            self._storage[n] = storage
        xb, yb = storage
        # mode="clip" skips numpy's bounds-checked (buffered) path; the indices are our own
        # permutation of valid rows, so nothing is ever clipped
        np.take(self.X, index, axis=0, out=xb, mode="clip")
        np.take(self.y, index, axis=0, out=yb, mode="clip")
        return xb, yb


def train_step(
    model: Sequential, loss: Loss, optimizer: Optimizer, xb: Array, yb: Array
) -> tuple[float, float, Array]:
    """One update from a prepared batch: forward, fused loss, backward, optimizer.

    Does nothing to the weights when the loss or a gradient is not finite.

    Returns:
        ``(loss, grad_norm, logits)``; the update was applied only if both numbers are finite
        (grad_norm is NaN when the loss already was not).
    """
    logits = model.forward(xb, training=True)
    value = loss.forward_prepared(logits, yb)
    if not math.isfinite(value):
        return value, math.nan, logits
    model.backward_params(loss.backward())
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
    rng: np.random.Generator | None = None,
    validation_data: tuple[Any, Any] | None = None,
    validation_split: float = 0.0,
    shuffle: bool = True,
    callbacks: Sequence[Callback] = (),
    verbose: int = 1,
    resume_from: str | os.PathLike[str] | None = None,
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
        rng: the generator for the validation split and the per-epoch shuffles. The same seed
            gives bit-identical weights.
        validation_data: ``(X_val, y_val)`` evaluated after each epoch (``val_*`` metrics).
        validation_split: fraction of (X, y) held out instead, shuffled and stratified by class
            for classification. Ignored when validation_data is given.
        shuffle: draw a new permutation of the training rows each epoch.
        callbacks: :class:`Callback` objects, called in order.
        verbose: 0 silent, 1 a progress bar (on a terminal), 2 one line per epoch.
        resume_from: a checkpoint written by :class:`ModelCheckpoint`: weights, optimizer state,
            schedule position, random state, History and callbacks' state are restored and
            training continues with the next epoch, exactly as if it had never stopped.

    Returns:
        The History: ``history["loss"]``, ``history["accuracy"]``, ``history["val_loss"]``, ...,
        ``history["lr"]``, and ``history.stop_reason``.

    Raises:
        ValueError / TypeError: bad arguments, mismatched lengths, NaN or inf in the data, before
            any training.
    """
    epochs = _check_int("epochs", epochs, 0)
    batch_size = _check_int("batch_size", batch_size, 1)
    if not isinstance(model, Sequential):
        raise TypeError(f"model must be a Sequential, got {type(model).__name__}")
    if not 0.0 <= float(validation_split) < 1.0:
        raise ValueError(f"validation_split must be in [0, 1), got {validation_split}")
    if rng is None:
        rng = np.random.default_rng()
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if verbose not in (0, 1, 2):
        raise ValueError(f"verbose must be 0, 1 or 2, got {verbose!r}")
    X_all, y_all = _prepare_data(model, loss, X, y)
    classification = loss.task == "classification"

    history = History()
    start_epoch = 0
    val_index: Array | None = None
    callbacks = list(callbacks)
    if resume_from is not None:
        state = io.load_checkpoint(resume_from, model, optimizer, loss=loss)
        rng.bit_generator.state = state.rng_state
        history = History(state.history)
        start_epoch = state.epoch
        val_index = state.val_index
        _restore_callbacks(callbacks, state.callbacks)

    X_val: Array | None
    y_val: Array | None
    if validation_data is not None:
        X_val, y_val = _prepare_data(model, loss, *validation_data, name="X_val")
        train_index = np.arange(len(X_all))
        val_index = None
    elif validation_split > 0:
        if val_index is None:
            train_index, val_index = _split(y_all, validation_split, classification, rng)
        else:
            train_index = np.setdiff1d(np.arange(len(X_all)), val_index, assume_unique=True)
        X_val, y_val = X_all[val_index], y_all[val_index]
    else:
        train_index = np.arange(len(X_all))
        X_val = y_val = None

    if verbose == 1 and not any(isinstance(c, ProgressBar) for c in callbacks):
        callbacks.append(ProgressBar())
    elif verbose == 2 and not any(isinstance(c, EpochLogger) for c in callbacks):
        callbacks.append(EpochLogger())

    run = TrainingRun(
        model=model,
        loss=loss,
        optimizer=optimizer,
        history=history,
        epochs=epochs,
        batch_size=batch_size,
        X=X_all,
        train_index=train_index,
        rng=rng,
        val_index=val_index,
        callbacks=callbacks,
        epoch=start_epoch,
    )
    batches = _Batches(X_all, y_all)
    last_finite = model.flat_values.copy()  # the weights to fall back on after a blow-up
    last_finite_epoch = start_epoch  # ... and the number of epochs they had trained
    n_train = len(train_index)
    y_train_reference = y_all if len(train_index) == len(y_all) else y_all[train_index]
    blew_up = False

    for callback in callbacks:
        callback.on_train_begin(run)
    try:
        with reusing(*model.workspaces(), loss.workspace):
            for epoch in range(start_epoch, epochs):
                run.epoch = epoch
                for callback in callbacks:
                    callback.on_epoch_begin(run, epoch)
                started = time.perf_counter()
                order = rng.permutation(train_index) if shuffle else train_index
                metrics = _Metrics(loss, y_train_reference)
                lr = optimizer.current_lr()
                for batch, start in enumerate(range(0, n_train, batch_size)):
                    xb, yb = batches.gather(order[start : start + batch_size])
                    value, norm, logits = train_step(model, loss, optimizer, xb, yb)
                    if not (math.isfinite(value) and math.isfinite(norm)):
                        _stop_on_non_finite(
                            run, value, norm, epoch, batch, last_finite, last_finite_epoch
                        )
                        blew_up = True
                        break
                    metrics.update(logits, yb, value)
                    for callback in callbacks:
                        callback.on_batch_end(run, batch, value)
                if blew_up:
                    break
                logs = metrics.result()
                if X_val is not None and y_val is not None:
                    logs.update(_evaluate_prepared(model, loss, X_val, y_val, prefix="val_"))
                logs["lr"] = lr
                logs["epoch_time"] = time.perf_counter() - started
                for callback in callbacks:
                    callback.on_epoch_end(run, epoch, logs)
                history.append(logs)
                np.copyto(last_finite, model.flat_values)
                last_finite_epoch = epoch + 1
                run.epoch = epoch + 1
                for callback in callbacks:
                    callback.after_epoch(run)
                if run.stop_training:
                    break
    finally:
        for callback in callbacks:
            callback.on_train_end(run)
    history.stop_reason = run.stop_reason
    return history


def _restore_callbacks(callbacks: list[Callback], saved: list[tuple[str, dict[str, Any]]]) -> None:
    """Give each callback the state saved for the callback of the same class, in order."""
    remaining = list(saved)
    for callback in callbacks:
        name = type(callback).__name__
        for i, (saved_name, state) in enumerate(remaining):
            if saved_name == name:
                if state:
                    callback.load_state_dict(state)
                del remaining[i]
                break


def _stop_on_non_finite(
    run: TrainingRun,
    value: float,
    norm: float,
    epoch: int,
    batch: int,
    last_finite: Array,
    last_finite_epoch: int,
) -> None:
    weights = run.model.flat_values
    if np.isfinite(weights).all():
        kept = "the network keeps its weights from before that batch"
    else:
        np.copyto(weights, last_finite)
        when = (
            f"after epoch {last_finite_epoch}" if last_finite_epoch else "at the start of training"
        )
        kept = f"the network was restored to its weights {when} (the last finite ones)"
    what = (
        f"non-finite loss ({value})"
        if not math.isfinite(value)
        else f"non-finite gradient (norm {norm}, loss {value:.6g})"
    )
    reason = (
        f"{what} at epoch {epoch + 1}, batch {batch + 1}: training stopped and {kept}. "
        "Try a smaller learning rate or gradient clipping (clip_norm)."
    )
    run.stop(reason)
    warnings.warn(reason, RuntimeWarning, stacklevel=3)


def _evaluate_prepared(
    model: Sequential, loss: Loss, X: Array, y: Array, *, prefix: str = "", batch_size: int = 2048
) -> dict[str, float]:
    metrics = _Metrics(loss, y)
    for start in range(0, len(X), batch_size):
        xb, yb = X[start : start + batch_size], y[start : start + batch_size]
        logits = model.forward(xb)
        metrics.update(logits, yb, loss.forward_prepared(logits, yb))
    return metrics.result(prefix)


def evaluate(
    model: Sequential, loss: Loss, X: Any, y: Any, *, batch_size: int = 2048
) -> dict[str, float]:
    """Loss and metrics of ``model`` on (X, y), in batches.

    Returns:
        ``{"loss", "accuracy"}`` for classification, ``{"loss", "mse", "mae", "r2"}`` for
        regression.
    """
    batch_size = _check_int("batch_size", batch_size, 1)
    X_arr, y_arr = _prepare_data(model, loss, X, y)
    return _evaluate_prepared(model, loss, X_arr, y_arr, batch_size=batch_size)


def predict(model: Sequential, loss: Loss, X: Any, *, batch_size: int = 2048) -> Array:
    """The output activation of ``loss`` applied to the model's logits, in batches.

    Shapes: X (N, in) -> (N, K) probabilities (classification) or values (regression).
    """
    batch_size = _check_int("batch_size", batch_size, 1)
    return loss.predict(model.predict(X, batch_size=batch_size))


# --- callbacks ----------------------------------------------------------------------------


def _mode_for(monitor: str, mode: str) -> str:
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode != "auto":
        return mode
    return "max" if any(k in monitor for k in ("accuracy", "r2")) else "min"


def _worst(mode: str) -> float:
    """The starting 'best' of a monitored metric: anything finite improves on it."""
    return math.inf if mode == "min" else -math.inf


def _improves(value: float, best: float, mode: str, min_delta: float = 0.0) -> bool:
    """Whether ``value`` beats ``best`` by more than ``min_delta`` (NaN and inf never do)."""
    if not math.isfinite(value):
        return False
    return value < best - min_delta if mode == "min" else value > best + min_delta


def _monitored(logs: dict[str, float], monitor: str, owner: str) -> float:
    if monitor not in logs:
        raise ValueError(
            f"{owner}: monitor={monitor!r} is not a logged metric; available: {sorted(logs)}"
            + (
                " (val_* metrics need validation_data or validation_split)"
                if monitor.startswith("val_")
                else ""
            )
        )
    return logs[monitor]


class EarlyStopping(Callback):
    """Stop when a monitored metric stops improving; optionally restore the best weights.

    Args:
        monitor: any logged metric (``"val_loss"``, ``"val_accuracy"``, ``"loss"``, ...).
        patience: epochs without improvement before stopping.
        min_delta: the smallest change that counts as an improvement.
        mode: ``"min"``, ``"max"`` or ``"auto"`` (max for accuracy and R², min otherwise).
        restore_best_weights: at the end of training — however it ended — put back the weights
            of the best epoch.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        *,
        patience: int = 0,
        min_delta: float = 0.0,
        mode: str = "auto",
        restore_best_weights: bool = False,
    ) -> None:
        self.monitor = monitor
        self.patience = _check_int("EarlyStopping: patience", patience, 0)
        if min_delta < 0:
            raise ValueError(f"EarlyStopping: min_delta must be >= 0, got {min_delta}")
        self.min_delta = float(min_delta)
        self.mode = _mode_for(monitor, mode)
        self.restore_best_weights = restore_best_weights
        self.best = _worst(self.mode)
        self.best_epoch = -1
        self.wait = 0
        self.best_weights: Array | None = None

    def on_epoch_end(self, run: TrainingRun, epoch: int, logs: dict[str, float]) -> None:
        value = _monitored(logs, self.monitor, "EarlyStopping")
        if _improves(value, self.best, self.mode, self.min_delta):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                if self.best_weights is None:
                    self.best_weights = run.model.flat_values.copy()
                else:
                    np.copyto(self.best_weights, run.model.flat_values)
            return
        self.wait += 1
        if self.wait >= self.patience:
            run.stop(
                f"early stopping: {self.monitor} did not improve by more than "
                f"{self.min_delta:g} for {self.wait} epochs; best {self.best:.6g} at epoch "
                f"{self.best_epoch + 1}"
            )

    def on_train_end(self, run: TrainingRun) -> None:
        if self.restore_best_weights and self.best_weights is not None:
            np.copyto(run.model.flat_values, self.best_weights)
            note = f"restored the weights of epoch {self.best_epoch + 1}"
            run.stop_reason = f"{run.stop_reason}; {note}" if run.stop_reason else note

    def state_dict(self) -> dict[str, Any]:
        return {
            "best": self.best,
            "best_epoch": self.best_epoch,
            "wait": self.wait,
            "best_weights": self.best_weights,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = float(state["best"])
        self.best_epoch = int(state["best_epoch"])
        self.wait = int(state["wait"])
        weights = state.get("best_weights")
        self.best_weights = None if weights is None else np.array(weights)


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by ``factor`` when a metric stops improving (as Keras/PyTorch).

    Args:
        monitor: the metric to watch; patience: epochs without improvement before reducing;
        factor: in (0, 1); min_delta: smallest improvement; cooldown: epochs to wait after a
        reduction; min_lr: the learning rate never goes below this.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        *,
        factor: float = 0.1,
        patience: int = 10,
        min_delta: float = 1e-4,
        cooldown: int = 0,
        min_lr: float = 0.0,
        mode: str = "auto",
    ) -> None:
        if not 0 < factor < 1:
            raise ValueError(f"ReduceLROnPlateau: factor must be in (0, 1), got {factor}")
        self.monitor = monitor
        self.factor = float(factor)
        self.patience = _check_int("ReduceLROnPlateau: patience", patience, 0)
        self.min_delta = float(min_delta)
        self.cooldown = _check_int("ReduceLROnPlateau: cooldown", cooldown, 0)
        self.min_lr = float(min_lr)
        self.mode = _mode_for(monitor, mode)
        self.best = _worst(self.mode)
        self.wait = 0
        self.cooldown_left = 0

    def on_epoch_end(self, run: TrainingRun, epoch: int, logs: dict[str, float]) -> None:
        value = _monitored(logs, self.monitor, "ReduceLROnPlateau")
        better = _improves(value, self.best, self.mode, self.min_delta)
        if self.cooldown_left > 0:
            self.cooldown_left -= 1
            self.wait = 0
        if better:
            self.best, self.wait = value, 0
        elif self.cooldown_left == 0:
            self.wait += 1
            if self.wait >= self.patience:
                opt = run.optimizer
                current = opt.current_lr()
                target = max(current * self.factor, self.min_lr)
                if current > 0 and target < current:
                    opt.lr_scale *= target / current
                self.cooldown_left, self.wait = self.cooldown, 0

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "wait": self.wait, "cooldown_left": self.cooldown_left}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = float(state["best"])
        self.wait = int(state["wait"])
        self.cooldown_left = int(state["cooldown_left"])


class TerminateOnNaN(Callback):
    """Stop when any metric of an epoch (validation ones included) is NaN or inf.

    (A non-finite *training* loss always stops ``fit`` at the batch where it appears.)
    """

    def on_epoch_end(self, run: TrainingRun, epoch: int, logs: dict[str, float]) -> None:
        bad = [k for k, v in logs.items() if not math.isfinite(v)]
        if bad:
            run.stop(f"non-finite metrics at epoch {epoch + 1}: {', '.join(bad)}")


class CSVLogger(Callback):
    """Append one row per epoch (epoch number and every logged metric) to a CSV file.

    The file is flushed after every row, so it survives a crash.
    """

    def __init__(self, path: str | os.PathLike[str], *, append: bool = False) -> None:
        self.path = Path(path)
        self.append = append
        self._file: TextIO | None = None
        self._writer: Any = None
        self._keys: list[str] | None = None

    def on_train_begin(self, run: TrainingRun) -> None:
        resuming = run.epoch > 0 or self.append
        exists = self.path.exists() and self.path.stat().st_size > 0
        self._file = open(self.path, "a" if resuming and exists else "w", newline="")  # noqa: SIM115
        self._keys = None
        if resuming and exists:
            with open(self.path, newline="") as existing:
                header = next(csv.reader(existing), None)
            self._keys = header[1:] if header else None

    def on_epoch_end(self, run: TrainingRun, epoch: int, logs: dict[str, float]) -> None:
        assert self._file is not None
        if self._keys is None:
            self._keys = list(logs)
            csv.writer(self._file).writerow(["epoch", *self._keys])
        csv.writer(self._file).writerow([epoch + 1, *(logs.get(k, "") for k in self._keys)])
        self._file.flush()

    def on_train_end(self, run: TrainingRun) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class EpochLogger(Callback):
    """One line per epoch on a stream (``verbose=2``)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    def on_epoch_end(self, run: TrainingRun, epoch: int, logs: dict[str, float]) -> None:
        shown = [f"{k}: {v:.4g}" for k, v in logs.items() if "/" not in k and k != "epoch_time"]
        took = logs.get("epoch_time", math.nan) * 1000
        print(
            f"epoch {epoch + 1}/{run.epochs} - {' - '.join(shown)} - {took:.1f} ms",
            file=self.stream or sys.stdout,
        )


class ProgressBar(Callback):
    """A rich progress bar: batches of the epoch, running loss, epoch time.

    Quiet when the output is not a terminal (logs, CI, pipes), unless ``force=True``.
    """

    def __init__(self, *, force: bool = False) -> None:
        self.force = force
        self._progress: Any = None
        self._task: Any = None
        self._running = 0.0

    def on_train_begin(self, run: TrainingRun) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        console = Console(stderr=True)
        if not (console.is_terminal or self.force):
            return
        self._progress = Progress(
            TextColumn("epoch {task.fields[epoch]}"),
            BarColumn(bar_width=20),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[info]}"),
            console=console,
        )
        self._progress.start()
        self._batches = math.ceil(len(run.train_index) / run.batch_size)

    def on_epoch_begin(self, run: TrainingRun, epoch: int) -> None:
        if self._progress is not None:
            self._task = self._progress.add_task(
                "train", total=self._batches, epoch=f"{epoch + 1}/{run.epochs}", info=""
            )
            self._running = 0.0

    def on_batch_end(self, run: TrainingRun, batch: int, loss: float) -> None:
        if self._progress is not None:
            self._running += (loss - self._running) / (batch + 1)
            self._progress.update(self._task, advance=1, info=f"loss {self._running:.4f}")

    def on_epoch_end(self, run: TrainingRun, epoch: int, logs: dict[str, float]) -> None:
        if self._progress is not None:
            shown = {
                k.replace("accuracy", "acc"): v
                for k, v in logs.items()
                if k not in ("lr", "epoch_time") and "/" not in k
            }
            info = " ".join(f"{k} {v:.4f}" for k, v in shown.items())
            self._progress.update(self._task, info=info)

    def on_train_end(self, run: TrainingRun) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


class Diagnostics(Callback):
    """Per layer and per epoch: gradient norms, dead ReLU units, activation mean and std.

    Recorded in the History under ``"grad_norm/<param>"`` (mean over the epoch's batches),
    ``"dead_fraction/<i>"`` for ReLU-like layer i (units whose gate — the seed's 1[z > 0] — stayed
    closed for every probe sample), and ``"act_mean/<i>"``, ``"act_std/<i>"`` for every layer's
    output, measured on a fixed probe of up to ``probe_size`` training rows.
    """

    def __init__(self, probe_size: int = 512) -> None:
        self.probe_size = _check_int("Diagnostics: probe_size", probe_size, 1)
        self._sums: Array | None = None
        self._batches = 0
        self._probe: Array | None = None

    def on_train_begin(self, run: TrainingRun) -> None:
        n = min(self.probe_size, len(run.train_index))
        self._probe = run.X[np.sort(run.train_index[:n])]
        self._params = run.model.parameters()
        self._sums = np.zeros(len(self._params))

    def on_epoch_begin(self, run: TrainingRun, epoch: int) -> None:
        assert self._sums is not None
        self._sums[:] = 0
        self._batches = 0

    def on_batch_end(self, run: TrainingRun, batch: int, loss: float) -> None:
        assert self._sums is not None
        for i, p in enumerate(self._params):
            self._sums[i] += math.sqrt(float(np.vdot(p.grad, p.grad)))
        self._batches += 1

    def on_epoch_end(self, run: TrainingRun, epoch: int, logs: dict[str, float]) -> None:
        assert self._sums is not None and self._probe is not None
        for p, total in zip(self._params, self._sums, strict=True):
            logs[f"grad_norm/{p.name}"] = total / max(self._batches, 1)
        x = self._probe
        for i, layer in enumerate(run.model.layers):
            x = layer.forward(x).copy()
            logs[f"act_mean/{i}"] = float(x.mean())
            logs[f"act_std/{i}"] = float(x.std())
            if isinstance(layer, ReLU | LeakyReLU | GELU | Softplus):
                logs[f"dead_fraction/{i}"] = float(np.mean(np.all(x <= 0, axis=0)))


class ModelCheckpoint(Callback):
    """Write a checkpoint after every epoch (or only when a metric improves), atomically.

    The file holds everything ``fit(..., resume_from=path)`` needs to continue exactly: weights,
    optimizer state and step, learning-rate schedule position, random state, epoch, History and
    the callbacks' state. A crash during a write leaves the previous checkpoint intact.

    Args:
        path: the file to write (``.safetensors``). ``{epoch}`` in the name is filled in.
        save_best_only: write only when ``monitor`` improves.
        monitor, mode: as in :class:`EarlyStopping`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        save_best_only: bool = False,
        monitor: str = "val_loss",
        mode: str = "auto",
    ) -> None:
        self.path = str(path)
        self.save_best_only = save_best_only
        self.monitor = monitor
        self.mode = _mode_for(monitor, mode)
        self.best = _worst(self.mode)

    def after_epoch(self, run: TrainingRun) -> None:
        if self.save_best_only:
            value = _monitored(
                {k: v[-1] for k, v in run.history.items()}, self.monitor, "ModelCheckpoint"
            )
            if not _improves(value, self.best, self.mode):
                return
            self.best = value
        path = self.path.format(epoch=run.epoch)
        io.save_checkpoint(
            path,
            run.model,
            run.loss,
            run.optimizer,
            epoch=run.epoch,
            history=dict(run.history),
            rng_state=dict(run.rng.bit_generator.state),
            val_index=run.val_index,
            callbacks=[(type(c).__name__, c.state_dict()) for c in run.callbacks],
        )

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = float(state["best"])
