"""What the training loop reports: accuracy for classification; MSE, MAE, R² for regression
(:func:`regression_metrics`, which the scores of a trained model use too)."""

from __future__ import annotations

import math

import numpy as np

from ..backend.arrays import Array
from ..nn.losses import Loss


class Metrics:
    """Running metrics over batches: accuracy for classification; MSE, MAE, R² for regression.

    The loss is averaged with each batch's normalizer (its rows, or its total sample weight) as
    the weight; the other metrics count rows. ``y_reference`` gives R² its baseline: the
    variance of the targets being scored.
    """

    def __init__(self, loss: Loss, y_reference: Array) -> None:
        self.loss = loss
        self.classification = loss.task == "classification"
        self.loss_sum = 0.0
        self.loss_weight = 0.0
        self.count = 0
        self.correct = 0
        self.sq = 0.0
        self.abs = 0.0
        self.n_outputs = 1 if y_reference.ndim == 1 else y_reference.shape[1]
        self.variance_per_row = 0.0
        if not self.classification:
            centered = y_reference - y_reference.mean(axis=0)
            self.variance_per_row = float(np.sum(centered * centered)) / len(y_reference)

    def add(self, batch_loss: float, normalizer: float, rows: int, correct: int) -> None:
        """Count a classification batch whose correct rows are already known."""
        self.loss_sum += batch_loss * normalizer
        self.loss_weight += normalizer
        self.count += rows
        self.correct += correct

    def update(self, logits: Array, y: Array, batch_loss: float, normalizer: float) -> None:
        n = logits.shape[0]
        if self.classification:
            self.add(batch_loss, normalizer, n, self.loss.n_correct(logits, y))
            return
        self.loss_sum += batch_loss * normalizer
        self.loss_weight += normalizer
        self.count += n
        residual = logits - y
        self.sq += float(np.sum(residual * residual))
        self.abs += float(np.sum(np.abs(residual)))

    def sums(self) -> list[float]:
        """The running sums, in the order :meth:`set_sums` takes them back."""
        return [self.loss_sum, self.loss_weight, self.count, self.correct, self.sq, self.abs]

    def set_sums(self, sums: list[float]) -> None:
        """Take over sums (those of every rank of a data-parallel run, added up)."""
        self.loss_sum, self.loss_weight, count, correct, self.sq, self.abs = sums
        self.count, self.correct = int(round(count)), int(round(correct))

    def result(self, prefix: str = "") -> dict[str, float]:
        if self.count == 0:
            return {}
        logs = {prefix + "loss": self.loss_sum / self.loss_weight}
        if self.classification:
            logs[prefix + "accuracy"] = self.correct / self.count
        else:
            elements = self.count * self.n_outputs
            total = self.variance_per_row * self.count
            scores = regression_metrics(self.sq, self.abs, elements, total)
            logs.update({prefix + name: value for name, value in scores.items()})
        return logs


def regression_metrics(
    squares: float, absolutes: float, elements: int, total: float
) -> dict[str, float]:
    """MSE, MAE and R² from a residual r's sums over ``elements`` values: ``squares`` = Σ r²,
    ``absolutes`` = Σ |r|, and ``total`` = Σ (y − ȳ)², R²'s baseline (R² is NaN where it is 0).

    The one home of the three formulas: the training loop's running metrics and a trained
    model's scores both use it."""
    return {
        "mse": squares / elements,
        "mae": absolutes / elements,
        "r2": 1.0 - squares / total if total > 0 else math.nan,
    }


def true_labels(y: Array) -> Array:
    """Class indices from targets as a classification loss prepares them. Shapes: (N,)."""
    if y.ndim == 1:
        return y
    if y.shape[1] == 1:
        return (y[:, 0] > 0.5).astype(np.intp)
    return np.argmax(y, axis=1)
