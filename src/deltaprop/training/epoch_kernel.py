"""The compiled training epoch's kernel: the dense chain's kernels and the optimizer's rule,
batch after batch, in one compiled function (:mod:`deltaprop.training.compiled_epoch` drives it).

:func:`_epoch` runs, per mini-batch, the gather, :func:`~deltaprop.backend.cpu_kernels._forward`
(z = W a + b, a = ReLU(z)), :func:`~deltaprop.backend.cpu_kernels._softmax_cross_entropy`
(Step 1: the fused δ = (ŷ − y)/N), :func:`~deltaprop.backend.cpu_kernels._backward` (Steps 2–5)
and :func:`_update`, the optimizer's compiled rule on each thread's slice of the flat buffers.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import prange

from ..backend.arrays import Array, compiled, compiled_parallel
from ..backend.cpu_kernels import _backward, _forward, _gather, _softmax_cross_entropy
from ..backend.tiles import ACTS_AT, FAN_OUT, ROW_TILE
from ..optim import adam, sgd

STEPS = (adam.epoch_step, sgd.epoch_step)
"""The optimizers' compiled epoch steps this kernel can run; ``rule`` is an index into it."""


@compiled_parallel
def _update(rule, p, g, s1, s2, h, step, lr, grad_scale, threads):  # pragma: no cover
    """The optimizer's epoch step (``STEPS[rule]``) on each thread's slice of the flat
    buffers (whole :data:`~deltaprop.backend.tiles.ROW_TILE` slices); ``h`` is the
    optimizer's ``epoch_hyperparameters()``."""
    f = p.dtype.type
    tiny = f(np.finfo(p.dtype).tiny)
    size = p.size
    slices = (size + ROW_TILE - 1) // ROW_TILE
    for t in prange(threads):
        a = t * slices // threads * ROW_TILE
        b = min((t + 1) * slices // threads * ROW_TILE, size)
        if rule == 0:
            adam.epoch_step(p[a:b], g[a:b], s1[a:b], s2[a:b], h, step, lr, grad_scale, tiny)
        else:
            sgd.epoch_step(p[a:b], g[a:b], s1[a:b], s2[a:b], h, step, lr, grad_scale, tiny)


class Rows(NamedTuple):
    """The rows to train on: ``X`` (rows, F), ``labels`` (rows,) int64, ``order`` (n,) int64
    (the rows, in the epoch's order), ``batch`` rows per update."""

    X: Array
    labels: Array
    order: Array
    batch: int


class Network(NamedTuple):
    """The layer table (:data:`~deltaprop.backend.cpu_kernels.COLUMNS`), the flat parameters
    ``p`` and their gradients ``g`` (P,)."""

    spec: Array
    p: Array
    g: Array


class Update(NamedTuple):
    """The optimizer: ``rule`` (an index into :data:`STEPS`), its state arrays ``s1``, ``s2``
    (P,), its ``h`` (``epoch_hyperparameters()``), the updates done before (``step0``), each
    batch's learning rate ``lrs`` (batches,) and ``clip_norm`` (0: none)."""

    rule: int
    s1: Array
    s2: Array
    h: Array
    step0: int
    lrs: Array
    clip: float


class Workspaces(NamedTuple):
    """Intermediates reused from batch to batch: activations and deltas of every layer, the
    gathered batch ``xb``, ``yb``, and each tile's part of each layer's squared-gradient
    sum ``parts`` (layers, most tiles of a layer:
    :func:`~deltaprop.backend.tiles.tile_width`)."""

    acts: Array
    deltas: Array
    xb: Array
    yb: Array
    parts: Array


@compiled
def _gradients(data, net, work, threads, start, n):  # pragma: no cover - compiled
    """The gradients of one batch, rows ``data.order[start : start + n]``, into ``net.g``:
    the gather, the forward pass, Step 1 (δ = (ŷ − y)/n) and Steps 2–5; returns (the batch's
    summed loss Σ ℓ, its correct rows, ‖g‖²). The update is the caller's."""
    X, labels, order, batch = data
    spec, p, g = net
    acts, deltas, xb, yb, parts = work
    last = spec.shape[0] - 1
    _gather(X, labels, order[start : start + n], xb, yb, threads)
    _forward(xb, p, spec, acts, n, threads)
    total, hit = _softmax_cross_entropy(
        acts, deltas, spec[last, ACTS_AT], spec[last, FAN_OUT], yb, n
    )
    if not math.isfinite(total):
        return total, hit, math.nan
    return total, hit, _backward(xb, p, g, spec, acts, deltas, n, threads, parts)


@compiled
def _epoch(data, net, update, work, threads, losses, hits):  # pragma: no cover - compiled
    """Train on the rows ``data.X[data.order]`` in batches (:class:`Rows`, :class:`Network`,
    :class:`Update`, :class:`Workspaces`), each batch's loss and correct count written into
    ``losses`` and ``hits``; returns (batches done, status): 0 all done, 1 a loss was not
    finite, 2 a gradient was not finite — the update of that batch not applied."""
    spec, p, g = net
    rule, s1, s2, h, step0, lrs, clip = update
    rows, batch = data.order.size, data.batch
    for k in range((rows + batch - 1) // batch):
        start = k * batch
        n = min(batch, rows - start)
        total, hit, squares = _gradients(data, net, work, threads, start, n)
        losses[k] = total / n
        hits[k] = hit
        if not math.isfinite(losses[k]):
            return k, 1
        norm = math.sqrt(squares)
        if not math.isfinite(norm):
            return k, 2
        scale = clip / (norm + 1e-6) if (clip > 0 and norm > clip) else 1.0
        _update(rule, p, g, s1, s2, h, step0 + k + 1, lrs[k], scale, threads)
    return (rows + batch - 1) // batch, 0
