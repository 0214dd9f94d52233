"""What ``fit`` reports and what may hook into it: the History, the TrainingRun, the Callback.

``fit`` calls each callback's hooks in list order (see :class:`Callback` for when each fires); a
callback sees the run through a :class:`TrainingRun` and may stop it. The callbacks deltaprop
ships are in :mod:`deltaprop.training.callbacks` and :mod:`deltaprop.training.progress`.

Thread safety: a ``fit`` call owns its model, loss, optimizer and callbacks until it returns;
run nothing else on them (another ``fit``, ``predict``) from another thread meanwhile.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..backend.arrays import Array
from ..files.checkpoints import data_fingerprint
from ..nn.losses import Loss
from ..nn.sequential import Sequential
from ..optim.optimizer import Optimizer


class History(dict[str, list[float]]):
    """Metric name → one value per epoch (``history["loss"]``, ``history["val_accuracy"]``).

    Attributes:
        stop_reason: why training ended before its last epoch (early stopping, a non-finite
            loss) and what was done at the end (best weights restored); None when it ran to
            the end and nothing was changed.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stop_reason: str | None = None
        self.diverged = False
        """Whether training stopped at a non-finite loss or gradient (and rolled back)."""
        self.kept_epochs: int | None = None
        """After a divergence: how many whole epochs trained the weights kept (0: none)."""

    @property
    def n_epochs(self) -> int:
        """Number of epochs recorded."""
        return len(self.get("loss", []))

    def append(self, logs: dict[str, float]) -> None:
        """Record one epoch's logs; a metric first seen late is padded with NaN before it."""
        done = self.n_epochs
        for key, value in logs.items():
            self.setdefault(key, [math.nan] * done).append(float(value))
        for values in self.values():
            if len(values) < done + 1:
                values.append(math.nan)


@dataclass
class TrainingRun:
    """What callbacks see of a running ``fit``.

    Call :meth:`stop` to end training after the current epoch.

    Attributes:
        epochs: the total number of epochs ``fit`` was asked for.
        epoch: the epoch in progress (from 0); after an epoch is recorded, the number done.
        X, y: the training inputs, converted once to the model's dtype, and the targets as the
            loss prepared them; ``train_index`` the rows trained on, ``val_index`` those held
            out by ``validation_split`` (or None).
        settings: what an exact resume must repeat: ``batch_size``, ``validation_split``,
            ``shuffle`` and a fingerprint of ``sample_weight`` (None without weights).
    """

    model: Sequential
    loss: Loss
    optimizer: Optimizer
    history: History
    epochs: int
    batch_size: int
    X: Array
    y: Array
    train_index: Array
    rng: np.random.Generator
    val_index: Array | None = None
    callbacks: list[Callback] = field(default_factory=list)
    epoch: int = 0
    stop_training: bool = False
    stop_reason: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    _fingerprint: dict[str, Any] | None = field(default=None, repr=False)

    def stop(self, reason: str) -> None:
        self.stop_training = True
        self.stop_reason = reason

    def data_fingerprint(self) -> dict[str, Any]:
        """The training set's fingerprint (rows, features, a hash of sampled rows) and the
        run's :attr:`settings`, computed once, when a checkpoint first needs it."""
        if self._fingerprint is None:
            self._fingerprint = {**data_fingerprint(self.X, self.y), "settings": self.settings}
        return self._fingerprint


class Callback:
    """Hooks into ``fit``; every hook is optional. ``fit`` calls them in this order.

    Callbacks with state that must survive a resume implement :meth:`state_dict` (JSON-able
    values and NumPy arrays) and :meth:`load_state_dict`.
    """

    batch_end_reads_model: ClassVar[bool] = True
    """Whether :meth:`on_batch_end` (if overridden) looks at the model, its gradients or the
    optimizer. ``fit``'s compiled epoch then runs one batch at a time, so that the callback sees
    each batch's gradients and updated weights; False, for a display that uses only the batch's
    loss, lets it run several batches before telling the callback about each."""

    root_only: ClassVar[bool] = False
    """Whether only one process of a data-parallel run (rank 0) runs it: the callbacks that
    print or write files; the others run on every rank, and decide alike from the same logs."""

    def on_train_begin(self, run: TrainingRun) -> None:
        """Once, before the first epoch: the data are checked and split, a resume is done."""

    def on_epoch_begin(self, run: TrainingRun, epoch: int) -> None:
        """Before each epoch's first batch; ``epoch`` counts from 0."""

    def on_batch_end(self, run: TrainingRun, batch: int, loss: float) -> None:
        """After each update, with the batch's loss (computed before the update)."""

    def on_epoch_end(self, run: TrainingRun, epoch: int, logs: dict[str, float]) -> None:
        """After the epoch's last batch and its validation pass. ``logs`` holds the epoch's
        metrics; a callback may add its own keys, and all go into the History once every
        callback has seen them."""

    def on_epoch_recorded(self, run: TrainingRun) -> None:
        """After the epoch's logs are in the History and every callback's :meth:`on_epoch_end`
        ran; ``run.epoch`` is now the number of epochs done. Checkpoints are written here, so
        they hold every callback's state for the epoch."""

    def on_train_end(self, run: TrainingRun) -> None:
        """Once, when training ends — however it ends: after the last epoch, a stop, a
        non-finite loss or an exception."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (arrays come back as NumPy arrays)."""

    def check_state(self, run: TrainingRun) -> None:
        """After :meth:`load_state_dict`, when ``fit`` resumes: raise ValueError if the state
        does not fit ``run`` (saved weights of another model, say). Nothing to check by default."""
