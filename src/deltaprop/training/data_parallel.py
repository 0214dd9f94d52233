"""``fit(..., distributed=...)``: the same training on N MPI ranks, data-parallel.

Every rank holds the same model, optimizer and generator, so each draws the same permutation of
the training rows; of every batch, rank r takes its consecutive share
(:func:`~deltaprop.distributed.sharding.part`) and computes the seed's backward pass on those
rows alone. Its loss divides by its own rows (or their weights), so its gradient is scaled by
its share of the batch, n_r / N, before one in-place allreduce sums the flat gradient buffer:

    ∂L/∂θ = Σ_r (n_r / N) ∂L_r/∂θ,  L = Σ_r (n_r / N) L_r,

the gradient of the batch's mean loss, as one process computes it (to float rounding). The L2
penalty's term, λ W / N, is added once after the sum, on every rank alike; then every rank takes
the same optimizer step. The loss, the finite check and the epoch's metric sums are reduced with
the gradients, so the non-finite rollback, early stopping, schedules on plateau and every
callback decide the same on every rank; only rank 0 runs the callbacks that print or write
files (:attr:`~deltaprop.training.protocol.Callback.root_only`). The compiled epoch runs the
same way, batch by batch: its compiled gradients, the sum, its compiled update.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from ..backend.arrays import Array, to_host
from ..distributed.communicator import Communicator
from ..distributed.sharding import check_same, share
from ..nn.losses import Loss
from ..nn.sequential import Sequential
from .compiled_epoch import CompiledEpochs
from .evaluation import evaluation_metrics
from .inputs import Batches
from .metrics import Metrics
from .protocol import TrainingRun


class DataParallel:
    """The data-parallel parts of one ``fit``: its communicator, its steps and its sums."""

    def __init__(self, comm: Communicator) -> None:
        if not isinstance(comm, Communicator):
            raise TypeError(
                "distributed must be a deltaprop.distributed.Communicator (World()) or True, "
                f"got {type(comm).__name__}"
            )
        self.comm = comm

    # --- before training ----------------------------------------------------------------------

    def check(self, run: TrainingRun) -> None:
        """Refuse what would not give the one-process result, then check that every rank was
        started with the same job (the same model and weights, data, seed and settings).

        Raises:
            ValueError: naming the layer or the fact that differs between ranks.
        """
        refusal = run.model.data_parallel_refusal()
        if refusal is not None:
            raise ValueError(f"distributed: {refusal}")
        state = run.rng.bit_generator.state
        check_same(
            self.comm,
            {
                "models": repr(run.model),
                "initial weights": _digest(to_host(run.model.flat_values)),
                "losses": repr(run.loss),
                "optimizers": repr(run.optimizer),
                "data": run.data_fingerprint(),
                "epochs": run.epochs,
                "seeds": _digest(np.frombuffer(repr(state).encode(), dtype=np.uint8)),
            },
        )

    @contextmanager
    def threads(self) -> Iterator[None]:
        """BLAS threads: this host's cores shared among its ranks."""
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=self.comm.threads_per_rank(), user_api="blas"):
            yield

    # --- one epoch ----------------------------------------------------------------------------

    def train_epoch(
        self, run: TrainingRun, order: Array, metrics: Metrics, batches: Batches
    ) -> tuple[float, float, int] | None:
        """Every batch of ``order``, this rank's share of it. Returns (loss, gradient norm,
        batch) at a non-finite loss or gradient (the same on every rank), else None."""
        weights = None if batches.weights is None else to_host(batches.weights)
        try:
            for batch, start in enumerate(range(0, len(order), run.batch_size)):
                rows = order[start : start + run.batch_size]
                total = float(len(rows)) if weights is None else float(weights[rows].sum()) or 1.0
                first, stop = share(len(rows), self.comm.rank, self.comm.size)
                run.model.share_batch(first, len(rows), self.comm.sum_)
                xb, yb, wb = batches.gather(rows[first:stop])
                mine = float(len(xb)) if wb is None else float(to_host(wb).sum())
                value, norm, logits = self._step(run, xb, yb, wb, mine, total)
                if not (math.isfinite(value) and math.isfinite(norm)):
                    return value, norm, batch
                if len(xb):
                    metrics.update(logits, yb, value, mine)
                for callback in run.callbacks:
                    callback.on_batch_end(run, batch, value)
        finally:
            run.model.share_batch(0, 0)  # the whole batch is here again: evaluation, rollback
        self.merge(metrics)
        return None

    def train_compiled_epoch(
        self,
        run: TrainingRun,
        order: Array,
        metrics: Metrics,
        compiled: CompiledEpochs,
        threads: int,
    ) -> tuple[float, float, int] | None:
        """:meth:`train_epoch` with each rank's share through the compiled kernels: its
        gradients compiled, the sum over the ranks, then the optimizer's compiled rule."""
        threads = min(threads, self.comm.threads_per_rank())
        grads = run.model.flat_grads
        clip = run.optimizer.clip_norm or 0.0
        for batch, start in enumerate(range(0, len(order), run.batch_size)):
            rows = order[start : start + run.batch_size]
            first, stop = share(len(rows), self.comm.rank, self.comm.size)
            mine, total = rows[first:stop], float(len(rows))
            summed, hits = 0.0, 0
            if len(mine):
                summed, hits, _ = compiled.gradients(mine, threads)
                grads *= grads.dtype.type(len(mine) / total)  # this rank's share of the mean
            else:
                grads[...] = 0
            (value,) = self.comm.sum_values(summed / total)
            if not math.isfinite(value):
                return value, math.nan, batch
            self.comm.sum_(grads)
            norm = float(np.sqrt(np.dot(grads.astype(np.float64), grads.astype(np.float64))))
            if not math.isfinite(norm):
                return value, norm, batch
            compiled.update(clip / (norm + 1e-6) if 0 < clip < norm else 1.0, threads)
            if len(mine):
                metrics.add(value, float(len(mine)), len(mine), hits)
            for callback in run.callbacks:
                callback.on_batch_end(run, batch, value)
        self.merge(metrics)
        return None

    def _step(
        self, run: TrainingRun, xb: Array, yb: Array, wb: Array | None, mine: float, total: float
    ) -> tuple[float, float, Array]:
        """Forward and backward on this rank's rows, the gradients summed over the ranks, the
        penalty added once, one optimizer step: :func:`~deltaprop.training.loop.train_step`
        for a batch spread over the ranks (``mine`` and ``total``: this rank's rows and the
        batch's, or their weights). Every rank
        runs the forward and the backward, with no rows too: dropout draws the batch's masks
        and batch normalization sums its statistics on every rank alike."""
        model, loss = run.model, run.loss
        logits = model.forward(xb, training=True)
        portion = 0.0
        if len(xb):
            portion = loss.forward_prepared(logits, yb, wb) * mine / total
        (value,) = self.comm.sum_values(portion)  # inf or NaN on every rank if on one
        if not math.isfinite(value):
            return value, math.nan, logits
        empty = np.zeros((0, logits.shape[1]), logits.dtype)
        model.backward_params(loss.backward() if len(xb) else empty)
        grads = model.flat_grads
        grads *= grads.dtype.type(mine / total)  # this rank's share of the batch mean
        self.comm.sum_(grads)
        penalty = model.penalty()
        if penalty:  # added once, after the sum: λ W / N
            value += penalty / total
            model.penalty_backward(1.0 / total)
        norm = run.optimizer.grad_norm()
        if math.isfinite(norm):
            run.optimizer.step(grad_norm=norm)
        return value, norm, logits

    # --- what every rank reports alike ----------------------------------------------------------

    def merge(self, metrics: Metrics) -> None:
        """Replace this rank's metric sums by the sums over every rank."""
        totals = self.comm.sum_values(*metrics.sums())
        metrics.set_sums(totals)

    def validate(
        self, model: Sequential, loss: Loss, X: Array, y: Array, weights: Array | None
    ) -> dict[str, float]:
        """The validation rows' metrics: each rank scores its share, and the sums are merged."""
        first, stop = share(len(X), self.comm.rank, self.comm.size)
        mine = slice(first, stop)
        metrics = evaluation_metrics(
            model, loss, X[mine], y[mine], None if weights is None else weights[mine], y_reference=y
        )
        self.merge(metrics)
        return metrics.result("val_")

    def abort(self, error: BaseException) -> None:
        """An error on one rank ends the job on every rank, rather than leave them waiting."""
        if self.comm.size > 1:
            self.comm.abort(error)


def _digest(array: Array) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).data).hexdigest()[:16]


def resolve(distributed: Any) -> DataParallel | None:
    """``fit``'s ``distributed`` argument: None or False (one process), True (every rank of
    ``mpirun``), or a :class:`~deltaprop.distributed.communicator.Communicator`."""
    if distributed is None or distributed is False:
        return None
    if distributed is True:
        from ..distributed.communicator import World

        return DataParallel(World())
    return DataParallel(distributed)
