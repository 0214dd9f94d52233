"""A trained model at work: ``evaluate`` (its loss and metrics on rows) and ``predict`` (its
outputs), in batches, in evaluation mode; ``fit`` scores its validation rows with the same
:func:`evaluate_prepared`."""

from __future__ import annotations

from typing import Any

from ..backend.arrays import Array, moved_to, to_host
from ..nn.dense_chain import compiled_predictions
from ..nn.losses import Loss
from ..nn.sequential import Sequential
from ..validation import check_int, prepare_weights
from .inputs import check_parts, prepare_data, prepare_inputs
from .metrics import Metrics


def evaluate_prepared(
    model: Sequential,
    loss: Loss,
    X: Array,
    y: Array,
    weights: Array | None = None,
    *,
    prefix: str = "",
    batch_size: int = 2048,
    engine: str = "auto",
) -> dict[str, float]:
    """:func:`evaluation_metrics`' result, each name with ``prefix``."""
    metrics = evaluation_metrics(model, loss, X, y, weights, batch_size=batch_size, engine=engine)
    return metrics.result(prefix)


def evaluation_metrics(
    model: Sequential,
    loss: Loss,
    X: Array,
    y: Array,
    weights: Array | None = None,
    *,
    batch_size: int = 2048,
    y_reference: Array | None = None,
    engine: str = "auto",
) -> Metrics:
    """The running sums of the loss and the metrics over (X, y), in batches, in evaluation
    mode; ``y_reference`` (default y) gives R² its baseline — all the rows' targets when X is
    one rank's share of them.

    The logits come from compiled inference where ``predict_logits``'s ``engine`` would use it
    (:func:`~deltaprop.nn.dense_chain.compiled_predictions`: a CPU chain of Dense and ReLU
    layers, and enough rows under ``"auto"``), else from each batch's ``forward``; the same
    numbers to float rounding."""
    metrics = Metrics(loss, to_host(y if y_reference is None else y_reference))
    here = model.flat_values
    X, y = moved_to(X, here), moved_to(y, here)
    weights = None if weights is None else moved_to(weights, here)
    work = len(X) * here.size
    every = None  # all rows' logits at once, compiled
    if compiled_predictions(engine, model.layers, model.device.name, work):
        every = model.predict_logits(X, batch_size, engine="compiled")
    for start in range(0, len(X), batch_size):
        rows = slice(start, start + batch_size)
        wb = None if weights is None else weights[rows]
        logits = model.forward(X[rows]) if every is None else every[rows]
        value = loss.forward_prepared(logits, y[rows], wb)
        metrics.update(logits, y[rows], value, loss.normalizer)
    return metrics


def evaluate(
    model: Sequential,
    loss: Loss,
    X: Any,
    y: Any,
    *,
    sample_weight: Any = None,
    batch_size: int = 2048,
    engine: str = "auto",
) -> dict[str, float]:
    """Loss and metrics of ``model`` on (X, y), in batches, in evaluation mode.

    ``engine`` as :meth:`~deltaprop.nn.sequential.Sequential.predict_logits`'s: ``"auto"``
    computes the logits with compiled inference for a CPU chain of Dense and ReLU layers on
    enough rows, ``"compiled"`` insists, ``"reference"`` runs each layer's forward.

    The loss is the data term (weighted by ``sample_weight`` if given), without a model's L2
    penalty; accuracy, MSE, MAE and R² count every row once.

    Returns:
        ``{"loss", "accuracy"}`` for classification, ``{"loss", "mse", "mae", "r2"}`` for
        regression.
    """
    batch_size = check_int("batch_size", batch_size, 1)
    check_parts(model, loss)
    X_arr, y_arr = prepare_data(model, loss, X, y)
    weights = None if sample_weight is None else prepare_weights(sample_weight, len(X_arr))
    return evaluate_prepared(
        model, loss, X_arr, y_arr, weights, batch_size=batch_size, engine=engine
    )


def predict(model: Sequential, loss: Loss, X: Any, *, batch_size: int = 2048) -> Array:
    """The output activation of ``loss`` applied to the model's logits, in batches.

    ``X`` is checked as ``evaluate`` checks it: NaN or inf is refused, not predicted.

    Shapes: X (N, in) -> (N, K) probabilities (classification) or values (regression).
    """
    batch_size = check_int("batch_size", batch_size, 1)
    check_parts(model, loss)
    X_arr = prepare_inputs(model, X)
    return loss.predict(model.predict_logits(X_arr, batch_size=batch_size))
