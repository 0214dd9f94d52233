"""The first second: ``import deltaprop`` and a whole ``deltaprop train`` command, each in fresh
processes, as a user meets them (median and range of ``--runs`` processes); with
``--fashion-mnist``, the time from the command's start to the end of one Fashion-MNIST epoch
(784-256-128-10, Adam, batch 128) for ``python -m deltaprop train`` and for the same training
written in PyTorch eager and in JAX (``pip install -e '.[bench]'``), taking turns. ``--load K``
times it all beside K processes that each keep a core busy (started by this script).

    python benchmarks/start_up.py                 # import: 9 processes; train: 3
    python benchmarks/start_up.py --against DIR   # also another checkout's src/ (before/after)
    python benchmarks/start_up.py --fashion-mnist --runs 3
    python benchmarks/start_up.py --fashion-mnist --runs 3 --load 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from contention import beside  # benchmarks/, beside this file

IMPORT = "import time; t = time.perf_counter(); import deltaprop; print(time.perf_counter() - t)"


def import_seconds(src: str | None, runs: int) -> list[float]:
    env = {**os.environ, **({"PYTHONPATH": src} if src else {})}
    return [
        float(
            subprocess.run(
                [sys.executable, "-c", IMPORT], capture_output=True, text=True, env=env, check=True
            ).stdout
        )
        for _ in range(runs)
    ]


def train_seconds(src: str | None, runs: int) -> list[float]:
    env = {**os.environ, **({"PYTHONPATH": src} if src else {})}
    times = []
    with tempfile.TemporaryDirectory() as directory:
        command = [
            sys.executable,
            "-m",
            "deltaprop",
            "train",
            "--data",
            "breast-cancer",
            "--epochs",
            "1",
            "--no-plots",
            "--quiet",
            "--force",
            "--out",
            str(Path(directory) / "model.safetensors"),
        ]
        for _ in range(runs):
            started = time.perf_counter()
            subprocess.run(command, env=env, check=True, capture_output=True, cwd=directory)
            times.append(time.perf_counter() - started)
    return times


READ = """
import gzip, numpy as np
root = "/usr/share/datasets/fashion-mnist/"
def read(name, offset):
    with gzip.open(root + name) as f:
        return np.frombuffer(f.read(), np.uint8, offset=offset)
X = (read("train-images-idx3-ubyte.gz", 16).reshape(-1, 784) / 255.0).astype(np.float32)
y = read("train-labels-idx1-ubyte.gz", 8).astype(np.int64)
X = (X - X.mean(0)) / (X.std(0) + 1e-8)
"""

TORCH_EPOCH = (
    READ
    + """
import torch
X, y = torch.from_numpy(X), torch.from_numpy(y)
net = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 128),
                          torch.nn.ReLU(), torch.nn.Linear(128, 10))
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
order = torch.randperm(len(X))
for start in range(0, len(X), 128):
    rows = order[start : start + 128]
    opt.zero_grad()
    torch.nn.functional.cross_entropy(net(X[rows]), y[rows]).backward()
    opt.step()
"""
)

JAX_EPOCH = (
    READ
    + """
import jax, jax.numpy as jnp
rng = np.random.default_rng(0)
sizes = [(784, 256), (256, 128), (128, 10)]
params = [(jnp.asarray(rng.uniform(-(6 / i) ** 0.5, (6 / i) ** 0.5, (i, o)), jnp.float32),
           jnp.zeros(o, jnp.float32)) for i, o in sizes]
def loss(params, x, y):
    for W, b in params[:-1]:
        x = jax.nn.relu(x @ W + b)
    z = x @ params[-1][0] + params[-1][1]
    return -jnp.mean(jax.nn.log_softmax(z)[jnp.arange(len(y)), y])
@jax.jit
def step(params, m, v, t, x, y):
    g = jax.grad(loss)(params, x, y)
    m = jax.tree_util.tree_map(lambda m, g: 0.9 * m + 0.1 * g, m, g)
    v = jax.tree_util.tree_map(lambda v, g: 0.999 * v + 0.001 * g * g, v, g)
    scale = 1e-3 * jnp.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)
    params = jax.tree_util.tree_map(lambda p, m, v: p - scale * m / (jnp.sqrt(v) + 1e-8),
                                    params, m, v)
    return params, m, v
m = v = jax.tree_util.tree_map(jnp.zeros_like, params)
order = rng.permutation(len(X))
for t, start in enumerate(range(0, len(X) - 127, 128), 1):
    rows = order[start : start + 128]
    params, m, v = step(params, m, v, t, X[rows], y[rows])
jax.block_until_ready(params)
"""
)


def fashion_mnist_seconds(runs: int) -> dict[str, list[float]]:
    """Seconds from a fresh process's start to the end of one epoch: deltaprop's command, and
    the same in PyTorch eager and in JAX (the step under ``jax.jit``), taking turns."""
    with tempfile.TemporaryDirectory() as directory:
        command = [
            sys.executable,
            "-m",
            "deltaprop",
            "train",
            "--data",
            "fashion-mnist",
            "--hidden",
            "256,128",
            "--batch-size",
            "128",
            "--epochs",
            "1",
            "--no-plots",
            "--quiet",
            "--force",
            "--out",
            str(Path(directory) / "fm.safetensors"),
        ]
        commands = {
            "deltaprop train": command,
            "PyTorch eager": [sys.executable, "-c", TORCH_EPOCH],
            "JAX jit step": [sys.executable, "-c", JAX_EPOCH],
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(runs):
            for name, argv in commands.items():
                started = time.perf_counter()
                done = subprocess.run(argv, capture_output=True, cwd=directory)
                if done.returncode == 0:  # a peer that is not installed is left out
                    times[name].append(time.perf_counter() - started)
    return {name: values for name, values in times.items() if values}


def shown(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} s ({min(values):.3f}–{max(values):.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--against", type=Path, help="another checkout, to compare with")
    parser.add_argument("--fashion-mnist", action="store_true", help="to the end of one epoch")
    parser.add_argument("--load", type=int, default=0, help="beside LOAD core-burning processes")
    args = parser.parse_args()
    with beside(str(args.load)):
        report(args)


def report(args: argparse.Namespace) -> None:
    if args.fashion_mnist:
        times = fashion_mnist_seconds(args.runs)
        ours = statistics.median(times["deltaprop train"])
        print(
            f"{args.load} burners, load {os.getloadavg()[0]:.1f}; "
            "start to the end of one Fashion-MNIST epoch:"
        )
        for name, values in times.items():
            ratio = statistics.median(values) / ours
            print(f"  {name}: {shown(values)}, ratio to deltaprop {ratio:.2f}")
        return
    sources = {"this checkout": None}
    if args.against:
        sources[str(args.against)] = str(args.against / "src")
    print(f"{args.load} burners, load {os.getloadavg()[0]:.1f}; {os.cpu_count()} cores")
    for name, src in sources.items():
        print(
            f"{name}: import deltaprop {shown(import_seconds(src, args.runs))}; "
            f"deltaprop train --epochs 1 {shown(train_seconds(src, max(3, args.runs // 3)))}"
        )


if __name__ == "__main__":
    main()
