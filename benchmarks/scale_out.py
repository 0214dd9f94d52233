"""Beyond one process: data-parallel steps over MPI, a search on a Dask cluster, streaming.

1. **Equality**: ``fit(distributed=True)`` on 2 and 4 ranks against one process on the same
   batches (784-256-128-10, 3 epochs of 6,000 random rows; SGD and Adam in float32, Adam in
   float64): the largest weight difference, and whether the ranks agree bit for bit.
2. **Time per step**, split as the data-parallel step spends it — compute (this rank's forward
   and backward), allreduce (the flat gradient buffer, summed in place) and update (the
   optimizer) — median over 60 steps, for 1, 2 and 4 ranks at batch 128 and 1024, with the
   bytes each allreduce moves and the bandwidth it reached; beside it the same step with each
   layer's gradient summed by a non-blocking allreduce while backward goes on (the overlap).
3. **Search**: ``GridSearchCV`` over ``dp.MLPClassifier`` (8 candidates, 3 folds, digits) with
   ``n_jobs=1``, ``n_jobs=2`` and on a ``distributed.LocalCluster`` of 2 one-thread workers.
4. **Streaming**: a 502 MB memory-mapped ``.npy`` trained for one epoch under a 400 MB limit of
   anonymous memory: the peak of that memory.

    python benchmarks/scale_out.py --out benchmarks/results      # all four, ~4 minutes
    python benchmarks/scale_out.py --only steps                  # one part
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve()
WIDTHS = [784, 256, 128, 10]


def _mpiexec(ranks: int, *args: str) -> dict:
    """Run this file's ``--rank-job`` on ``ranks`` ranks (loopback only); rank 0's JSON."""
    from deltaprop.distributed import local_launcher

    command = local_launcher(ranks)
    done = subprocess.run(
        [*command, sys.executable, str(HERE), "--rank-job", *args],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if done.returncode:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def _problem(batch: int, optimizer: str = "adam", dtype: str = "float32") -> tuple:
    import deltaprop as dp

    rng = np.random.default_rng(0)
    X = rng.standard_normal((6000, WIDTHS[0]), dtype=np.float32)
    y = rng.integers(0, WIDTHS[-1], 6000)
    net = dp.mlp(WIDTHS, rng=0, dtype=np.dtype(dtype))
    if optimizer == "sgd":
        opt = dp.SGD(net.parameters(), lr=0.01)
    else:
        opt = dp.Adam(net.parameters(), lr=1e-3)
    return dp, net, dp.SoftmaxCrossEntropy(), opt, X, y


# --- what each rank runs ---------------------------------------------------------------------


def rank_job(kind: str, batch: int) -> None:
    from deltaprop.distributed import World, part

    world = World()
    optimizer, dtype = kind.split("-")[1:] if kind.startswith("equality") else ("adam", "float32")
    dp, net, loss, opt, X, y = _problem(batch, optimizer, dtype)
    if kind.startswith("equality"):
        dp.fit(
            net,
            loss,
            opt,
            X,
            y,
            epochs=3,
            batch_size=batch,
            rng=1,
            verbose=0,
            distributed=world if world.size > 1 else None,
            engine="reference",
        )
        every = world.gather_all(net.flat_values.copy())
        same = all(np.array_equal(w, every[0]) for w in every)
        if world.is_root:
            print(json.dumps({"weights": every[0].tolist(), "ranks_identical": same}))
        return
    from threadpoolctl import threadpool_limits

    grads = net.flat_grads
    times: dict[str, list[float]] = {"compute": [], "allreduce": [], "update": [], "overlapped": []}
    order = np.random.default_rng(1).permutation(len(X))
    with threadpool_limits(world.threads_per_rank(), user_api="blas"):
        for step in range(70):
            rows = order[(step * batch) % (len(X) - batch) :][:batch]
            mine = part(rows, world.rank, world.size)
            world.comm.Barrier()
            started = time.perf_counter()
            logits = net.forward(X[mine], training=True)
            loss.forward_prepared(logits, y[mine])
            net.backward_params(loss.backward())
            grads *= grads.dtype.type(len(mine) / batch)
            computed = time.perf_counter()
            world.sum_(grads)
            reduced = time.perf_counter()
            opt.step()
            done = time.perf_counter()
            overlapped = _overlapped_step(world, net, loss, opt, X[mine], y[mine], batch)
            if step >= 10:  # warm-up excluded
                times["overlapped"].append(overlapped)
                times["compute"].append(computed - started)
                times["allreduce"].append(reduced - computed)
                times["update"].append(done - reduced)
    slowest = world.gather_all({k: statistics.median(v) for k, v in times.items()})
    if world.is_root:
        worst = {k: max(s[k] for s in slowest) for k in times}
        print(json.dumps({**worst, "bytes": int(grads.nbytes)}))


def _overlapped_step(world, net, loss, opt, xb, yb, batch: int) -> float:
    """The same step with each layer's gradient summed by a non-blocking allreduce as soon as
    backward has produced it (the last layer's first), while backward goes on below: the
    overlap Horovod and DDP use. Returns the step's seconds."""
    from mpi4py import MPI

    world.comm.Barrier()
    started = time.perf_counter()
    logits = net.forward(xb, training=True)
    loss.forward_prepared(logits, yb)
    grad, requests = loss.backward(), []
    share = net.flat_grads.dtype.type(len(xb) / batch)
    for index in range(len(net.layers) - 1, -1, -1):
        layer = net.layers[index]
        if index:
            grad = layer.backward(grad)
        else:
            layer.backward_params(grad)
        for p in layer.parameters():
            p.grad *= share
            requests.append(world.comm.Iallreduce(MPI.IN_PLACE, p.grad, op=MPI.SUM))
    MPI.Request.Waitall(requests)
    opt.step()
    return time.perf_counter() - started


# --- the four parts ----------------------------------------------------------------------------


def equality() -> list[str]:
    lines = [
        "| optimizer, dtype | ranks | largest weight difference vs one process "
        "| ranks bit-identical |",
        "|---|---|---|---|",
    ]
    for case in ("sgd-float32", "adam-float32", "adam-float64"):
        one = np.array(_mpiexec(1, f"equality-{case}", "128")["weights"])
        for ranks in (2, 4):
            found = _mpiexec(ranks, f"equality-{case}", "128")
            gap = float(np.max(np.abs(np.array(found["weights"]) - one)))
            shown = case.replace("-", ", ")
            lines.append(f"| {shown} | {ranks} | {gap:.2e} | {found['ranks_identical']} |")
    return lines


def steps() -> list[str]:
    lines = [
        "| batch | ranks | compute ms | allreduce ms | update ms | step ms | allreduce share "
        "| allreduce bandwidth | step ms, allreduce overlapped with backward |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for batch in (128, 1024):
        for ranks in (1, 2, 4):
            t = _mpiexec(ranks, "steps", str(batch))
            total = t["compute"] + t["allreduce"] + t["update"]
            bandwidth = t["bytes"] / t["allreduce"] / 1e9 if ranks > 1 and t["allreduce"] else 0
            lines.append(
                f"| {batch} | {ranks} | {1e3 * t['compute']:.2f} | {1e3 * t['allreduce']:.2f} | "
                f"{1e3 * t['update']:.2f} | {1e3 * total:.2f} | {t['allreduce'] / total:.0%} | "
                + (f"{bandwidth:.2f} GB/s |" if ranks > 1 else "— |")
                + f" {1e3 * t['overlapped']:.2f} |"
            )
    return lines


def search() -> list[str]:
    import warnings

    from joblib import parallel_backend
    from sklearn.datasets import load_digits
    from sklearn.model_selection import GridSearchCV

    import deltaprop as dp
    import distributed

    warnings.simplefilter("ignore")
    X, y = load_digits(return_X_y=True)
    grid = {
        "alpha": [1e-4, 1e-2],
        "hidden_layer_sizes": [(32,), (64,)],
        "learning_rate_init": [1e-3, 3e-3],
    }
    estimator = dp.MLPClassifier(max_iter=40, random_state=0)
    rows = ["| where | seconds |", "|---|---|"]
    for n_jobs in (1, 2):
        started = time.perf_counter()
        GridSearchCV(estimator, grid, cv=3, n_jobs=n_jobs).fit(X, y)
        rows.append(f"| `n_jobs={n_jobs}` | {time.perf_counter() - started:.1f} |")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None, silence_logs=50
    ) as cluster:
        with distributed.Client(cluster), parallel_backend("dask"):
            started = time.perf_counter()
            GridSearchCV(estimator, grid, cv=3).fit(X, y)
            rows.append(
                f"| LocalCluster, 2 workers × 1 thread | {time.perf_counter() - started:.1f} |"
            )
    return rows


STREAM = """
import resource, sys
limit = 400 * 2**20
resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
import numpy as np, deltaprop as dp
X = np.load(sys.argv[1] + "/X.npy", mmap_mode="r"); y = np.load(sys.argv[1] + "/y.npy")
net = dp.mlp([784, 32, 2], rng=0)
dp.fit(net, dp.SoftmaxCrossEntropy(), dp.Adam(net.parameters()), X, y, epochs=1, batch_size=256,
       rng=0, verbose=0)
status = dict(l.split(":", 1) for l in open("/proc/self/status"))
print(X.nbytes, status["RssAnon"].split()[0], status["VmHWM"].split()[0])
"""


def streaming() -> list[str]:
    with tempfile.TemporaryDirectory() as directory:
        X = np.lib.format.open_memmap(f"{directory}/X.npy", "w+", np.float32, (160_000, 784))
        rng = np.random.default_rng(0)
        for start in range(0, 160_000, 20_000):
            X[start : start + 20_000] = rng.standard_normal((20_000, 784), dtype=np.float32)
        X.flush()
        np.save(f"{directory}/y.npy", (np.asarray(X[:, 0]) > 0).astype(np.int64))
        del X
        out = subprocess.run(
            [sys.executable, "-c", STREAM, directory],
            capture_output=True,
            text=True,
            timeout=600,
            check=True,
        ).stdout.split()
    nbytes, anon_kb, hwm_kb = (int(v) for v in out)
    return [
        "| data | limit (anonymous memory) | peak anonymous | peak resident, file pages too |",
        "|---|---|---|---|",
        f"| {nbytes / 1e6:.0f} MB `.npy`, memory-mapped | 400 MB | {anon_kb / 1024:.0f} MB | "
        f"{hwm_kb / 1024:.0f} MB |",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write scale-out.md here")
    parser.add_argument("--only", choices=["equality", "steps", "search", "streaming"])
    parser.add_argument("--rank-job", nargs=2, metavar=("KIND", "BATCH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rank_job:
        rank_job(args.rank_job[0], int(args.rank_job[1]))
        return
    load = os.getloadavg()[0]
    report = [
        f"# Beyond one process ({platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, load {load:.1f} at the start)",
        "",
    ]
    parts = {"equality": equality, "steps": steps, "search": search, "streaming": streaming}
    for name, part in parts.items():
        if args.only in (None, name):
            report += [f"## {name}", "", *part(), ""]
            print(f"{name}: done", flush=True)
    text = "\n".join(report)
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "scale-out.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
