"""The compiled training epoch: the fused, multi-threaded twin of the seed's formulas.

For a network of Dense layers with ReLU (or no) activations between them, softmax cross-entropy
on class labels, and SGD or Adam/AdamW, ``fit`` can run a whole epoch as one Numba function on
the machine's cores. Per mini-batch it is the reference path's step, fused:

- forward, layer by layer: ``Z = A_prev Wᵀ + b; A = ReLU(Z)`` (the seed's z = W a + b, a = f(z)),
  bias and ReLU applied in the pass that reads the product;
- the loss: softmax, ``ℓ = logsumexp(z) − z_y`` and ``D = (ŷ − y)/N`` (Step 1, the fused δ) with
  the correct count, one row at a time;
- backward, top down: ``dW = Dᵀ A_prev`` and ``db = Σ_n D`` (Steps 2 and 5), then
  ``D_prev = (D W) ⊙ 1[A_prev > 0]`` (Steps 3 and 4: the gate read from the kept output);
- the global gradient norm (the non-finite check and ``clip_norm``), summed per tile over the
  gradients just computed, then the optimizer's own compiled rule on each thread's share of
  fixed slices of the flat buffers.

Each product is split by output units into tiles at fixed places (one per core:
:func:`~deltaprop.backend.tiles.tile_width`), each thread taking whole tiles: it computes
a tile with single-threaded BLAS (NumPy's OpenBLAS) while OpenBLAS's own threads are held
at one, then adds the bias, applies the gate and sums the bias gradient of the same units while
they are in its cache. Neither the tiles nor the order of any reduction depend on the thread
count, so an epoch gives the same numbers, to the bit, on any number of threads — and the
count may change between segments of an epoch, as :mod:`deltaprop.training.threads` chooses it
by the load.
The readable reference path (``fit(..., engine="reference")``) computes the same numbers to
float32 rounding; the tests compare the two.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from typing import Any

import numpy as np

from ..backend.arrays import Array
from ..backend.blas import one_blas_thread
from ..backend.tiles import ACTS_AT, FAN_OUT, OUT_TILE
from ..nn.dense_chain import layer_table, numba_threads, unsupported_chain
from ..nn.losses import Loss
from ..nn.sequential import Sequential
from ..optim.optimizer import Optimizer
from .metrics import Metrics
from .protocol import Callback, TrainingRun
from .threads import Threads

# --- what it runs, and the buffers it runs in -------------------------------------------------


def _kernel() -> Any:
    """The kernel module (:mod:`.epoch_kernel`), imported on first use: it loads Numba and the
    compiled code, which ``import deltaprop`` leaves for later."""
    from . import epoch_kernel

    return epoch_kernel


def unsupported(
    model: Sequential, loss: Loss, optimizer: Optimizer, y: Array, weighted: bool
) -> str | None:
    """Why the compiled epoch cannot train this (None when it can): asked of the layers, the
    loss and the optimizer, which each declare what the compiled kernels can run."""
    if model.device.name != "cpu":
        return f"the model is on {model.device.name} (the compiled epoch runs on the CPU)"
    reason = unsupported_chain(model.layers)
    if reason is not None:
        return reason
    for layer in model.layers:
        reason = layer.compiled_epoch_refusal()
        if reason is not None:
            return reason
    if loss.compiled_as != "softmax_cross_entropy" or y.ndim != 1:
        return "its loss is not softmax cross-entropy on class labels"
    if weighted:
        return "the rows are weighted"
    step = type(optimizer).epoch_step
    if step is None or step not in _kernel().STEPS:
        return f"{type(optimizer).__name__} has no compiled rule (SGD, Adam and AdamW do)"
    if optimizer.flat_buffers() is None:
        return "its parameters do not live in one flat buffer"
    return None


class CompiledEpochs:
    """The layer table, workspaces and arguments of :func:`_epoch` for one ``fit`` call."""

    def __init__(
        self, model: Sequential, loss: Loss, optimizer: Optimizer, X: Array, y: Array, batch: int
    ) -> None:
        buffers = optimizer.flat_buffers()
        assert buffers is not None  # unsupported() says so first
        values = buffers[0]
        self.spec = layer_table(model.layers, values, batch)
        at = int(self.spec[-1, ACTS_AT] + batch * self.spec[-1, FAN_OUT])  # the workspaces' length
        self.optimizer, self.X, self.labels, self.batch = optimizer, X, y.astype(np.int64), batch
        self.acts = np.empty(at, values.dtype)
        self.deltas = np.empty(at, values.dtype)
        self.xb = np.empty(batch * X.shape[1], values.dtype)
        self.yb = np.empty(batch, np.int64)
        tiles = int((-(-self.spec[:, FAN_OUT] // self.spec[:, OUT_TILE])).max())
        self.parts = np.zeros((len(self.spec), tiles))  # each tile's part of ‖g‖²
        self.rule = _kernel().STEPS.index(type(optimizer).epoch_step)
        self.h = optimizer.epoch_hyperparameters()
        self._limited = False  # inside train_epoch's one-BLAS-thread scope

    def run(self, order: Array, threads: int) -> tuple[int, int, Array, Array]:
        """Train on the rows ``order``: (batches done, status, per-batch losses, hits).

        Raises:
            ValueError: for a row index outside X (the kernel reads rows unchecked).
        """
        if order.size and (order.min() < 0 or order.max() >= len(self.X)):
            bad = int(order.min()) if order.min() < 0 else int(order.max())
            raise ValueError(f"rows must be indices in [0, {len(self.X)}), got {bad}")
        n_batches = -(-len(order) // self.batch)
        rates = np.array(self.optimizer.upcoming_lrs(n_batches))
        buffers = self.optimizer.flat_buffers()
        assert buffers is not None
        values, grads, state = buffers
        second = state[1] if len(state) > 1 else state[0]
        losses = np.full(n_batches, np.nan)
        hits = np.zeros(n_batches, dtype=np.int64)
        clip = self.optimizer.clip_norm or 0.0
        steps = self.optimizer.step_count
        with self._one_blas_thread():
            k = _kernel()
            done, status = k._epoch(
                k.Rows(self.X, self.labels, order.astype(np.int64), self.batch),
                k.Network(self.spec, values, grads),
                k.Update(self.rule, state[0], second, self.h, steps, rates, clip),
                k.Workspaces(self.acts, self.deltas, self.xb, self.yb, self.parts),
                threads,
                losses,
                hits,
            )
        self.optimizer.step_count += done
        return int(done), int(status), losses, hits

    # --- one batch at a time, for the data-parallel epoch ----------------------------------

    def gradients(self, rows: Array, threads: int) -> tuple[float, int, float]:
        """The gradients of one batch of ``rows`` into the flat gradient buffer (the loss's
        mean over these rows): (summed loss, correct rows, ‖g‖²)."""
        buffers = self.optimizer.flat_buffers()
        assert buffers is not None
        values, grads, _ = buffers
        k = _kernel()
        work = k.Workspaces(self.acts, self.deltas, self.xb, self.yb, self.parts)
        with self._one_blas_thread():
            total, hits, squares = k._gradients(
                k.Rows(self.X, self.labels, rows.astype(np.int64), self.batch),
                k.Network(self.spec, values, grads),
                work,
                threads,
                0,
                len(rows),
            )
        return float(total), int(hits), float(squares)

    def update(self, grad_scale: float, threads: int) -> None:
        """The optimizer's compiled rule on the flat buffers, one step, with the gradients in
        place (summed over the ranks), scaled by ``grad_scale`` (clipping)."""
        buffers = self.optimizer.flat_buffers()
        assert buffers is not None
        values, grads, state = buffers
        second = state[1] if len(state) > 1 else state[0]
        lr = float(self.optimizer.upcoming_lrs(1)[0])
        step = self.optimizer.step_count + 1
        rule, h = self.rule, self.h
        _kernel()._update(rule, values, grads, state[0], second, h, step, lr, grad_scale, threads)
        self.optimizer.step_count = step

    def train_epoch(
        self, run: TrainingRun, order: Array, metrics: Metrics, threads: Threads
    ) -> tuple[float, float, int] | None:
        """One epoch over ``order``, recording each batch in ``metrics`` and telling the
        callbacks; returns (loss, gradient norm, batch) at a non-finite loss or gradient (that
        batch's update not applied), else None.

        A callback that looks at the model after every batch (``batch_end_reads_model``, such
        as Diagnostics reading the gradients) gets a run of one batch at a time, so it sees
        that batch's gradients and the updated weights, as on the reference path; a display
        gets runs of :data:`DISPLAY_BATCHES` batches; otherwise the epoch is one run — or,
        where ``threads`` chooses the thread count, runs as long as its segments."""
        n_batches = -(-len(order) // self.batch)
        hooked = [c for c in run.callbacks if type(c).on_batch_end is not Callback.on_batch_end]
        chunk = n_batches
        if hooked:
            chunk = 1 if any(c.batch_end_reads_model for c in hooked) else DISPLAY_BATCHES
        with one_blas_thread():  # one BLAS thread inside each of ours
            self._limited = True
            try:
                return self._train_runs(run, order, metrics, threads, chunk)
            finally:
                self._limited = False

    def _one_blas_thread(self) -> Any:
        return contextlib.nullcontext() if self._limited else one_blas_thread()

    def _train_runs(
        self, run: TrainingRun, order: Array, metrics: Metrics, threads: Threads, chunk: int
    ) -> tuple[float, float, int] | None:
        n_batches = -(-len(order) // self.batch)
        first = 0
        while first < n_batches:
            size = min(chunk, threads.segment(n_batches - first))
            rows = order[first * self.batch : (first + size) * self.batch]
            count = threads.count()
            started = time.perf_counter()
            with numba_threads(count):
                done, status, losses, hits = self.run(rows, count)
            threads.took(done, time.perf_counter() - started)
            for k in range(done):
                n = min(self.batch, len(rows) - k * self.batch)
                metrics.add(float(losses[k]), float(n), n, int(hits[k]))
                for callback in run.callbacks:
                    callback.on_batch_end(run, first + k, float(losses[k]))
            if status:
                norm = math.nan if status == 1 else math.inf
                return float(losses[done]), norm, first + done
            first += size
        return None


def first_compile() -> bool:
    """Whether this machine has not compiled the training epoch yet: nothing in this process and
    no code in Numba's cache on disk (the first run compiles for about 20 s; every later one
    loads the cached code). False when it cannot tell."""
    epoch = _kernel()._epoch
    cache: Any = getattr(epoch, "_cache", None)  # Numba's own: its index file on disk
    index = getattr(getattr(cache, "_cache_file", None), "_index_path", None)
    if not isinstance(index, str):
        return False
    return not epoch.overloads and not os.path.exists(index)


COMPILING = (
    "compiling the training epoch for this machine (the first run only, about 20 s; later runs "
    "load it from the cache)"
)
"""What ``fit`` says before the first compile, where it would otherwise sit silent."""


DISPLAY_BATCHES = 16
"""Batches per compiled run when a display follows training batch by batch."""


AUTO_WORK = 1e10
"""``engine="auto"`` compiles a run of at least this many rows × parameters × epochs (one
Fashion-MNIST epoch of a 784-256-128-10 network, 2–3 s on the reference path): the very first
compiled run on a machine compiles the epoch for 22 s where the reference path's kernels take
3 s (then both are cached on disk), which a smaller run would not earn back. Loading the cached
code costs the two paths alike, 0.8–1.1 s per process."""


def compiled_epochs(
    engine: str,
    model: Sequential,
    loss: Loss,
    optimizer: Optimizer,
    data: tuple[Array, Array, Array | None],
    batch: int,
    work: float = math.inf,
) -> CompiledEpochs | None:
    """The compiled epochs for ``fit``'s ``engine``: ``"auto"`` uses them where they are
    supported and the run's ``work`` (rows × parameters × epochs) is at least
    :data:`AUTO_WORK`, at any batch size, ``"compiled"`` insists, ``"reference"`` never does
    (None: the reference path).

    Fashion-MNIST, 784-256-128-10, Adam, 2 threads (``benchmarks/compiled_step.py --rows 20000
    --rounds 5``): the compiled epoch took 0.62× the reference path's time at batch 32, 0.73×
    at 128 and 0.81× at 1024; in another run 0.75× at 256 and 1.04× at 4096 (784-4096-4096-10:
    0.84× at 128, 1.01× at 1024). On a busy machine it is the one that keeps its speed
    (``benchmarks/contention.py``).

    Raises:
        ValueError: an unknown engine, or ``"compiled"`` for what it cannot train (the reason).
    """
    if engine not in ("auto", "compiled", "reference"):
        raise ValueError(f"engine must be 'auto', 'compiled' or 'reference', got {engine!r}")
    if engine == "reference" or (engine == "auto" and work < AUTO_WORK):
        return None
    X, y, weights = data
    reason = unsupported(model, loss, optimizer, y, weights is not None)
    if reason is not None:
        if engine == "compiled":
            raise ValueError(f"fit: engine='compiled' cannot train this: {reason}")
        return None
    return CompiledEpochs(model, loss, optimizer, np.ascontiguousarray(X), y, batch)
