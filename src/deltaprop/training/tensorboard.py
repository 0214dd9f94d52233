"""A callback that writes TensorBoard event files, as Keras' ``TensorBoard`` does: each epoch's
logs as scalars, training and validation side by side (``log_dir/train``, ``log_dir/validation``,
the tags ``epoch_loss``, ``epoch_accuracy``, ...), and, every ``histogram_freq`` epochs, a
histogram of each parameter and of its last gradient. Written through tensorboardX (the
``[tensorboard]`` extra); open them with ``tensorboard --logdir log_dir``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..backend.arrays import to_host
from ..validation import check_int
from .protocol import Callback, TrainingRun


def _writer_class() -> Any:
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        raise ImportError(
            "TensorBoard writes its files through tensorboardX: "
            "pip install 'deltaprop[tensorboard]'"
        ) from None
    return SummaryWriter


class TensorBoard(Callback):
    """Epoch logs (and parameter histograms) as TensorBoard event files under ``log_dir``.

    Args:
        log_dir: the directory of the run; ``train/`` and ``validation/`` are made inside it.
        histogram_freq: write each parameter's and gradient's histogram every this many epochs
            (0: never), as Keras' argument of that name.

    Raises:
        ImportError: naming the extra to install, when tensorboardX is missing.
        ValueError: for a negative ``histogram_freq``.
    """

    root_only = True

    batch_end_reads_model = False

    def __init__(self, log_dir: str | os.PathLike[str] = "logs", histogram_freq: int = 0) -> None:
        self.log_dir = Path(log_dir)
        self.histogram_freq = check_int("histogram_freq", histogram_freq, 0, owner="TensorBoard")
        self._SummaryWriter = _writer_class()  # fail here, before training, if it is missing
        self._writers: dict[str, Any] = {}

    def _writer(self, part: str) -> Any:
        if part not in self._writers:
            self._writers[part] = self._SummaryWriter(str(self.log_dir / part), flush_secs=10)
        return self._writers[part]

    def on_epoch_recorded(self, run: TrainingRun) -> None:
        step = run.epoch  # epochs done: 1 after the first
        for key, values in run.history.items():
            if "/" in key or not values or not np.isfinite(values[-1]):
                continue  # diagnostics (grad_norm/0.W, ...) are shown by their own plots
            part, name = ("validation", key[4:]) if key.startswith("val_") else ("train", key)
            self._writer(part).add_scalar(f"epoch_{name}", float(values[-1]), step)
        if self.histogram_freq and step % self.histogram_freq == 0:
            writer = self._writer("train")
            for p in run.model.parameters():
                writer.add_histogram(p.name, to_host(p.value).astype(np.float64), step)
                writer.add_histogram(f"{p.name}/gradient", to_host(p.grad).astype(np.float64), step)
        for writer in self._writers.values():
            writer.flush()  # an interrupted run keeps every finished epoch

    def on_train_end(self, run: TrainingRun) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers = {}
