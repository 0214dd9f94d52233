"""deltaprop on a GPU against PyTorch eager (plain and fused Adam) and a CUDA-graph step.

Fashion-MNIST, 784-256-128-10 ReLU, softmax cross-entropy, Adam (lr 1e-3), float32, the data
resident on the device. At each batch size every contender trains the same number of epochs in
one run (one ``dp.fit`` call for deltaprop, so its data are copied to the device once), on the
same full batches (the last, partial batch of an epoch is left out for all of them, as a CUDA
graph needs one shape); each epoch is timed between two device synchronizations. Reported: the
median (and minimum) steady epoch (the first epoch, which compiles and warms up, is left out),
the test accuracy after the last epoch, inference samples/s over the 10,000 test images (the
fastest of several passes, the probabilities copied back to the host), and the ratios to the
PyTorch contenders.

- ``deltaprop``: one ``dp.fit(..., epochs=E)`` on a model built with ``device="cuda"``;
- ``torch eager``: ``torch.optim.Adam`` (its default, multi-tensor implementation);
- ``torch fused``: ``torch.optim.Adam(fused=True)``;
- ``torch graph``: the whole step (forward, backward, fused Adam) captured once in a CUDA
  graph and replayed for each batch (needs a GPU).

    python benchmarks/gpu.py                          # batches 128, 1024, 8192 on cuda
    python benchmarks/gpu.py --batch 128 --epochs 4 --out results/
    python benchmarks/gpu.py --synthetic              # random data of Fashion-MNIST's shape
    python benchmarks/gpu.py --device cpu --tiny      # the same code on the CPU (a smoke test)
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

import deltaprop as dp
from deltaprop import datasets
from deltaprop.backend import arrays as backend
from deltaprop.backend.devices import resolve_device

WIDTHS = (784, 256, 128, 10)

try:
    import torch
except ImportError:  # the bench extra is optional
    torch = None


def gpu_name() -> str:
    try:
        line = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout.strip()
        return line.splitlines()[0] if line else "no GPU named by nvidia-smi"
    except (OSError, subprocess.SubprocessError):
        return "no nvidia-smi"


class Deltaprop:
    name = "deltaprop"

    def __init__(self, device: backend.Device, batch: int) -> None:
        self.device, self.batch = device, batch
        rng = np.random.default_rng(0)
        self.net = dp.mlp(WIDTHS, rng=rng, device=device)
        self.opt = dp.Adam(self.net.parameters(), lr=1e-3)
        self.loss = dp.SoftmaxCrossEntropy()
        self.rng = rng

    def train(self, X: np.ndarray, y: np.ndarray, epochs: int) -> list[float]:
        """Seconds per epoch, each between two synchronizations of the device."""
        device, times = self.device, []

        class Timer(dp.Callback):
            def on_epoch_begin(self, run: Any, epoch: int) -> None:
                device.synchronize()
                self.started = time.perf_counter()

            def on_epoch_end(self, run: Any, epoch: int, logs: dict) -> None:
                device.synchronize()
                times.append(time.perf_counter() - self.started)

        dp.fit(
            self.net,
            self.loss,
            self.opt,
            X,
            y,
            epochs=epochs,
            batch_size=self.batch,
            rng=self.rng,
            verbose=0,
            callbacks=[Timer()],
            engine="reference",
        )
        return times

    def synchronize(self) -> None:
        self.device.synchronize()

    def predict(self, X: np.ndarray) -> np.ndarray:
        return dp.predict(self.net, self.loss, X, batch_size=8192)


class Torch:
    def __init__(self, device: str, batch: int, variant: str) -> None:
        torch.manual_seed(0)
        self.device, self.batch, self.variant = device, batch, variant
        self.name = f"torch {variant}"
        layers: list[Any] = []
        for i, (a, b) in enumerate(zip(WIDTHS[:-1], WIDTHS[1:], strict=True)):
            layers += [torch.nn.Linear(a, b)] + ([torch.nn.ReLU()] if i < 2 else [])
        self.net = torch.nn.Sequential(*layers).to(device)
        fused = variant in ("fused", "graph")
        self.opt = torch.optim.Adam(
            self.net.parameters(), lr=1e-3, fused=fused, capturable=variant == "graph"
        )
        self.loss = torch.nn.CrossEntropyLoss()
        self.graph: Any = None

    def train(self, X: np.ndarray, y: np.ndarray, epochs: int) -> list[float]:
        """Seconds per epoch, each between two synchronizations of the device."""
        self.X = torch.from_numpy(X).to(self.device)
        self.y = torch.from_numpy(y.astype(np.int64)).to(self.device)
        if self.variant == "graph":
            self._capture()
        times = []
        for _ in range(epochs):
            self.synchronize()
            started = time.perf_counter()
            self.epoch()
            self.synchronize()
            times.append(time.perf_counter() - started)
        return times

    def _step(self, xb: Any, yb: Any) -> Any:
        self.opt.zero_grad(set_to_none=self.variant != "graph")
        loss = self.loss(self.net(xb), yb)
        loss.backward()
        self.opt.step()
        return loss

    def _capture(self) -> None:
        """The step in a CUDA graph, as PyTorch's documentation captures a whole network."""
        self.static_x = self.X[: self.batch].clone()
        self.static_y = self.y[: self.batch].clone()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                self._step(self.static_x, self.static_y)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self._step(self.static_x, self.static_y)

    def epoch(self) -> None:
        order = torch.randperm(len(self.X), device=self.device)
        for start in range(0, len(self.X) - self.batch + 1, self.batch):
            index = order[start : start + self.batch]
            if self.graph is not None:
                torch.index_select(self.X, 0, index, out=self.static_x)
                torch.index_select(self.y, 0, index, out=self.static_y)
                self.graph.replay()
            else:
                self._step(self.X[index], self.y[index])

    def synchronize(self) -> None:
        if self.device != "cpu":
            torch.cuda.synchronize()

    def predict(self, X: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            logits = self.net(torch.from_numpy(X).to(self.device))
            return torch.softmax(logits, dim=1).cpu().numpy()


def accuracy(probabilities: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.argmax(probabilities, axis=1) == y))


def measure(contenders: list[Any], epochs: int, X: np.ndarray, y: np.ndarray) -> dict:
    return {c.name: c.train(X, y, epochs) for c in contenders}


def inference_rate(c: Any, X: np.ndarray, passes: int) -> float:
    c.predict(X)
    best = np.inf
    for _ in range(passes):
        c.synchronize()
        start = time.perf_counter()
        c.predict(X)
        best = min(best, time.perf_counter() - start)
    return len(X) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--batch", type=int, action="append")
    parser.add_argument("--epochs", type=int, default=6, help="per contender and batch size")
    parser.add_argument("--data-dir", default=str(datasets.FASHION_MNIST_DIR))
    parser.add_argument("--synthetic", action="store_true", help="random data, same shapes")
    parser.add_argument("--tiny", action="store_true", help="4,096 rows, 3 epochs: a smoke test")
    parser.add_argument("--out", type=Path, help="also write the report to OUT/gpu[-tiny].md")
    args = parser.parse_args()
    device = resolve_device(args.device)
    if args.synthetic:
        rng = np.random.default_rng(0)
        X, X_test = rng.random((60000, 784), np.float32), rng.random((10000, 784), np.float32)
        y, y_test = rng.integers(0, 10, 60000), rng.integers(0, 10, 10000)
    else:
        X, X_test, y, y_test = datasets.fashion_mnist(args.data_dir).train_test_split()
    if args.tiny:
        X, y, X_test, y_test, args.epochs = X[:4096], y[:4096], X_test[:2048], y_test[:2048], 3
    batches = args.batch or [128, 1024, 8192]
    on_gpu = device.name != "cpu"
    lines = [
        f"# python benchmarks/gpu.py {' '.join(sys.argv[1:])}",
        "",
        f"device {device.name}: {gpu_name() if on_gpu else 'the CPU'}; torch "
        f"{torch.__version__ if torch else 'not installed'}; {len(X)} rows; {args.epochs} "
        "epochs each; seconds per steady epoch, median (min)",
    ]
    for batch in batches:
        rows = len(X) // batch * batch  # full batches only, for every contender
        contenders: list[Any] = [Deltaprop(device, batch)]
        if torch is not None:
            torch_device = "cuda" if on_gpu else "cpu"
            variants = ["eager", "fused", "graph"] if on_gpu else ["eager"]
            contenders += [Torch(torch_device, batch, v) for v in variants]
        times = measure(contenders, args.epochs, X[:rows], y[:rows])
        lines += ["", f"## batch {batch}", ""]
        lines.append("| contender | epoch (s) | test accuracy | inference (samples/s) |")
        lines.append("|---|---|---|---|")
        median = {}
        for c in contenders:
            steady = times[c.name][1:] or times[c.name]
            median[c.name] = statistics.median(steady)
            rate = inference_rate(c, X_test, passes=5)
            lines.append(
                f"| {c.name} | {median[c.name]:.4f} ({min(steady):.4f}) | "
                f"{accuracy(c.predict(X_test), y_test):.4f} | {rate:,.0f} |"
            )
        lines.append("")
        for other in [c.name for c in contenders[1:]]:
            lines.append(f"- deltaprop / {other}: {median['deltaprop'] / median[other]:.2f}")
    report = "\n".join(lines) + "\n"
    print(report)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / ("gpu-tiny.md" if args.tiny else "gpu.md")).write_text(report)


if __name__ == "__main__":
    main()
