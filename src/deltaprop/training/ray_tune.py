"""A callback that reports each epoch's logs to Ray Tune, so that its schedulers (ASHA, median
stopping, PBT) can stop a trial early or compare trials while they train; Ray is imported only
when a trial runs (``pip install 'ray[tune]'``)."""

from __future__ import annotations

import math
from typing import Any

from .protocol import Callback, TrainingRun


class TuneReport(Callback):
    """Inside a Ray Tune trial: ``ray.tune.report`` with every metric of each epoch (``loss``,
    ``val_loss``, ``accuracy``, ...; NaN as None), and ``epoch`` counted from 1 — the
    ``training_iteration`` a scheduler such as ASHA compares trials at.

    Example::

        def trial(config):
            net = dp.mlp([784, config["width"], 10], rng=0)
            dp.fit(net, loss, dp.Adam(net.parameters(), lr=config["lr"]), X, y, epochs=30,
                   validation_split=0.1, callbacks=[dp.TuneReport()], verbose=0)

        tune.Tuner(trial, param_space={...}, tune_config=tune.TuneConfig(
            metric="val_loss", mode="min", scheduler=ASHAScheduler())).fit()

    Args:
        metrics: the logs to report (None: all of them).

    Raises:
        ImportError: at the first epoch, naming the package, when Ray is not installed.
    """

    batch_end_reads_model = False

    def __init__(self, metrics: list[str] | None = None) -> None:
        self.metrics = None if metrics is None else list(metrics)

    def on_epoch_recorded(self, run: TrainingRun) -> None:
        try:
            from ray import tune
        except ImportError:
            raise ImportError("TuneReport reports to Ray Tune: pip install 'ray[tune]'") from None
        logs: dict[str, Any] = {"epoch": run.epoch}
        for key, values in run.history.items():
            if "/" in key or (self.metrics is not None and key not in self.metrics):
                continue
            value = values[-1] if values else math.nan
            logs[key] = None if math.isnan(value) else float(value)
        tune.report(logs)
