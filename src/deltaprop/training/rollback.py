"""When training blows up: stop, and keep the newest weights whose loss is finite.

``fit`` keeps the weights at its start and after each of the last two epochs (:class:`Fallbacks`);
after a non-finite loss or gradient, :func:`stop_on_non_finite` puts back the newest of them whose
loss is finite on every training row, says so in a warning and in ``History.stop_reason``.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from ..backend.arrays import Array
from ..nn.losses import Loss
from ..nn.sequential import Sequential
from .protocol import TrainingRun


class Fallbacks:
    """Weights to roll back to when training blows up: at the start of ``fit`` and after each
    of the last two epochs (one copy of the weights per epoch, into recycled storage)."""

    def __init__(self, model: Sequential, epochs_done: int) -> None:
        self.model = model
        self.initial = (epochs_done, model.snapshot())
        self.recent: list[tuple[int, list[Array]]] = []  # newest first

    def record(self, epochs_done: int) -> None:
        oldest = self.recent.pop()[1] if len(self.recent) == 2 else None  # its storage, reused
        self.recent.insert(0, (epochs_done, self.model.snapshot(into=oldest)))

    def candidates(self) -> list[tuple[int, list[Array]]]:
        """Newest first, the weights at the start of ``fit`` last."""
        return [*self.recent, self.initial]


ADVICE = "Try a smaller learning rate (lr) or gradient clipping (the optimizer's clip_norm=1.0)."
"""What the stop reason of a non-finite run advises; the command line gives its own flags."""


def _finite_loss(model: Sequential, loss: Loss, data: tuple[Array, Array, Array]) -> bool:
    """Whether the model's loss is finite on every training row (in evaluation mode)."""
    X, y, index = data
    for start in range(0, len(index), 2048):
        rows = index[start : start + 2048]
        if not math.isfinite(loss.forward_prepared(model.forward(X[rows]), y[rows])):
            return False
    return True


def stop_on_non_finite(
    run: TrainingRun,
    value: float,
    norm: float,
    epoch: int,
    batch: int,
    fallbacks: Fallbacks,
    data: tuple[Array, Array, Array],
) -> None:
    """Stop training and keep the newest weights whose loss is finite on the training rows.

    After a non-finite gradient (the update was not applied) those may be the current weights;
    otherwise the weights after one of the last two epochs, or at the start of ``fit``.
    """
    weights = run.model.flat_values
    finite_now = math.isfinite(value) and np.isfinite(weights).all()
    if finite_now and _finite_loss(run.model, run.loss, data):
        kept = "the network keeps its weights from before that batch"
        run.history.kept_epochs = epoch
    else:
        chosen = None
        for epochs_done, candidate in fallbacks.candidates():
            run.model.restore(candidate)
            if _finite_loss(run.model, run.loss, data):
                chosen = epochs_done
                break
        when = f"after epoch {chosen}" if chosen else "at the start of training"
        run.history.kept_epochs = chosen or 0
        kept = (
            f"the network was restored to its weights {when}, the newest whose loss is finite on "
            "the training data"
            if chosen is not None
            else "the network was restored to its weights at the start of training, though even "
            "their loss is not finite on the training data"
        )
    what = (
        f"non-finite loss ({value})"
        if not math.isfinite(value)
        else f"non-finite gradient (norm {norm}, loss {value:.6g})"
    )
    reason = (
        f"{what} at epoch {epoch + 1}, batch {batch + 1}: training stopped and {kept}. {ADVICE}"
    )
    run.stop(reason)
    warnings.warn(reason, RuntimeWarning, stacklevel=3)
