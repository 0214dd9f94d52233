"""The compiled epoch against the reference path, its own matrix products and PyTorch eager.

Fashion-MNIST, 784-256-128-10 ReLU (``--widths`` for others), softmax cross-entropy, Adam
(lr 1e-3), float32. Epochs of every contender are interleaved, round after round, in one
process, so that the machine's noise falls on all of them alike; each is reported as the
median (and minimum) seconds per epoch and as a ratio to the others measured in the same run.

- ``compiled``: ``dp.fit(..., engine="compiled")``, the whole epoch in one Numba function;
- ``reference``: ``dp.fit(..., engine="reference")``, the readable path;
- ``GEMM, OpenBLAS``: the 8 matrix products of each step alone, NumPy on OpenBLAS's threads;
- ``GEMM, split``: the same products split by output units over Numba's threads, one BLAS
  thread each — the compiled epoch's own floor;
- ``PyTorch eager`` (if installed, ``pip install -e '.[bench]'``), on as many threads;
- ``JAX jit step`` (if installed): the step of ``benchmarks/peers.py``, and ``GEMM, XLA``: the
  same 8 products under ``jax.jit`` — XLA's products against OpenBLAS's and the tiles', which
  says how much of a lead of JAX's step is its matrix products.

``--load K`` runs it all beside K processes that each keep a core busy.

    python benchmarks/compiled_step.py                 # 9 rounds at batch 128 and 32
    python benchmarks/compiled_step.py --rounds 3 --batch 1024 --threads 1   # scaling
    python benchmarks/compiled_step.py --tiny          # a few batches of everything (smoke test)
    python benchmarks/compiled_step.py --widths 784,4096,4096,10 --rows 6000 --rounds 3 --batch 128
    python benchmarks/compiled_step.py --rounds 3 --batch 1024 --load 2      # beside 2 burners
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np
from numba import get_num_threads, njit, prange, set_num_threads
from threadpoolctl import threadpool_limits

import deltaprop as dp
from contention import beside  # benchmarks/, beside this file
from deltaprop import datasets
from deltaprop.backend.cpu_kernels import _N, _T, _gemm
from deltaprop.backend.tiles import ACTS_AT
from deltaprop.training.compiled_epoch import CompiledEpochs

WIDTHS = (784, 256, 128, 10)

try:
    import torch
except ImportError:  # the bench extra is optional
    torch = None


PAUSE = 0.3
"""Seconds each contender waits before its timed epoch: OpenBLAS's threads (NumPy's, PyTorch's)
spin for about 0.1 s after their last product, on the cores the next contender needs. One
1000×784 by 784×256 product just before it made an epoch of compiled tiles 1.4× slower."""


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


@njit(parallel=True, nogil=True, cache=True)
def _split_products(x, p, g, spec, acts, deltas, n, threads):  # pragma: no cover - compiled
    """The compiled epoch's 8 products of one step, split into tiles of output units as it
    splits them (one BLAS thread each), with none of its element-wise work."""
    for layer in range(spec.shape[0]):
        w, _, fan_in, fan_out, _, at, width, in_width = spec[layer]
        a_prev, a_at = (x, 0) if layer == 0 else (acts, spec[layer - 1, ACTS_AT])
        for t in prange(threads):
            tiles = (fan_out + width - 1) // width
            for tile in range(t * tiles // threads, (t + 1) * tiles // threads):
                o0, o1 = tile * width, min((tile + 1) * width, fan_out)
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
    for layer in range(spec.shape[0] - 1, -1, -1):
        w, _, fan_in, fan_out, _, at, width, in_width = spec[layer]
        a_prev, a_at = (x, 0) if layer == 0 else (acts, spec[layer - 1, ACTS_AT])
        for t in prange(threads):
            tiles = (fan_out + width - 1) // width
            for tile in range(t * tiles // threads, (t + 1) * tiles // threads):
                o0, o1 = tile * width, min((tile + 1) * width, fan_out)
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
        if layer > 0:
            below = spec[layer - 1, ACTS_AT]
            for t in prange(threads):
                tiles = (fan_in + in_width - 1) // in_width
                for tile in range(t * tiles // threads, (t + 1) * tiles // threads):
                    i0, i1 = tile * in_width, min((tile + 1) * in_width, fan_in)
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


class Deltaprop:
    def __init__(self, engine: str, batch: int, threads: int, widths=WIDTHS) -> None:
        rng = np.random.default_rng(0)
        self.net = dp.mlp(widths, rng=rng)
        self.opt = dp.Adam(self.net.parameters(), lr=1e-3)
        self.loss = dp.SoftmaxCrossEntropy()
        self.rng, self.engine, self.batch, self.threads = rng, engine, batch, threads
        self.name = engine

    def epoch(self, X: np.ndarray, y: np.ndarray) -> None:
        dp.fit(
            self.net,
            self.loss,
            self.opt,
            X,
            y,
            epochs=1,
            batch_size=self.batch,
            rng=self.rng,
            verbose=0,
            engine=self.engine,
            n_threads=self.threads,
        )


class Products:
    """Only the matrix products of each step (3 forward, 3 weight gradients, 2 input
    gradients), on the epoch's batches in order."""

    def __init__(self, split: bool, batch: int, threads: int, X, y, widths=WIDTHS) -> None:
        rng = np.random.default_rng(0)
        net = dp.mlp(widths, rng=rng)
        opt = dp.Adam(net.parameters())
        self.plan = CompiledEpochs(net, dp.SoftmaxCrossEntropy(), opt, X, y, batch)
        self.p, self.g, _ = opt.flat_buffers()
        self.plan.deltas[:] = rng.standard_normal(self.plan.deltas.size).astype(np.float32)
        self.W = [layer.W.value for layer in net.layers if layer.affine]
        self.split, self.batch, self.threads = split, batch, threads
        self.name = "GEMM, split" if split else "GEMM, OpenBLAS"

    def epoch(self, X: np.ndarray, y: np.ndarray) -> None:
        batch, plan = self.batch, self.plan
        if self.split:
            with threadpool_limits(1, user_api="blas"):
                for start in range(0, len(X), batch):
                    xb = X[start : start + batch]
                    plan.xb[: xb.size] = xb.reshape(-1)
                    _split_products(
                        plan.xb,
                        self.p,
                        self.g,
                        plan.spec,
                        plan.acts,
                        plan.deltas,
                        len(xb),
                        self.threads,
                    )
            return
        for start in range(0, len(X), batch):
            step_products(X[start : start + batch], self.W)


def step_products(x, W: list) -> list:
    """The 8 products of a step on NumPy or JAX arrays: Z = A_prev Wᵀ layer by layer, then,
    top down, dW = Dᵀ A_prev and D_prev = D W (the logits standing in for D); the dWs."""
    acts = [x]
    for w in W:
        acts.append(acts[-1] @ w.T)
    delta, grads = acts.pop(), []
    for i in reversed(range(len(W))):
        grads.append(delta.T @ acts[i])
        if i > 0:
            delta = delta @ W[i]
    return grads


class Xla:
    """The same 8 products as :class:`Products`, under ``jax.jit`` (XLA's own matrix products)."""

    def __init__(self, batch: int, widths=WIDTHS) -> None:
        import jax
        import jax.numpy as jnp

        rng = np.random.default_rng(0)
        self.W = [
            jnp.asarray(rng.standard_normal((b, a), dtype=np.float32) * 0.05)
            for a, b in zip(widths[:-1], widths[1:], strict=True)
        ]

        products = jax.jit(step_products)  # the same products, compiled by XLA
        self.products, self.batch, self.jax = products, batch, jax
        self.name = "GEMM, XLA"

    def epoch(self, X: np.ndarray, y: np.ndarray) -> None:
        for start in range(0, len(X) - self.batch + 1, self.batch):
            self.jax.block_until_ready(self.products(X[start : start + self.batch], self.W))


class JaxStep:
    def __init__(self, batch: int, widths=WIDTHS) -> None:
        from peers import jax_epochs  # the same step as benchmarks/peers.py

        self.step_epoch = jax_epochs(widths)[0]
        self.batch, self.order = batch, np.random.default_rng(batch)
        self.name = "JAX jit step"

    def epoch(self, X: np.ndarray, y: np.ndarray) -> None:
        self.step_epoch(X, y.astype(np.int64), self.batch, self.order.permutation(len(X)))


class Torch:
    def __init__(self, batch: int, threads: int, widths=WIDTHS) -> None:
        torch.manual_seed(0)
        torch.set_num_threads(threads)
        layers: list = []
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            layers += [torch.nn.Linear(a, b)] + ([torch.nn.ReLU()] if i < len(widths) - 2 else [])
        self.net = torch.nn.Sequential(*layers)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=1e-3)
        self.loss = torch.nn.CrossEntropyLoss()
        self.batch = batch
        self.name = "PyTorch eager"

    def epoch(self, X: np.ndarray, y: np.ndarray) -> None:
        X_t, y_t = torch.from_numpy(X), torch.from_numpy(y)
        order = torch.randperm(len(X_t))
        for start in range(0, len(X_t), self.batch):
            index = order[start : start + self.batch]
            self.opt.zero_grad()
            self.loss(self.net(X_t[index]), y_t[index]).backward()
            self.opt.step()


def measure(batch: int, rounds: int, threads: int, X, y, widths=WIDTHS) -> dict:
    contenders = [
        Deltaprop("compiled", batch, threads, widths),
        Deltaprop("reference", batch, threads, widths),
        Products(False, batch, threads, X, y, widths),
        Products(True, batch, threads, X, y, widths),
    ]
    if torch is not None:
        contenders.append(Torch(batch, threads, widths))
    try:
        contenders += [JaxStep(batch, widths), Xla(batch, widths)]
    except ImportError:  # the bench extra is optional
        pass
    for c in contenders:  # warm-up: compilation, caches, thread pools
        c.epoch(X[: batch * 4], y[: batch * 4])
    times: dict[str, list[float]] = {c.name: [] for c in contenders}
    for _ in range(rounds):
        for c in contenders:
            time.sleep(PAUSE)
            start = time.perf_counter()
            c.epoch(X, y)
            times[c.name].append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--batch", type=int, action="append")
    parser.add_argument("--threads", type=int, default=get_num_threads())
    parser.add_argument("--tiny", action="store_true", help="2,048 rows, 2 rounds: a smoke test")
    parser.add_argument("--widths", default="784,256,128,10", help="e.g. 784,4096,4096,10")
    parser.add_argument("--rows", type=int, help="train on the first ROWS images only")
    parser.add_argument("--load", type=int, default=0, help="beside LOAD core-burning processes")
    args = parser.parse_args()
    widths = tuple(int(w) for w in args.widths.split(","))
    X, _, y, _ = datasets.fashion_mnist().train_test_split()
    X, y = X[: args.rows], y[: args.rows]
    if args.tiny:
        X, y, args.rounds = X[:2048], y[:2048], 2
    set_num_threads(args.threads)
    with beside(str(args.load)):
        report(args, widths, X, y)


def report(args: argparse.Namespace, widths: tuple[int, ...], X, y) -> None:
    print(
        f"{cpu_model()}; {'-'.join(map(str, widths))}; {args.threads} threads; {len(X)} rows; "
        f"{args.rounds} interleaved rounds; {args.load} burners; load {os.getloadavg()[0]:.1f}; "
        "seconds per epoch, median (min)"
    )
    for batch in args.batch or [128, 32]:
        with threadpool_limits(args.threads, user_api="blas"):  # every contender on as many
            times = measure(batch, args.rounds, args.threads, X, y, widths)
        median = {k: statistics.median(v) for k, v in times.items()}
        print(f"\nbatch {batch}")
        for name, values in times.items():
            print(f"  {name:<16} {median[name]:.3f} ({min(values):.3f})")
        print(f"  compiled / reference        {median['compiled'] / median['reference']:.2f}")
        print(f"  compiled / GEMM, split      {median['compiled'] / median['GEMM, split']:.2f}")
        print(f"  compiled / GEMM, OpenBLAS   {median['compiled'] / median['GEMM, OpenBLAS']:.2f}")
        for ours, theirs in (
            ("compiled", "PyTorch eager"),
            ("compiled", "JAX jit step"),
            ("GEMM, split", "GEMM, XLA"),
            ("GEMM, OpenBLAS", "GEMM, XLA"),
        ):
            if theirs in median:
                print(f"  {ours} / {theirs}".ljust(30) + f"{median[ours] / median[theirs]:.2f}")


if __name__ == "__main__":
    main()
