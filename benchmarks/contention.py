"""Training on a busy machine: the same steps alone and beside CPU-burning processes.

784-256-128-10 ReLU, softmax cross-entropy, Adam, float32, 12,000 random rows (the size of a
fifth of Fashion-MNIST), batch 128 and 1024. For each number k of burning processes (started by
this script, each a busy loop on one core) it times one epoch of each contender, taking turns,
and reports the median seconds, the fair share (alone × (k + 1) / cores once k + 1 > cores) and
the ratio to it — the target of at most 1.3 — and to one thread alone.

Contenders: deltaprop with its default threads, deltaprop with one thread (``n_threads=1`` and
one BLAS thread), and PyTorch eager (if installed) with its default threads.

    python benchmarks/contention.py                    # k = 0, 1, 2, 4; ~3 minutes
    python benchmarks/contention.py --burners 0 2 --rounds 3
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_limits

import deltaprop as dp

WIDTHS = [784, 256, 128, 10]


def burn(stop: multiprocessing.synchronize.Event) -> None:
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x += 1


def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.standard_normal((12_000, WIDTHS[0]), dtype=np.float32), rng.integers(0, 10, 12_000)


def deltaprop_epoch(X, y, batch: int, one_thread: bool) -> float:
    net = dp.mlp(WIDTHS, rng=0)
    opt = dp.Adam(net.parameters(), lr=1e-3)
    keywords = {"n_threads": 1} if one_thread else {}
    started = time.perf_counter()
    if one_thread:
        with threadpool_limits(1, user_api="blas"):
            dp.fit(
                net,
                dp.SoftmaxCrossEntropy(),
                opt,
                X,
                y,
                batch_size=batch,
                rng=0,
                verbose=0,
                **keywords,
            )
    else:
        dp.fit(net, dp.SoftmaxCrossEntropy(), opt, X, y, batch_size=batch, rng=0, verbose=0)
    return time.perf_counter() - started


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burners", type=int, nargs="+", default=[0, 1, 2, 4])
    parser.add_argument("--batches", type=int, nargs="+", default=[128, 1024])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    X, y = data()
    cores = len(os.sched_getaffinity(0))
    try:
        import torch  # noqa: F401

        has_torch = True
    except ImportError:
        has_torch = False
    contenders = {
        "deltaprop": lambda b: deltaprop_epoch(X, y, b, False),
        "deltaprop, 1 thread": lambda b: deltaprop_epoch(X, y, b, True),
    }
    if has_torch:
        contenders["PyTorch eager"] = lambda b: torch_epoch(X, y, b)
    for run in contenders.values():  # compile and warm up, alone
        run(128)
    print(f"{cores} cores; load {os.getloadavg()[0]:.1f} before; epochs of 12,000 rows")
    print(
        "| batch | burners | contender | s/epoch | fair share | ratio to fair "
        "| ratio to 1 thread alone |"
    )
    print("|---|---|---|---|---|---|---|")
    alone: dict[tuple[int, str], float] = {}
    for k in args.burners:
        stop = multiprocessing.Event()
        burners = [
            multiprocessing.Process(target=burn, args=(stop,), daemon=True) for _ in range(k)
        ]
        for p in burners:
            p.start()
        time.sleep(0.5)
        try:
            for batch in args.batches:
                times: dict[str, list[float]] = {name: [] for name in contenders}
                for _ in range(args.rounds):
                    for name, run in contenders.items():
                        times[name].append(run(batch))
                for name, values in times.items():
                    median = statistics.median(values)
                    if k == 0:
                        alone[(batch, name)] = median
                    base = alone.get((batch, name), median)
                    fair = base * max(1.0, (k + 1) / cores)
                    single = alone.get((batch, "deltaprop, 1 thread"), median)
                    print(
                        f"| {batch} | {k} | {name} | {median:.3f} | {fair:.3f} | "
                        f"{median / fair:.2f} | {median / single:.2f} |",
                        flush=True,
                    )
        finally:
            stop.set()
            for p in burners:
                p.join()


if __name__ == "__main__":
    main()
