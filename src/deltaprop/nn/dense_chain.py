"""Compiled inference: the forward pass as one multi-threaded function, and what it shares with
the compiled training epoch (:mod:`deltaprop.training.compiled_epoch`).

For a chain of Dense layers with ReLU (or no) activations between them,
:meth:`Sequential.predict_logits <deltaprop.nn.sequential.Sequential.predict_logits>` can compute
``Z = A_prev Wᵀ + b; A = ReLU(Z)`` layer after layer in
:func:`deltaprop.backend.cpu_kernels._forward_rows`:
each thread takes an equal share of the rows (chunks set by the machine's cores, so that the
numbers do not depend on the thread count) through every layer, a chunk at a time, with
single-threaded BLAS (NumPy's OpenBLAS: :mod:`deltaprop.backend.blas`) for the product, and
adds the bias and applies the gate while the chunk is in its core's cache. Rows are
independent, so the threads never wait for each other; the reference path (one layer at a time
over a batch, OpenBLAS's own threads inside each product) computes the same numbers to float
rounding.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence

import numpy as np

from ..backend.arrays import Array, address
from ..backend.blas import one_blas_thread
from ..backend.tiles import COLUMNS, FAN_OUT, tile_width
from .layer import Layer


def threads_in_use() -> int:
    """Threads the compiled kernels split their work over: Numba's (``NUMBA_NUM_THREADS``, or
    ``numba.set_num_threads``), by default all the cores this process may use — and never more
    than ``OMP_NUM_THREADS`` where that is set: the thread budget that Dask's workers, joblib's
    worker processes (``GridSearchCV(n_jobs=...)``) and batch schedulers give each process, so
    that several of them do not oversubscribe the cores."""
    from numba import get_num_threads  # imported when the kernels are first used

    threads = int(get_num_threads())
    budget = os.environ.get("OMP_NUM_THREADS", "").strip()
    if budget.isdigit() and int(budget) > 0:
        threads = min(threads, int(budget))
    return threads


@contextlib.contextmanager
def numba_threads(count: int) -> Iterator[None]:
    """Run Numba's parallel loops on ``count`` threads meanwhile (on this thread: Numba's count
    is per calling thread), so that a kernel told to use fewer threads does not wake the rest
    of the pool to wait for them; the count before comes back after."""
    from numba import get_num_threads, set_num_threads

    before = int(get_num_threads())
    set_num_threads(max(1, min(count, before)))
    try:
        yield
    finally:
        set_num_threads(before)


# --- the layer table --------------------------------------------------------------------------


def _kind(layer: Layer) -> str | None:
    # declared by the layer's own class: a subclass of Dense may compute something else
    kind = type(layer).__dict__.get("compiled_as")
    return kind if isinstance(kind, str) else None


def unsupported_chain(layers: Sequence[Layer]) -> str | None:
    """Why the compiled kernels cannot run these layers (None when they can): they run Dense
    layers, each followed by at most one ReLU or Identity, starting with a Dense layer or an
    Identity before one."""
    kinds = [_kind(layer) for layer in layers]
    for layer, kind in zip(layers, kinds, strict=True):
        if kind is None:
            return (
                f"it has a {type(layer).__name__} layer "
                "(the compiled kernels run Dense, ReLU and Identity)"
            )
    if not kinds or kinds[-1] != "dense":
        return "the network does not end in a Dense layer"
    if kinds[0] == "relu":
        return "it starts with a ReLU (the compiled kernels apply ReLU to a Dense layer's output)"
    for before, after in zip(kinds, kinds[1:], strict=False):
        if before != "dense" and after != "dense":
            return "two activations follow each other"
    return None


def offset(view: Array, flat: Array) -> int:
    """Where ``view`` starts in ``flat``, in elements (it is a view into it)."""
    start = address(view) - address(flat)
    assert 0 <= start < flat.nbytes and view.flags.c_contiguous
    return start // flat.itemsize


def layer_table(layers: Sequence[Layer], values: Array, rows: int) -> Array:
    """The kernels' layer table for a chain that :func:`unsupported_chain` accepts: one row per
    Dense layer, with the columns of :data:`~deltaprop.backend.tiles.COLUMNS` (the
    workspaces' offsets for ``rows`` rows)."""
    table, at = [], 0
    for i, layer in enumerate(layers):
        if _kind(layer) != "dense":
            continue
        tensors = layer.state_dict()
        W, b = tensors["weight"], tensors.get("bias")
        gate = i + 1 < len(layers) and _kind(layers[i + 1]) == "relu"
        b_at = -1 if b is None else offset(b, values)
        row = {
            "w_at": offset(W, values),
            "b_at": b_at,
            "fan_in": W.shape[1],
            "fan_out": W.shape[0],
            "gate": int(gate),
            "acts_at": at,
            "out_tile": tile_width(W.shape[0]),
            "in_tile": tile_width(W.shape[1]),
        }
        table.append([row[column] for column in COLUMNS])
        at += rows * W.shape[0]
    return np.array(table, dtype=np.int64)


# --- inference ----------------------------------------------------------------------------------


PREDICT_AUTO_WORK = 1e9
"""``engine="auto"`` predicts with the compiled kernel from this many rows × parameters (e.g.
4,300 rows of a 784-256-128-10 network). Below it the reference path is as fast, and it does
not load the compiled code (the first compiled call in a process takes ~0.5 s; the first on a
machine compiles it, a few seconds, then it is cached on disk)."""


def compiled_predictions(engine: str, layers: Sequence[Layer], device: str, work: float) -> bool:
    """Whether ``predict_logits``'s ``engine`` runs the compiled kernel: ``"auto"`` where it can
    and the call's ``work`` (rows × parameters) is at least :data:`PREDICT_AUTO_WORK`,
    ``"compiled"`` insists, ``"reference"`` never does.

    Raises:
        ValueError: an unknown engine, or ``"compiled"`` for what it cannot run (the reason).
    """
    if engine not in ("auto", "compiled", "reference"):
        raise ValueError(f"engine must be 'auto', 'compiled' or 'reference', got {engine!r}")
    if engine == "reference" or (engine == "auto" and work < PREDICT_AUTO_WORK):
        return False
    reason = (
        unsupported_chain(layers)
        if device == "cpu"
        else f"the model is on {device} (the compiled kernels run on the CPU)"
    )
    if reason is not None and engine == "compiled":
        raise ValueError(f"predict_logits: engine='compiled' cannot run this model: {reason}")
    return reason is None


def forward_rows(
    layers: Sequence[Layer], values: Array, x: Array, batch_size: int, threads: int | None = None
) -> Array:
    """The last layer's output for every row of ``x``, computed by the compiled kernel on
    ``threads`` threads (default :func:`threads_in_use`), each taking its share of the rows
    ``batch_size`` at a time; a new array that belongs to the caller.

    ``layers`` must pass :func:`unsupported_chain`, their parameters living in ``values`` (a
    model's flat buffer, on the CPU); ``x`` of the parameters' dtype.

    Shapes: x (N, in) -> (N, out).
    """
    threads = threads_in_use() if threads is None else threads
    x = np.ascontiguousarray(x)
    table = layer_table(layers, values, 0)
    out = np.empty((x.shape[0], int(table[-1, FAN_OUT])), dtype=values.dtype)
    # chunks by the machine's cores, not the thread count (the same numbers on any number of
    # threads): a multiple of the cores of them, at most batch_size rows each
    cores = os.cpu_count() or 1
    chunks = cores * max(1, -(-x.shape[0] // (cores * batch_size)))
    chunk = max(1, -(-x.shape[0] // chunks))
    threads = max(1, min(threads, -(-x.shape[0] // chunk)))
    widest = int(table[:-1, FAN_OUT].max()) if len(table) > 1 else 0
    scratch = np.empty((threads, 2 * chunk * widest), dtype=values.dtype)
    from ..backend import cpu_kernels  # compiled code, loaded when first used

    with one_blas_thread():
        cpu_kernels._forward_rows(x, values, table, out, chunk, scratch, threads)
    return out
