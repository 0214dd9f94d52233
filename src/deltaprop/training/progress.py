"""Training progress on a terminal: a progress bar (``verbose=1``) or a line per epoch (``2``)."""

from __future__ import annotations

import math
import sys
from typing import Any, TextIO

from .protocol import Callback, TrainingRun


class EpochLogger(Callback):
    """One line per epoch on a stream (``verbose=2``)."""

    root_only = True

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

    root_only = True

    batch_end_reads_model = False  # it shows the batch's loss only

    def __init__(self, *, force: bool = False) -> None:
        self.force = force
        self._progress: Any = None
        self._task: Any = None
        self._running = 0.0
        self._batches = 0  # per epoch

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
