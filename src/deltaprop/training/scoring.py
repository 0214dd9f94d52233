"""A trained model's numbers on labelled rows: what ``deltaprop train`` and ``evaluate`` report.

Classification: loss, accuracy, per-class precision, recall, F1 and support, macro F1, and the
confusion matrix (rows: true class, columns: predicted). Regression: loss (on the scale the
model was trained on), and MSE, RMSE, MAE and R² in the target's own units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..backend.arrays import Array
from ..data.preprocessing import Preprocessor
from ..nn.losses import Loss
from ..nn.sequential import Sequential
from .evaluation import evaluate, predict
from .metrics import regression_metrics


@dataclass
class Scores:
    """Metrics of a model on labelled rows (see the module's docstring)."""

    task: str
    rows: int
    metrics: dict[str, float]
    class_names: tuple[Any, ...] = ()
    per_class: list[dict[str, float]] = field(default_factory=list)
    confusion: Array | None = None
    predictions: Array = field(default_factory=lambda: np.empty(0))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: metrics, and for classification the per-class table and the matrix."""
        out: dict[str, Any] = {"task": self.task, "rows": self.rows, **self.metrics}
        if self.task == "classification":
            out["classes"] = [
                {"class": _json_label(name), **row}
                for name, row in zip(self.class_names, self.per_class, strict=True)
            ]
            assert self.confusion is not None
            out["confusion_matrix"] = self.confusion.tolist()
        return out


def _json_label(label: Any) -> Any:
    return label if isinstance(label, int | str) else str(label)


def predicted_classes(probabilities: Array) -> Array:
    """Class indices from a classifier's outputs: p > ½ for one sigmoid output, else argmax.

    Shapes: (N, 1) or (N, K) -> (N,).
    """
    if probabilities.ndim == 2 and probabilities.shape[1] == 1:
        return (probabilities[:, 0] > 0.5).astype(np.int64)
    return np.argmax(probabilities, axis=1).astype(np.int64)


def class_probabilities(probabilities: Array) -> Array:
    """(N, K) probabilities of every class; one sigmoid output p becomes (1 − p, p)."""
    if probabilities.ndim == 2 and probabilities.shape[1] == 1:
        return np.column_stack([1 - probabilities[:, 0], probabilities[:, 0]])
    return probabilities


def score(model: Sequential, loss: Loss, prep: Preprocessor, X: Array, y: Array) -> Scores:
    """Score ``model`` on features ``X`` (N, F) and targets ``y`` as the model was trained on
    them (class indices, or scaled regression targets), in batches.

    Raises:
        ValueError: if ``X`` or ``y`` is not data the model takes.
    """
    logs = evaluate(model, loss, X, y)
    outputs = predict(model, loss, X)
    if prep.task == "regression":
        true = prep.decode(np.asarray(y, dtype=np.float64))
        values = prep.decode(outputs[:, 0] if outputs.ndim == 2 else outputs)
        residual = values - true
        centered = true - true.mean()
        scores = regression_metrics(
            float(np.sum(residual * residual)),
            float(np.sum(np.abs(residual))),
            len(true),
            float(np.sum(centered * centered)),
        )
        metrics = {
            "loss": logs["loss"],
            "mse": scores["mse"],
            "rmse": math.sqrt(scores["mse"]),
            "mae": scores["mae"],
            "r2": scores["r2"],
        }
        return Scores("regression", len(true), metrics, predictions=values)
    k = len(prep.class_names)
    predicted = predicted_classes(outputs)
    true_idx = np.asarray(y, dtype=np.int64)
    confusion = np.bincount(true_idx * k + predicted, minlength=k * k).reshape(k, k)
    per_class = []
    for c in range(k):
        tp = int(confusion[c, c])
        predicted_c, actual_c = int(confusion[:, c].sum()), int(confusion[c].sum())
        precision = tp / predicted_c if predicted_c else 0.0
        recall = tp / actual_c if actual_c else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class.append(
            {"precision": precision, "recall": recall, "f1": f1, "support": float(actual_c)}
        )
    present = [row["f1"] for row in per_class if row["support"] > 0]
    metrics = {
        "loss": logs["loss"],
        "accuracy": float(np.mean(predicted == true_idx)),
        "macro_f1": float(np.mean(present)) if present else math.nan,
    }
    return Scores(
        "classification",
        len(true_idx),
        metrics,
        class_names=prep.class_names,
        per_class=per_class,
        confusion=confusion,
        predictions=predicted,
    )
