"""The first second: ``import deltaprop`` and a whole ``deltaprop train`` command, each in fresh
processes, as a user meets them (median and range of ``--runs`` processes).

    python benchmarks/start_up.py                 # import: 9 processes; train: 3
    python benchmarks/start_up.py --against DIR   # also another checkout's src/ (before/after)
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


def shown(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} s ({min(values):.3f}–{max(values):.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--against", type=Path, help="another checkout, to compare with")
    args = parser.parse_args()
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
