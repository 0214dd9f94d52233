"""The compiled CPU kernels (Numba) of the dense chain: the seed's formulas fused on flat arrays.

Each is the fusion of named steps of the seed's derivation, on flat row-major arrays:
:func:`_forward` (z = W a + b, a = ReLU(z)), :func:`_softmax_cross_entropy` (Step 1: the fused
δ = (ŷ − y)/N), :func:`_backward` (Steps 2–5: ∂L/∂W = δ aᵀ, ∂L/∂b = δ, δ_prev = (Wᵀδ) ⊙ ReLU′),
:func:`_gather` (a batch's rows) and :func:`_forward_rows`, the forward pass of inference. The
training epoch (:mod:`deltaprop.training.epoch_kernel`) and compiled inference
(:mod:`deltaprop.nn.dense_chain`) call them; the plain formulas they equal are the layers' and
the loss's reference code, and ``tests/training/test_compiled_epoch.py`` and
``tests/nn/test_dense_chain.py`` compare them. Their CUDA twins are in :mod:`.cuda_kernels`.
"""

from __future__ import annotations

import math
import sys

import numpy as np
from llvmlite.binding import add_symbol
from numba import njit, prange, types
from numba.extending import get_cython_function_address

from .arrays import compiled, compiled_parallel
from .blas import gemm_address
from .tiles import ACTS_AT, GATE

_N, _T = ord("N"), ord("T")


# BLAS as symbols the compiled code links to by name: unlike ctypes pointers held in globals,
# this lets Numba cache the compiled functions on disk. NumPy's OpenBLAS where there is one,
# else SciPy's (``cython_blas``). Its integers are passed as int64 on a little-endian machine:
# a 32-bit BLAS reads the low half of each, a 64-bit one all of it, so the cached code is right
# for either; on a big-endian machine, SciPy's 32-bit BLAS with int32.
_LITTLE = sys.byteorder == "little"
for _name in ("sgemm", "dgemm"):
    _at = gemm_address(_name) if _LITTLE else None
    if _at is None:
        _at = get_cython_function_address("scipy.linalg.cython_blas", _name)
    add_symbol(f"deltaprop_{_name}", _at)
_GEMM_SIGNATURE = types.void(*([types.voidptr] * 13))
_SGEMM = types.ExternalFunction("deltaprop_sgemm", _GEMM_SIGNATURE)
_DGEMM = types.ExternalFunction("deltaprop_dgemm", _GEMM_SIGNATURE)
_INT = np.int64 if _LITTLE else np.int32


@compiled
def _gemm(ta, tb, m, n, k, A, a_at, lda, B, b_at, ldb, C, c_at, ldc):  # pragma: no cover
    """C ← op(A) op(B): column-major BLAS on flat arrays, from the given element offsets."""
    ints = np.array([m, n, k, lda, ldb, ldc], dtype=_INT)
    scalars = np.array([1, 0], dtype=A.dtype)
    chars = np.array([ta, tb], dtype=np.uint8)
    arguments = (
        chars[0:1].ctypes,
        chars[1:2].ctypes,
        ints[0:1].ctypes,
        ints[1:2].ctypes,
        ints[2:3].ctypes,
        scalars[0:1].ctypes,
        A[a_at:].ctypes,
        ints[3:4].ctypes,
        B[b_at:].ctypes,
        ints[4:5].ctypes,
        scalars[1:2].ctypes,
        C[c_at:].ctypes,
        ints[5:6].ctypes,
    )
    if A.itemsize == 4:
        _SGEMM(*arguments)
    else:
        _DGEMM(*arguments)


# Row-major (rows, cols) at offset `at` is column-major (cols, rows) with leading dimension cols;
# the layer table the kernels read, and the tiles they split products into: :mod:`.tiles`.


# --- the element-wise steps between the products, on one row's units ------------------------
# (loops over slices of their own: LLVM vectorises these, not the same loops inlined in a
# parallel kernel's body — 0.08 against 0.34 ms for the bias and gate of 128 × 256 units)


@compiled
def _add_bias_gate(z, bias, gate):  # pragma: no cover - compiled
    """z ← z + bias, then ReLU as the reference's where ``gate``: max(z, 0), NaN kept, −inf to
    0. Shapes: z, bias (units,)."""
    zero = z.dtype.type(0)
    if gate:
        for o in range(z.size):
            v = z[o] + bias[o]
            z[o] = zero if v <= 0 else v
    else:
        for o in range(z.size):
            z[o] += bias[o]


@compiled
def _add_into(total, row):  # pragma: no cover - compiled
    """total ← total + row (one row's bias gradient added). Shapes: total, row (units,)."""
    for o in range(total.size):
        total[o] += row[o]


@compiled
def _gate(d, a):  # pragma: no cover - compiled
    """d ← d ⊙ 1[a > 0], ReLU′ read from the kept output a. Shapes: d, a (units,)."""
    zero = d.dtype.type(0)
    for i in range(d.size):
        d[i] = d[i] if a[i] > 0 else zero


@compiled_parallel
def _forward(x, p, spec, acts, n, threads):  # pragma: no cover - compiled
    """Each layer's output A = ReLU(A_prev Wᵀ + b) (no ReLU where its gate is 0) for n rows of
    the flat batch x, into the activation workspace; the last layer's is the logits."""
    for layer in range(spec.shape[0]):
        w, b, fan_in, fan_out, gate, at, width, _ = spec[layer]
        a_prev, a_at = (x, 0) if layer == 0 else (acts, spec[layer - 1, ACTS_AT])
        tiles = (fan_out + width - 1) // width
        for t in prange(threads):
            for tile in range(t * tiles // threads, (t + 1) * tiles // threads):
                o0, o1 = tile * width, min((tile + 1) * width, fan_out)
                # Z[:, o0:o1] = A_prev W[o0:o1]ᵀ; + b and the gate in the same pass
                _gemm(
                    _T,
                    _N,
                    o1 - o0,
                    n,
                    fan_in,
                    p,
                    w + o0 * fan_in,
                    fan_in,
                    a_prev,
                    a_at,
                    fan_in,
                    acts,
                    at + o0,
                    fan_out,
                )
                for r in range(n):
                    row = at + r * fan_out
                    _add_bias_gate(acts[row + o0 : row + o1], p[b + o0 : b + o1], gate)


@compiled_parallel
def _forward_rows(x, p, spec, out, chunk, scratch, threads):  # pragma: no cover - compiled
    """Inference: ``out = `` the last layer's output for every row of x, ``chunk`` rows at a
    time through every layer (chunks at fixed places, each thread taking an equal share of
    them), in the thread's own two ping-pong rows of ``scratch`` (threads, 2 × chunk × widest
    hidden layer). A row's numbers pass through one core's cache, and the threads never wait
    for each other between layers. A spec row's b is −1 for a Dense layer without bias; its
    last entry is not read."""
    rows, width = x.shape
    x, out = x.ravel(), out.ravel()
    last, half = spec.shape[0] - 1, scratch.shape[1] // 2
    chunks = (rows + chunk - 1) // chunk
    for t in prange(threads):
        for c in range(t * chunks // threads, (t + 1) * chunks // threads):
            r0 = c * chunk
            n = min(chunk, rows - r0)
            a, a_at = x, r0 * width
            for layer in range(spec.shape[0]):
                w, b, fan_in, fan_out, gate, _, _, _ = spec[layer]
                z, z_at = (out, r0 * fan_out) if layer == last else (scratch[t], layer % 2 * half)
                _gemm(_T, _N, fan_out, n, fan_in, p, w, fan_in, a, a_at, fan_in, z, z_at, fan_out)
                for r in range(n):  # + b and the gate while the rows are in this core's cache
                    row = z_at + r * fan_out
                    if b >= 0:
                        _add_bias_gate(z[row : row + fan_out], p[b : b + fan_out], gate)
                    elif gate:  # no bias: ReLU alone, NaN kept
                        for o in range(row, row + fan_out):
                            z[o] = z.dtype.type(0) if z[o] <= 0 else z[o]
                a, a_at = z, z_at


@njit(fastmath={"reassoc", "contract"}, nogil=True, error_model="numpy", cache=True)
def _sum_of_squares(a, start, stop):  # pragma: no cover - compiled
    """Σ a[start:stop]², in float64; reassociated so that it runs in vector lanes (the order is
    still fixed by the compiled code: the same inputs give the same sum)."""
    s = 0.0
    for i in range(start, stop):
        s += np.float64(a[i]) * np.float64(a[i])
    return s


@compiled_parallel
def _backward(x, p, g, spec, acts, deltas, n, threads, parts):  # pragma: no cover - compiled
    """Every gradient from the logits' D (in the delta workspace), layer by layer, top down;
    returns ‖g‖², summed per tile over the gradients just computed (still in the thread's
    cache) into ``parts`` (layers, most tiles of a layer), then in that fixed order."""
    parts[:] = 0
    for layer in range(spec.shape[0] - 1, -1, -1):
        w, b, fan_in, fan_out, _, at, width, in_width = spec[layer]
        a_prev, a_at = (x, 0) if layer == 0 else (acts, spec[layer - 1, ACTS_AT])
        tiles = (fan_out + width - 1) // width
        for t in prange(threads):
            for tile in range(t * tiles // threads, (t + 1) * tiles // threads):
                o0, o1 = tile * width, min((tile + 1) * width, fan_out)
                # dW[o0:o1] = D[:, o0:o1]ᵀ A_prev; db[o0:o1] = Σ_n D[:, o0:o1]
                _gemm(
                    _N,
                    _T,
                    fan_in,
                    o1 - o0,
                    n,
                    a_prev,
                    a_at,
                    fan_in,
                    deltas,
                    at + o0,
                    fan_out,
                    g,
                    w + o0 * fan_in,
                    fan_in,
                )
                g[b + o0 : b + o1] = 0
                for r in range(n):  # row after row: the reference's order of the sum
                    row = at + r * fan_out
                    _add_into(g[b + o0 : b + o1], deltas[row + o0 : row + o1])
                parts[layer, tile] = _sum_of_squares(
                    g, w + o0 * fan_in, w + o1 * fan_in
                ) + _sum_of_squares(g, b + o0, b + o1)
        if layer > 0:
            below = spec[layer - 1, ACTS_AT]
            gate = spec[layer - 1, GATE]
            tiles = (fan_in + in_width - 1) // in_width
            for t in prange(threads):
                for tile in range(t * tiles // threads, (t + 1) * tiles // threads):
                    i0, i1 = tile * in_width, min((tile + 1) * in_width, fan_in)
                    # D_prev[:, i0:i1] = D W[:, i0:i1], then ⊙ 1[A_prev > 0]
                    _gemm(
                        _N,
                        _N,
                        i1 - i0,
                        n,
                        fan_out,
                        p,
                        w + i0,
                        fan_in,
                        deltas,
                        at,
                        fan_out,
                        deltas,
                        below + i0,
                        fan_in,
                    )
                    if gate:
                        for r in range(n):
                            row = below + r * fan_in
                            _gate(deltas[row + i0 : row + i1], acts[row + i0 : row + i1])
    return parts.sum()


@compiled
def _softmax_cross_entropy(acts, deltas, at, k, labels, n):  # pragma: no cover - compiled
    """Σ_n (logsumexp(z_n) − z_n[y_n]) and the rows whose largest logit is their class; the
    delta workspace gets D = (softmax(Z) − onehot(y)) / n (the fused δ, the 1/N owned here)."""
    total = 0.0
    hits = 0
    scale = deltas.dtype.type(1.0) / n
    for r in range(n):
        row = at + r * k
        best = 0
        for j in range(1, k):
            if acts[row + j] > acts[row + best]:
                best = j
        top = acts[row + best]
        s = deltas.dtype.type(0.0)
        for j in range(k):
            e = math.exp(acts[row + j] - top)
            deltas[row + j] = e
            s += e
        for j in range(k):
            deltas[row + j] = deltas[row + j] / s * scale
        y = labels[r]
        deltas[row + y] -= scale
        total += math.log(s) + top - acts[row + y]
        hits += best == y
    return total, hits


@compiled_parallel
def _gather(X, labels, rows, xb, yb, threads):  # pragma: no cover - compiled
    """The batch: xb ← X[rows] (flat), yb ← labels[rows], each thread copying a share of the
    rows (rows scattered over a large X are read from memory: several streams at once)."""
    n, width = rows.size, X.shape[1]
    for t in prange(threads):
        for r in range(t * n // threads, (t + 1) * n // threads):
            source = rows[r]
            xb[r * width : (r + 1) * width] = X[source]
            yb[r] = labels[source]
