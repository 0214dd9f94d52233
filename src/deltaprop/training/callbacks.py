"""The callbacks deltaprop ships, built on the protocol of :mod:`deltaprop.training.protocol`.

They cover stopping (:class:`EarlyStopping`, :class:`TerminateOnNaN`), the learning rate
(:class:`ReduceLROnPlateau`), files (:class:`ModelCheckpoint`, :class:`CSVLogger`) and a look inside
(:class:`Diagnostics`); the terminal display is in :mod:`deltaprop.training.progress`.
"""

from __future__ import annotations

import csv
import math
import os
import re
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from ..backend.arrays import Array, moved_to
from ..files.checkpoints import save_checkpoint
from ..validation import check_bool, check_choice, check_int, check_number, check_positive
from .protocol import Callback, TrainingRun

# --- the one improvement rule ---------------------------------------------------------------


def _mode_for(monitor: str, mode: str) -> str:
    check_choice("mode", mode, ("auto", "min", "max"))
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


# --- stopping and the learning rate ---------------------------------------------------------


class EarlyStopping(Callback):
    """Stop when a monitored metric stops improving; optionally restore the best weights.

    Args:
        monitor: any logged metric (``"val_loss"``, ``"val_accuracy"``, ``"loss"``, ...).
        patience: epochs without improvement before stopping.
        min_delta: the smallest change that counts as an improvement.
        mode: ``"min"``, ``"max"`` or ``"auto"`` (max for accuracy and R², min otherwise).
        restore_best_weights: at the end of training — however it ended — put back the weights
            of the best epoch (and say so in ``History.stop_reason``).
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
        self.patience = check_int("patience", patience, 0, owner="EarlyStopping")
        self.min_delta = check_positive(
            "min_delta", min_delta, owner="EarlyStopping", allow_zero=True
        )
        self.mode = _mode_for(monitor, mode)
        self.restore_best_weights = check_bool(
            "restore_best_weights", restore_best_weights, owner="EarlyStopping"
        )
        self.best = _worst(self.mode)
        self.best_epoch = -1
        self.wait = 0
        self.best_state: list[Array] | None = None  # the model's snapshot at its best epoch

    @property
    def best_weights(self) -> Array | None:
        """The flat parameters of the best epoch (its buffers are in ``best_state``)."""
        return None if self.best_state is None else self.best_state[0]

    def on_epoch_end(self, run: TrainingRun, epoch: int, logs: dict[str, float]) -> None:
        value = _monitored(logs, self.monitor, "EarlyStopping")
        if _improves(value, self.best, self.mode, self.min_delta):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self.best_state = run.model.snapshot(into=self.best_state)
            return
        self.wait += 1
        if self.wait >= self.patience:
            run.stop(
                f"early stopping: {self.monitor} did not improve by more than "
                f"{self.min_delta:g} for {self.wait} epochs; best {self.best:.6g} at epoch "
                f"{self.best_epoch + 1}"
            )

    def on_train_end(self, run: TrainingRun) -> None:
        if self.restore_best_weights and self.best_state is not None:
            run.model.restore(self.best_state)
            note = f"restored the weights of epoch {self.best_epoch + 1}"
            run.stop_reason = f"{run.stop_reason}; {note}" if run.stop_reason else note

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "best": self.best,
            "best_epoch": self.best_epoch,
            "wait": self.wait,
            "best_weights": self.best_weights,
        }
        for i, buffer in enumerate((self.best_state or [])[1:]):
            state[f"best_buffer_{i}"] = buffer
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = float(state["best"])
        self.best_epoch = int(state["best_epoch"])
        self.wait = int(state["wait"])
        weights = state.get("best_weights")
        buffers: list[Array] = []
        while f"best_buffer_{len(buffers)}" in state:
            buffers.append(np.array(state[f"best_buffer_{len(buffers)}"]))
        self.best_state = None if weights is None else [np.array(weights), *buffers]

    def check_state(self, run: TrainingRun) -> None:
        if self.best_state is None:
            return
        current = [run.model.flat_values, *run.model.buffers().values()]  # what snapshot copies
        expected = [(a.shape, a.dtype) for a in current]
        got = [(np.shape(a), np.asarray(a).dtype) for a in self.best_state]
        if got != expected:
            raise ValueError(
                f"EarlyStopping: the saved best weights are (shape, dtype) {got}, the model's "
                f"{expected}"
            )


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
        owner = "ReduceLROnPlateau"
        self.monitor = monitor
        self.factor = check_number(
            "factor", factor, owner=owner, low=0, high=1, low_open=True, high_open=True
        )
        self.patience = check_int("patience", patience, 0, owner=owner)
        self.min_delta = check_positive("min_delta", min_delta, owner=owner, allow_zero=True)
        self.cooldown = check_int("cooldown", cooldown, 0, owner=owner)
        self.min_lr = check_positive("min_lr", min_lr, owner=owner, allow_zero=True)
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


# --- files ------------------------------------------------------------------------------------


class CSVLogger(Callback):
    """Append one row per epoch (epoch number and every logged metric) to a CSV file.

    The file is flushed after every row, so it survives a crash. A fresh run overwrites the
    file unless ``append=True``; a resumed run always appends, under the existing header.
    """

    root_only = True

    def __init__(self, path: str | os.PathLike[str], *, append: bool = False) -> None:
        self.path = Path(path)
        self.append = check_bool("append", append, owner="CSVLogger")
        self._file: TextIO | None = None
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


_EPOCH_FIELD = re.compile(r"\{epoch(?::([^{}]*))?\}")


def _fill_epoch(template: str, epoch: int) -> str:
    """``template`` with each ``{epoch}`` or ``{epoch:<format spec>}`` filled in; any other
    brace stays as it is."""
    return _EPOCH_FIELD.sub(lambda match: format(epoch, match.group(1) or ""), template)


class ModelCheckpoint(Callback):
    """Write a checkpoint after every epoch (or only when a metric improves), atomically.

    The file holds everything ``fit(..., resume_from=path)`` needs to continue exactly: weights,
    optimizer state and step, learning-rate schedule position, random state, epoch, History and
    the callbacks' state. A crash during a write leaves the previous checkpoint intact.

    Args:
        path: the file to write (``.safetensors``). ``{epoch}`` in it becomes the number of
            epochs done, with an optional format spec (``ckpt-{epoch:03d}.safetensors``); any
            other brace is kept as written.
        save_best_only: write only when ``monitor`` improves.
        monitor, mode: as in :class:`EarlyStopping`.

    Raises:
        ValueError: for an ``{epoch:...}`` field whose format spec is not one for integers.
    """

    root_only = True

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        save_best_only: bool = False,
        monitor: str = "val_loss",
        mode: str = "auto",
    ) -> None:
        self.path = os.fspath(path)
        try:
            _fill_epoch(self.path, 1)
        except ValueError as error:
            raise ValueError(
                f"ModelCheckpoint: path {self.path!r} has an {{epoch}} field with an invalid "
                f"format spec ({error})"
            ) from None
        self.save_best_only = check_bool("save_best_only", save_best_only, owner="ModelCheckpoint")
        self.monitor = monitor
        self.mode = _mode_for(monitor, mode)
        self.best = _worst(self.mode)

    def on_epoch_recorded(self, run: TrainingRun) -> None:
        if self.save_best_only:
            value = _monitored(
                {k: v[-1] for k, v in run.history.items()}, self.monitor, "ModelCheckpoint"
            )
            if not _improves(value, self.best, self.mode):
                return
            self.best = value
        save_checkpoint(
            _fill_epoch(self.path, run.epoch),
            run.model,
            run.loss,
            run.optimizer,
            epoch=run.epoch,
            history=dict(run.history),
            rng_state=dict(run.rng.bit_generator.state),
            val_index=run.val_index,
            callbacks=[(type(c).__name__, c.state_dict()) for c in run.callbacks],
            data=run.data_fingerprint(),
            generator_states=[
                dict(g.bit_generator.state) for g in run.model.generators() if g is not run.rng
            ],
        )

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = float(state["best"])


# --- a look inside ----------------------------------------------------------------------------


class Diagnostics(Callback):
    """Per layer and per epoch: gradient norms, dead ReLU units, activation mean and std.

    Recorded in the History under ``"grad_norm/<param>"`` (mean over the epoch's batches),
    ``"dead_fraction/<i>"`` for each ReLU-like layer i (the fraction of its units whose gate —
    the seed's 1[z > 0], with z the layer's input — stayed closed for every probe sample), and
    ``"act_mean/<i>"``, ``"act_std/<i>"`` for every layer's output, measured in evaluation mode on a
    fixed probe of up to ``probe_size`` training rows.
    """

    def __init__(self, probe_size: int = 512) -> None:
        self.probe_size = check_int("probe_size", probe_size, 1, owner="Diagnostics")
        self._sums: Array | None = None
        self._batches = 0
        self._probe: Array | None = None

    def on_train_begin(self, run: TrainingRun) -> None:
        n = min(self.probe_size, len(run.train_index))
        self._probe = moved_to(run.X[np.sort(run.train_index[:n])], run.model.flat_values)
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
        z = self._probe
        for i, layer in enumerate(run.model.layers):
            if layer.relu_like:  # gate 1[z > 0] closed for every probe row: a dead unit
                logs[f"dead_fraction/{i}"] = float(np.mean(np.all(z <= 0, axis=0)))
            z = layer.forward(z).copy()
            logs[f"act_mean/{i}"] = float(z.mean())
            logs[f"act_std/{i}"] = float(z.std())
