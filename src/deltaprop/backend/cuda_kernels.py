"""The GPU twins of the compiled CPU kernels: one CUDA source, launched through CuPy.

Each kernel here is the same loop as the Numba kernel of the same name in
:mod:`deltaprop.nn.functional` or the optimizer's own module of :mod:`deltaprop.optim`, written
in CUDA C and taking the same keyword arguments. Every loop is grid-stride (thread t of
T handles elements t, t + T, t + 2T, ...), so a launch of any size is correct — and so is a
"launch" of one thread: the same source compiled by a C++ compiler on the CPU runs each kernel
as a plain loop, which is how ``tests/backend/test_cuda_kernels.py`` checks every kernel against its
plain formula on a machine without a GPU (``tests/backend/test_cuda_source.py`` compiles the source
with NVRTC, the compiler CuPy uses, for today's GPU generations).

Sums that a caller receives (the loss of a batch, the count of correct rows) are made in a fixed
order — each row's value first, then one thread adding them up row after row, as the CPU does —
so a step on the GPU is deterministic and equals the CPU's to float rounding.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import ShapeError
from .arrays import Array, is_array

SOURCE = r"""
// T: float or double, defined before this source (it is compiled once per dtype).
__device__ inline float dp_exp(float x) { return expf(x); }
__device__ inline double dp_exp(double x) { return exp(x); }
__device__ inline float dp_log(float x) { return logf(x); }
__device__ inline double dp_log(double x) { return log(x); }
__device__ inline float dp_sqrt(float x) { return sqrtf(x); }
__device__ inline double dp_sqrt(double x) { return sqrt(x); }
__device__ inline T dp_abs(T x) { return x < (T)0 ? -x : x; }

#define DP_FOR(i, n) \
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
         i += (long long)blockDim.x * gridDim.x)

// ReLU and its gate, one pass: a = z > 0 ? z : 0 (NaN passes), gate = 1[z > 0]
extern "C" __global__ void relu_and_gate(const T* z, T* a, bool* gate, long long n) {
    DP_FOR(i, n) {
        T zi = z[i];
        gate[i] = zi > (T)0;
        a[i] = zi <= (T)0 ? (T)0 : zi;
    }
}

// out = grad where the gate is open, grad * 0 where it is closed (NaN still shows)
extern "C" __global__ void gate(const T* grad, const bool* gate, T* out, long long n) {
    DP_FOR(i, n) { out[i] = gate[i] ? grad[i] : grad[i] * (T)0; }
}

// grad += scale * x (the L2 penalty's gradient)
extern "C" __global__ void add_scaled(T* grad, const T* x, T scale, long long n) {
    DP_FOR(i, n) { grad[i] += scale * x[i]; }
}

// out[j] = sum_n D[n, j], row after row (the bias gradient); one thread per column
extern "C" __global__ void sum_over_batch(const T* D, T* out, long long rows, long long cols) {
    DP_FOR(j, cols) {
        T s = (T)0;
        for (long long r = 0; r < rows; ++r) s += D[r * cols + j];
        out[j] = s;
    }
}

// Row n of softmax(z) into P, and logsumexp(z_n) - z_n[y_n] into loss[n] (NaN for a label
// outside [0, K)); one thread per row
extern "C" __global__ void softmax_cross_entropy_rows(
        const T* z, const long long* labels, T* P, double* loss, long long rows, long long K) {
    DP_FOR(n, rows) {
        const T* zn = z + n * K;
        T* Pn = P + n * K;
        long long label = labels[n];
        if (label < 0 || label >= K) { loss[n] = nan(""); continue; }
        T shift = zn[0];
        for (long long k = 1; k < K; ++k) shift = zn[k] > shift ? zn[k] : shift;
        T norm = (T)0;
        for (long long k = 0; k < K; ++k) { T e = dp_exp(zn[k] - shift); Pn[k] = e; norm += e; }
        for (long long k = 0; k < K; ++k) Pn[k] /= norm;
        loss[n] = (double)dp_log(norm) + (double)shift - (double)zn[label];
    }
}

// D[n, y_n] -= 1 where 0 <= y_n < K; one thread per row
extern "C" __global__ void subtract_one_hot(T* D, const long long* labels, long long rows,
                                           long long K) {
    DP_FOR(n, rows) {
        long long label = labels[n];
        if (label >= 0 && label < K) D[n * K + label] -= (T)1;
    }
}

// hit[n] = 1 when row n's largest logit (the first; NaN counts as largest) is at y_n
extern "C" __global__ void argmax_hits_rows(const T* z, const long long* labels, double* hit,
                                           long long rows, long long K) {
    DP_FOR(n, rows) {
        const T* zn = z + n * K;
        long long best = 0;
        for (long long k = 1; k < K; ++k) {
            if (zn[k] > zn[best] || (zn[k] != zn[k] && zn[best] == zn[best])) best = k;
        }
        hit[n] = best == labels[n] ? 1.0 : 0.0;
    }
}

// total[0] = values[0] + values[1] + ... in this order, by one thread (a deterministic sum)
extern "C" __global__ void sum_in_order(const double* values, double* total, long long n) {
    if (blockIdx.x == 0 && threadIdx.x == 0) {
        double s = 0.0;
        for (long long i = 0; i < n; ++i) s += values[i];
        total[0] = s;
    }
}

// The optimizers' rules, as the CPU kernels of deltaprop.optim's sgd, adam, rmsprop, adagrad
extern "C" __global__ void sgd_kernel(T* p, const T* g, T* buf, T lr, T momentum,
                                     T one_minus_dampening, int nesterov, T weight_decay,
                                     T grad_scale, int first_step, T tiny, long long n) {
    const T zero = (T)0;
    DP_FOR(i, n) {
        T gi = g[i] * grad_scale + weight_decay * p[i];
        if (momentum != zero) {
            T b = first_step ? gi : momentum * buf[i] + one_minus_dampening * gi;
            b = dp_abs(b) >= tiny ? b : zero;
            buf[i] = b;
            gi = nesterov ? gi + momentum * b : b;
        }
        p[i] -= lr * gi;
    }
}

extern "C" __global__ void adam_kernel(T* p, const T* g, T* m, T* v, T beta1, T beta2,
                                      T step_size, T inv_bias2_sqrt, T eps, T weight_decay,
                                      T shrink, int decoupled, T grad_scale, T tiny,
                                      long long n) {
    const T zero = (T)0, one = (T)1;
    DP_FOR(i, n) {
        T gi = g[i] * grad_scale;
        if (decoupled) p[i] *= shrink; else gi += weight_decay * p[i];
        T mi = beta1 * m[i] + (one - beta1) * gi;
        T vi = beta2 * v[i] + (one - beta2) * gi * gi;
        mi = dp_abs(mi) >= tiny ? mi : zero;
        vi = vi >= tiny ? vi : zero;
        m[i] = mi;
        v[i] = vi;
        p[i] -= step_size * mi / (dp_sqrt(vi) * inv_bias2_sqrt + eps);
    }
}

extern "C" __global__ void rmsprop_kernel(T* p, const T* g, T* square_avg, T* grad_avg, T* buf,
                                         T lr, T alpha, T eps, T weight_decay, T momentum,
                                         int centered, T grad_scale, T tiny, long long n) {
    const T zero = (T)0, one = (T)1;
    DP_FOR(i, n) {
        T gi = g[i] * grad_scale + weight_decay * p[i];
        T s = alpha * square_avg[i] + (one - alpha) * gi * gi;
        s = s >= tiny ? s : zero;
        square_avg[i] = s;
        T avg;
        if (centered) {
            T a = alpha * grad_avg[i] + (one - alpha) * gi;
            a = dp_abs(a) >= tiny ? a : zero;
            grad_avg[i] = a;
            T spread = s - a * a;
            avg = dp_sqrt(spread > zero ? spread : zero) + eps;
        } else {
            avg = dp_sqrt(s) + eps;
        }
        if (momentum > zero) {
            T b = momentum * buf[i] + gi / avg;
            b = dp_abs(b) >= tiny ? b : zero;
            buf[i] = b;
            p[i] -= lr * b;
        } else {
            p[i] -= lr * gi / avg;
        }
    }
}

extern "C" __global__ void adagrad_kernel(T* p, const T* g, T* total, T lr, T eps,
                                         T weight_decay, T grad_scale, long long n) {
    DP_FOR(i, n) {
        T gi = g[i] * grad_scale + weight_decay * p[i];
        T s = total[i] + gi * gi;
        total[i] = s;
        p[i] -= lr * gi / (dp_sqrt(s) + eps);
    }
}
"""

C_TYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
"""The C type that stands for T in :data:`SOURCE`, per dtype."""

Launch = Callable[..., None]
"""``launch(name, dtype, n, *arguments)``: run kernel ``name`` of the ``dtype`` build over n
items (arrays and NumPy scalars, in the source's order)."""


def _scalar(value: Any) -> Any:
    """A kernel argument as the C type its parameter has: bool → int, int → long long."""
    if isinstance(value, bool | np.bool_):
        return np.int32(value)
    if isinstance(value, int):
        return np.int64(value)
    return value


class Kernels:
    """The GPU kernels under the CPU kernels' names and keyword arguments.

    Args:
        xp: the device's array namespace (for the scratch arrays of the ordered sums).
        launch: how a kernel runs (:data:`Launch`): through CuPy (:func:`cupy_launcher`), or
            compiled for the CPU in the tests.
    """

    def __init__(self, xp: Any, launch: Launch) -> None:
        self.xp = xp
        self._launch = launch
        self._scratch: dict[str, Array] = {}

    def _run(self, name: str, dtype: np.dtype[Any], n: int, *arguments: Any) -> None:
        for a in arguments:  # the kernels index flat storage
            flags = getattr(a, "flags", None)
            if flags is not None and a.ndim and not flags.c_contiguous:
                raise ShapeError(f"{name}: needs C-contiguous arrays, got one of shape {a.shape}")
        self._launch(name, dtype, n, *[_scalar(a) for a in arguments])

    def _buffer(self, key: str, n: int) -> Array:
        """Scratch float64 storage of at least n items, kept from call to call."""
        array = self._scratch.get(key)
        if array is None or array.size < n:
            array = self._scratch[key] = self.xp.empty(max(n, 1), dtype=np.float64)
        return array

    def _ordered_sum(self, values: Array, n: int) -> float:
        total = self._buffer("total", 1)
        self._run("sum_in_order", np.dtype(np.float64), 1, values, total, n)
        return float(total[0])

    # --- element-wise (deltaprop.nn.functional) ------------------------------------------------

    def relu_and_gate(self, *, z: Array, a: Array, gate: Array, zero: Any) -> None:
        self._run("relu_and_gate", z.dtype, z.size, z, a, gate, z.size)

    def gate(self, *, grad: Array, gate: Array, out: Array, zero: Any) -> None:
        self._run("gate", grad.dtype, grad.size, grad, gate, out, grad.size)

    def add_scaled(self, *, grad: Array, x: Array, scale: Any) -> None:
        self._run("add_scaled", grad.dtype, grad.size, grad, x, scale, grad.size)

    def sum_over_batch(self, *, D: Array, out: Array, zero: Any) -> None:
        rows, cols = D.shape
        self._run("sum_over_batch", D.dtype, cols, D, out, rows, cols)

    def softmax_cross_entropy_labels(
        self, *, z: Array, labels: Array, P: Array, zero: Any
    ) -> float:
        rows, K = z.shape
        losses = self._buffer("rows", rows)
        self._run("softmax_cross_entropy_rows", z.dtype, rows, z, labels, P, losses, rows, K)
        return self._ordered_sum(losses, rows)

    def subtract_one_hot(self, *, D: Array, labels: Array) -> None:
        rows, K = D.shape
        self._run("subtract_one_hot", D.dtype, rows, D, labels, rows, K)

    def count_argmax_hits(self, *, z: Array, labels: Array) -> int:
        rows, K = z.shape
        hits = self._buffer("rows", rows)
        self._run("argmax_hits_rows", z.dtype, rows, z, labels, hits, rows, K)
        return int(self._ordered_sum(hits, rows))

    # --- the optimizers' rules (each in its module of deltaprop.optim) -------------------------

    def _rule(self, name: str, arguments: dict[str, Any]) -> None:
        """An optimizer's rule: the CPU kernel's keyword ``arguments`` in the order of the
        source's parameter list (:func:`parameters`), scalars cast to the parameters' dtype."""
        p = arguments["p"]
        f = p.dtype.type
        ordered = []
        for key in parameters(name)[:-1]:  # the last is the length n
            value = arguments[key]
            if not (is_array(value) or isinstance(value, bool | np.bool_)):
                value = f(value)
            ordered.append(value)
        self._run(name, p.dtype, p.size, *ordered, p.size)

    def sgd_kernel(self, **arguments: Any) -> None:
        self._rule("sgd_kernel", arguments)

    def adam_kernel(self, **arguments: Any) -> None:
        self._rule("adam_kernel", arguments)

    def rmsprop_kernel(self, **arguments: Any) -> None:
        self._rule("rmsprop_kernel", arguments)

    def adagrad_kernel(self, **arguments: Any) -> None:
        self._rule("adagrad_kernel", arguments)


def parameters(kernel: str) -> list[str]:
    """The parameter names of ``kernel`` in :data:`SOURCE`, in order: the one declaration of
    what each kernel takes.

    Raises:
        KeyError: for a kernel the source does not define.
    """
    found = re.search(rf'extern "C" __global__ void {kernel}\(([^)]*)\)', SOURCE)
    if found is None:
        raise KeyError(f"the CUDA source defines no kernel {kernel!r}")
    return [declaration.split()[-1].lstrip("*") for declaration in found.group(1).split(",")]


def cupy_launcher(cupy: Any, block: int = 256, max_blocks: int = 4096) -> Launch:
    """A :data:`Launch` through CuPy: :data:`SOURCE` compiled by NVRTC once per dtype (CuPy
    caches the binary on disk), ``block`` threads per block, enough blocks for one item per
    thread up to ``max_blocks`` (the grid-stride loops do the rest)."""
    modules: dict[np.dtype[Any], Any] = {}
    functions: dict[tuple[str, np.dtype[Any]], Any] = {}

    def launch(name: str, dtype: np.dtype[Any], n: int, *arguments: Any) -> None:
        function = functions.get((name, dtype))
        if function is None:
            module = modules.get(dtype)
            if module is None:
                code = f"#define T {C_TYPES[np.dtype(dtype)]}\n{SOURCE}"
                module = modules[dtype] = cupy.RawModule(code=code, options=("--std=c++14",))
            function = functions[(name, dtype)] = module.get_function(name)
        blocks = max(1, min(max_blocks, -(-n // block)))
        function((blocks,), (block,), arguments)

    return launch
