"""The first second: ``import deltaprop`` and a whole ``deltaprop train`` command, each in fresh
processes, as a user meets them (median and range of ``--runs`` processes); with
``--fashion-mnist``, the time from the command's start to the end of one Fashion-MNIST epoch
(784-256-128-10, Adam, batch 128) for ``python -m deltaprop train`` and for the same training
written in PyTorch eager (``pip install -e '.[bench]'``), taking turns.

    python benchmarks/start_up.py                 # import: 9 processes; train: 3
    python benchmarks/start_up.py --against DIR   # also another checkout's src/ (before/after)
    python benchmarks/start_up.py --fashion-mnist --runs 3
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


TORCH_EPOCH = """
import gzip, numpy as np, torch
root = "/usr/share/datasets/fashion-mnist/"
def read(name, offset):
    with gzip.open(root + name) as f:
        return np.frombuffer(f.read(), np.uint8, offset=offset)
X = torch.from_numpy((read("train-images-idx3-ubyte.gz", 16).reshape(-1, 784) / 255.0)
                     .astype(np.float32))
y = torch.from_numpy(read("train-labels-idx1-ubyte.gz", 8).astype(np.int64))
mean, std = X.mean(0), X.std(0) + 1e-8
X = (X - mean) / std
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


def fashion_mnist_seconds(runs: int) -> tuple[list[float], list[float]]:
    """Seconds from a fresh process's start to the end of one epoch: deltaprop's command, and
    the same in PyTorch eager, taking turns."""
    ours, theirs = [], []
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
        for _ in range(runs):
            for times, argv in ((ours, command), (theirs, [sys.executable, "-c", TORCH_EPOCH])):
                started = time.perf_counter()
                subprocess.run(argv, check=True, capture_output=True, cwd=directory)
                times.append(time.perf_counter() - started)
    return ours, theirs


def shown(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} s ({min(values):.3f}–{max(values):.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--against", type=Path, help="another checkout, to compare with")
    parser.add_argument("--fashion-mnist", action="store_true", help="to the end of one epoch")
    args = parser.parse_args()
    if args.fashion_mnist:
        ours, theirs = fashion_mnist_seconds(args.runs)
        print(
            f"load {os.getloadavg()[0]:.1f}; start to the end of one Fashion-MNIST epoch: "
            f"deltaprop train {shown(ours)}, PyTorch eager {shown(theirs)}, ratio "
            f"{statistics.median(ours) / statistics.median(theirs):.2f}"
        )
        return
    sources = {"this checkout": None}
    if args.against:
        sources[str(args.against)] = str(args.against / "src")
    print(f"load {os.getloadavg()[0]:.1f}; {os.cpu_count()} cores")
    for name, src in sources.items():
        print(
            f"{name}: import deltaprop {shown(import_seconds(src, args.runs))}; "
            f"deltaprop train --epochs 1 {shown(train_seconds(src, max(3, args.runs // 3)))}"
        )


if __name__ == "__main__":
    main()
