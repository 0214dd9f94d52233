"""Training on a busy machine: the same steps alone and beside CPU-burning processes.

784-256-128-10 ReLU, softmax cross-entropy, Adam, float32, 12,000 random rows (the size of a
fifth of Fashion-MNIST), batch 128 and 1024. For each load — k CPU-burning processes (each a busy
loop on one core) or ``twin``: a second deltaprop training running beside, both started by this
script — it times one epoch of each contender, taking turns, and reports the median seconds, the
fair share (alone × (k + 1) / cores once k + 1 > cores, k = 1 for the twin) and the ratio to it
(the target: at most 1.3), and the ratio to the same engine on one thread under the same load
(the target: at most 1.3 — more threads must never cost more than that). It also reports the
cores each contender's process used while it ran (its CPU seconds, all its threads, over the wall
seconds of the call) and its CPU seconds per epoch: Linux shares the cores between threads, so
a process that keeps more threads runnable takes more of them from its neighbours.

Contenders:

- ``compiled``: ``engine="compiled"`` with the default threads (up to all cores, fewer while
  fewer are measured faster: ``deltaprop.training.threads``);
- ``compiled, all cores``: ``n_threads`` fixed at the cores (no choosing);
- ``compiled, 1 thread``: ``n_threads=1``;
- ``reference``: ``engine="reference"``, OpenBLAS's own threads (what ``engine="auto"`` runs
  for a fit this short);
- ``reference, 1 thread``: ``n_threads=1``, one OpenBLAS thread;
- ``PyTorch eager`` (if installed) with its default threads;
- ``JAX jit step`` (if installed): ``benchmarks/peers.py``'s step under ``jax.jit``, XLA's own
  threads.

    python benchmarks/contention.py                    # loads 0, 1, 2, 4, twin; ~4 minutes
    python benchmarks/contention.py --loads 0 2 --rounds 3 --batches 128
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import statistics
import time
from collections.abc import Iterator

import numpy as np

import deltaprop as dp

WIDTHS = [784, 256, 128, 10]
CORES = len(os.sched_getaffinity(0))


PAUSE = 0.3
"""Seconds each contender waits before its timed epoch: OpenBLAS's threads (NumPy's, PyTorch's)
spin for about 0.1 s after their last product, on the cores the next contender needs. One
1000×784 by 784×256 product just before it made an epoch of compiled tiles 1.4× slower."""


def burn(stop: multiprocessing.synchronize.Event) -> None:
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x += 1


def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.standard_normal((12_000, WIDTHS[0]), dtype=np.float32), rng.integers(0, 10, 12_000)


def twin(stop: multiprocessing.synchronize.Event) -> None:
    """A second deltaprop training, the default engine and threads, epoch after epoch."""
    X, y = data()
    while not stop.is_set():
        deltaprop_epoch(X, y, 128, "compiled", None)


def deltaprop_epoch(X, y, batch: int, engine: str, threads: int | None) -> float:
    net = dp.mlp(WIDTHS, rng=0)
    opt = dp.Adam(net.parameters(), lr=1e-3)
    options = {"engine": engine, "batch_size": batch, "rng": 0, "verbose": 0}
    # the epoch's own time, as History records it: fit's checks of the whole X before it are
    # left out (a run of many epochs pays them once), as the other contenders have none
    # n_threads: the compiled epoch's threads, or OpenBLAS's on the reference path
    history = dp.fit(net, dp.SoftmaxCrossEntropy(), opt, X, y, n_threads=threads, **options)
    return history["epoch_time"][-1]


def torch_epoch(X, y, batch: int) -> float:
    import torch

    net = torch.nn.Sequential(
        torch.nn.Linear(784, 256),
        torch.nn.ReLU(),
        torch.nn.Linear(256, 128),
        torch.nn.ReLU(),
        torch.nn.Linear(128, 10),
    )
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    order = torch.randperm(len(Xt))
    started = time.perf_counter()
    for start in range(0, len(Xt), batch):
        rows = order[start : start + batch]
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(Xt[rows]), yt[rows]).backward()
        opt.step()
    return time.perf_counter() - started


CONTENDERS = {
    "compiled": ("compiled", None),
    "compiled, all cores": ("compiled", CORES),
    "compiled, 1 thread": ("compiled", 1),
    "reference": ("reference", None),
    "reference, 1 thread": ("reference", 1),
}
SINGLE = {name: f"{name.split(',')[0]}, 1 thread" for name in CONTENDERS}


SPAWN = multiprocessing.get_context("spawn")
"""The loads are spawned: a fork of a process running OpenMP's or JAX's threads is unsafe."""


def start_load(load: str, stop: multiprocessing.synchronize.Event) -> list:
    if load == "twin":
        return [SPAWN.Process(target=twin, args=(stop,), daemon=True)]
    return [SPAWN.Process(target=burn, args=(stop,), daemon=True) for _ in range(int(load))]


@contextlib.contextmanager
def beside(load: str) -> Iterator[None]:
    """Meanwhile, ``load`` running beside: that many core-burning processes, or ``"twin"`` — a
    second deltaprop training; started here (given time to import: 3 s, the twin 8 s to load
    its code too) and stopped after."""
    stop = SPAWN.Event()
    processes = start_load(load, stop)
    for p in processes:
        p.start()
    if processes:
        time.sleep(8.0 if load == "twin" else 3.0)
    try:
        yield
    finally:
        stop.set()
        for p in processes:
            p.join()


def jax_epoch(step_epoch, X, y, batch: int) -> float:
    order = np.random.default_rng(batch).permutation(len(X))
    started = time.perf_counter()
    step_epoch(X, y, batch, order)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loads", nargs="+", default=["0", "1", "2", "4", "twin"])
    parser.add_argument("--batches", type=int, nargs="+", default=[128, 1024])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    X, y = data()
    contenders = {
        name: (lambda b, e=engine, t=threads: deltaprop_epoch(X, y, b, e, t))
        for name, (engine, threads) in CONTENDERS.items()
    }
    try:
        import torch  # noqa: F401

        contenders["PyTorch eager"] = lambda b: torch_epoch(X, y, b)
    except ImportError:
        pass
    try:
        from peers import jax_epochs  # the same JAX step as benchmarks/peers.py

        jax_step = jax_epochs()[0]
        contenders["JAX jit step"] = lambda b: jax_epoch(jax_step, X, y, b)
    except ImportError:
        pass
    for run in contenders.values():  # compile and warm up, alone
        run(128)
    print(f"{CORES} cores; load {os.getloadavg()[0]:.1f} before; epochs of 12,000 rows")
    print(
        "| batch | load | contender | s/epoch | fair share | ratio to fair "
        "| ratio to 1 thread, same load | cores used | CPU s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    alone: dict[tuple[int, str], float] = {}
    for load in args.loads:
        busy = 1 if load == "twin" else int(load)
        with beside(load):
            for batch in args.batches:
                times: dict[str, list[float]] = {name: [] for name in contenders}
                used: dict[str, list[tuple[float, float]]] = {name: [] for name in contenders}
                for _ in range(args.rounds):
                    for name, run in contenders.items():
                        time.sleep(PAUSE)
                        cpu, wall = time.process_time(), time.perf_counter()
                        times[name].append(run(batch))
                        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                        used[name].append((cpu / wall, cpu))
                medians = {name: statistics.median(values) for name, values in times.items()}
                for name, median in medians.items():
                    if busy == 0:
                        alone[(batch, name)] = median
                    fair = alone.get((batch, name), median) * max(1.0, (busy + 1) / CORES)
                    single = medians.get(SINGLE.get(name, ""))
                    to_single = "–" if single is None else f"{median / single:.2f}"
                    cores = statistics.median(share for share, _ in used[name])
                    cpu = statistics.median(seconds for _, seconds in used[name])
                    print(
                        f"| {batch} | {load} | {name} | {median:.3f} | {fair:.3f} | "
                        f"{median / fair:.2f} | {to_single} | {cores:.2f} | {cpu:.3f} |",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
