"""What ``fit``, ``evaluate`` and ``predict`` accept: data checked once and converted once, and
a model, loss, optimizer and callbacks that are of the right kinds and fit together.

Every refusal names the argument, the value and what was expected, before any training.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import registry
from ..backend.arrays import Array, as_real_array, namespace, take_rows
from ..errors import ShapeError
from ..nn.losses import Loss
from ..nn.sequential import Sequential
from ..optim.optimizer import Optimizer
from ..validation import check_finite, check_instance, plural
from .metrics import true_labels
from .protocol import Callback

# --- data in: checked once, converted once -----------------------------------------


def prepare_inputs(model: Sequential, X: Any, *, name: str = "X") -> Array:
    """``X`` as a 2-D array of the model's dtype and width, every value finite in that dtype."""
    raw = as_real_array(X, name=name)
    X_arr = model.as_input(raw, name=name)
    try:
        check_finite(name, X_arr)
    except ValueError:
        check_finite(name, raw)  # NaN or inf in the data itself: that message
        _report_overflow(name, raw, X_arr)
        raise
    return X_arr


def _report_overflow(name: str, raw: Array, converted: Array) -> None:
    """Finite data that became ±inf in the model's narrower dtype."""
    rows = ~np.isfinite(converted.reshape(len(converted), -1)).all(axis=1)
    largest = float(np.max(np.abs(raw[rows])))
    limit = float(np.finfo(converted.dtype).max)
    raise ValueError(
        f"{name} has values beyond {converted.dtype}'s range (largest magnitude {largest:.4g}, "
        f"the limit is {limit:.4g}) in {plural(int(rows.sum()), 'row')} (first in row "
        f"{int(np.argmax(rows))}): they overflow the model's {converted.dtype}; scale the data, "
        "or build the model with dtype=np.float64"
    )


def prepare_data(
    model: Sequential, loss: Loss, X: Any, y: Any, *, name: str = "X"
) -> tuple[Array, Array]:
    """Inputs as :func:`prepare_inputs` gives them, and targets as the loss prepares them."""
    X_arr = prepare_inputs(model, X, name=name)
    y_name = "y" if name == "X" else name.replace("X", "y")
    y_raw = as_real_array(y, name=y_name, numeric=False)
    if y_raw.ndim == 0:
        raise ShapeError(f"{y_name} must have one row per sample, got a scalar")
    if len(X_arr) != len(y_raw):
        raise ValueError(
            f"{name} and {y_name} have different lengths: {len(X_arr)} rows in {name} "
            f"(shape {X_arr.shape}), {len(y_raw)} in {y_name} (shape {y_raw.shape})"
        )
    if len(X_arr) == 0:
        raise ValueError(f"{name} is empty: need at least one sample, got shape {X_arr.shape}")
    check_finite(y_name, y_raw)
    y_prepared = loss.prepare_targets(y_raw, model.output_features(X_arr.shape[1]))
    if y_prepared.dtype.kind == "f":
        raw_targets = y_prepared
        with np.errstate(over="ignore"):  # reported below, with what to do
            y_prepared = np.ascontiguousarray(y_prepared, dtype=model.dtype)
        if not np.isfinite(y_prepared).all():
            _report_overflow(y_name, raw_targets.reshape(len(raw_targets), -1), y_prepared)
    return X_arr, y_prepared


def validation_split_indices(
    y: Array, fraction: float, classification: bool, rng: np.random.Generator
) -> tuple[Array, Array]:
    """Shuffled train/validation split of row indices, stratified by class for classification."""
    n = len(y)
    n_val = int(round(fraction * n))
    if classification:
        labels = true_labels(y)
        classes, counts = np.unique(labels, return_counts=True)
        members = [rng.permutation(np.flatnonzero(labels == label)) for label in classes]
        taken = _per_class(counts, n_val)
        val = np.sort(np.concatenate([m[:k] for m, k in zip(members, taken, strict=True)]))
    else:
        val = np.sort(rng.permutation(n)[:n_val])
    train = np.setdiff1d(np.arange(n), val, assume_unique=True)
    if len(val) == 0 or len(train) == 0:
        raise ValueError(
            f"validation_split={fraction} leaves {len(train)} training and {len(val)} validation "
            f"samples out of {n}; both must be non-empty"
        )
    return train, val


def _per_class(counts: Array, n_val: int) -> Array:
    """How many rows of each class go to validation: ``n_val`` in all, shared in proportion to
    the class sizes — each class its rounded share, then (where rounding missed the total) the
    classes with the largest remainders one more or the smallest one fewer. Many small classes
    round to zero each; their total still holds ``n_val`` rows."""
    ideal = counts * (n_val / counts.sum())
    taken = np.round(ideal).astype(np.int64)
    order = np.argsort(ideal - taken, kind="stable")
    for j in order[::-1][: max(n_val - int(taken.sum()), 0)]:
        taken[j] += 1
    for j in order[: max(int(taken.sum()) - n_val, 0)]:
        taken[j] -= 1
    return np.minimum(np.maximum(taken, 0), counts)


# --- the parts: objects of the right kinds, that fit together ----------------------------


def check_parts(model: Any, loss: Any) -> None:
    """The model and the loss are what they should be, and do not both apply σ or softmax."""
    if not isinstance(model, Sequential):
        raise TypeError(f"model must be a Sequential, got {type(model).__name__}")
    check_instance("loss", loss, Loss, "dp.SoftmaxCrossEntropy()")
    last: Any = model
    while isinstance(last, Sequential) and last.layers:
        last = last.layers[-1]
    activation = loss.output_activation
    if activation is not None and registry.LAYERS.get(activation) is type(last):
        warnings.warn(
            f"the model ends in {type(last).__name__} and {type(loss).__name__} applies it "
            f"again: it is applied twice. End the model with its last Dense layer (logits); "
            "the loss computes the probabilities",
            UserWarning,
            stacklevel=3,
        )


def check_optimizer(model: Sequential, optimizer: Any) -> None:
    """The optimizer updates exactly the model's parameters."""
    check_instance("optimizer", optimizer, Optimizer, "dp.Adam(model.parameters())")
    ours = {id(p) for p in model.parameters()}
    theirs = {id(p) for p in optimizer.parameters}
    if ours != theirs:
        missing = [p.name for p in model.parameters() if id(p) not in theirs]
        raise ValueError(
            f"the optimizer was built for other parameters than the model's ({len(missing)} of "
            f"the model's {len(ours)} are not in it, first {missing[:3]}; it holds "
            f"{len(theirs - ours)} others): was the model built again after the optimizer? "
            f"Build it on this model: {type(optimizer).__name__}(model.parameters(), ...)"
        )


def check_callbacks(callbacks: Any) -> list[Callback]:
    if isinstance(callbacks, Callback) or not isinstance(callbacks, Sequence | list | tuple):
        raise TypeError(f"callbacks must be a list of Callbacks, got {type(callbacks).__name__}")
    for index, callback in enumerate(callbacks):
        check_instance(f"callbacks[{index}]", callback, Callback, "dp.EarlyStopping()")
    return list(callbacks)


def check_batch_rows(model: Sequential, n_train: int, batch_size: int) -> None:
    """Refuse a batch size whose batches (the last one included) would be smaller than a
    layer can train on: batch normalization needs 2 rows for a variance."""
    if n_train == 0:
        return
    last = n_train % batch_size or min(batch_size, n_train)
    for layer in model.layers:
        if last < layer.min_training_rows():
            raise ValueError(
                f"{layer!r} needs training batches of at least {layer.min_training_rows()} rows, "
                f"but {n_train} training rows in batches of batch_size={batch_size} leave a "
                f"batch of {last}; choose another batch_size"
            )


class Batches:
    """Mini-batches gathered from a per-epoch permutation into reused storage."""

    def __init__(self, X: Array, y: Array, weights: Array | None = None) -> None:
        self.X, self.y, self.weights = X, y, weights
        self._storage: dict[int, tuple[Array, Array, Array | None]] = {}

    def gather(self, index: Array) -> tuple[Array, Array, Array | None]:
        """The rows ``index`` of X, y (and the sample weights, if any), in reused storage."""
        n = len(index)
        storage = self._storage.get(n)
        if storage is None:
            xp = namespace(self.X)  # the data's device: the CPU, or a GPU
            storage = (
                xp.empty((n, *self.X.shape[1:]), self.X.dtype),
                xp.empty((n, *self.y.shape[1:]), self.y.dtype),
                None if self.weights is None else xp.empty(n, self.weights.dtype),
            )
            self._storage[n] = storage
        xb, yb, wb = storage
        # the indices are our own permutation of valid rows (on the data's device)
        take_rows(self.X, index, out=xb)
        take_rows(self.y, index, out=yb)
        if wb is not None:
            assert self.weights is not None
            take_rows(self.weights, index, out=wb)
        return xb, yb, wb
