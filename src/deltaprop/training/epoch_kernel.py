"""The compiled training epoch's kernel: the dense chain's kernels and the optimizer's rule,
batch after batch, in one compiled function (:mod:`deltaprop.training.compiled_epoch` drives it).

:func:`_epoch` runs, per mini-batch, the gather, :func:`~deltaprop.backend.cpu_kernels._forward`
(z = W a + b, a = ReLU(z)), :func:`~deltaprop.backend.cpu_kernels._softmax_cross_entropy`
(Step 1: the fused δ = (ŷ − y)/N), :func:`~deltaprop.backend.cpu_kernels._backward` (Steps 2–5)
and :func:`_update`, the optimizer's compiled rule on each thread's slice of the flat buffers.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from ..backend.arrays import compiled, compiled_parallel
from ..backend.cpu_kernels import (
    ACTS_AT,
    FAN_OUT,
    _backward,
    _forward,
    _gather,
    _softmax_cross_entropy,
)
from ..optim import adam, sgd

STEPS = (adam.epoch_step, sgd.epoch_step)
"""The optimizers' compiled epoch steps this kernel can run; ``rule`` is an index into it."""


@compiled_parallel
def _update(rule, p, g, s1, s2, h, step, lr, grad_scale, threads):  # pragma: no cover
    """The optimizer's epoch step (``STEPS[rule]``) on each thread's slice of the flat
    buffers; ``h`` is the optimizer's ``epoch_hyperparameters()``."""
    f = p.dtype.type
    tiny = f(np.finfo(p.dtype).tiny)
    size = p.size
    for t in prange(threads):
        a, b = t * size // threads, (t + 1) * size // threads
        if rule == 0:
            adam.epoch_step(p[a:b], g[a:b], s1[a:b], s2[a:b], h, step, lr, grad_scale, tiny)
        else:
            sgd.epoch_step(p[a:b], g[a:b], s1[a:b], s2[a:b], h, step, lr, grad_scale, tiny)


@compiled
def _epoch(
    X,
    labels,
    order,
    batch,
    spec,
    p,
    g,
    s1,
    s2,
    rule,
    h,
    step0,
    lrs,
    clip,
    acts,
    deltas,
    xb,
    yb,
    threads,
    parts,
    losses,
    hits,
):  # pragma: no cover - compiled
    """Train on the rows X[order] in batches; returns (batches done, status): 0 all done, 1 a
    loss was not finite, 2 a gradient was not finite — the update of that batch not applied."""
    rows = order.size
    last = spec.shape[0] - 1
    for k in range((rows + batch - 1) // batch):
        start = k * batch
        n = min(batch, rows - start)
        _gather(X, labels, order[start : start + n], xb, yb, threads)
        _forward(xb, p, spec, acts, n, threads)
        total, hit = _softmax_cross_entropy(
            acts, deltas, spec[last, ACTS_AT], spec[last, FAN_OUT], yb, n
        )
        losses[k] = total / n
        hits[k] = hit
        if not math.isfinite(losses[k]):
            return k, 1
        norm = math.sqrt(_backward(xb, p, g, spec, acts, deltas, n, threads, parts))
        if not math.isfinite(norm):
            return k, 2
        scale = clip / (norm + 1e-6) if (clip > 0 and norm > clip) else 1.0
        _update(rule, p, g, s1, s2, h, step0 + k + 1, lrs[k], scale, threads)
    return (rows + batch - 1) // batch, 0
