"""deltaprop against PyTorch (eager, CPU) and scikit-learn on Fashion-MNIST, side by side.

Task: 784-256-128-10 ReLU MLP, softmax cross-entropy, Adam (lr 1e-3), batch 128, float32.
Epochs of the three libraries are interleaved in one process so that machine noise hits them
alike; every figure that matters is reported as a ratio measured in the same run.

    python benchmarks/fashion_mnist.py               # the table (about 3 minutes)
    python benchmarks/fashion_mnist.py --sweep       # also batch-size and width sweeps (CSV, PNG)
    python benchmarks/fashion_mnist.py --profile     # the parts of deltaprop's training step, timed
    python benchmarks/fashion_mnist.py --tiny        # a few batches of everything: a smoke test

PyTorch is optional (``pip install -e '.[bench]'``); without it its columns are left out.
"""

from __future__ import annotations

import argparse
import collections
import csv
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import deltaprop as dp
from deltaprop import datasets
from deltaprop.training.inputs import Batches

HERE = Path(__file__).parent
WIDTHS = (784, 256, 128, 10)

try:
    import torch
except ImportError:  # the bench extra is optional
    torch = None


def load(tiny: bool) -> tuple[np.ndarray, ...]:
    X_train, X_test, y_train, y_test = datasets.fashion_mnist().train_test_split()
    if tiny:
        return X_train[:2048], X_test[:512], y_train[:2048], y_test[:512]
    return X_train, X_test, y_train, y_test


# --- the three contenders, one epoch at a time --------------------------------------------------


class Deltaprop:
    name = "deltaprop"

    def __init__(
        self, seed: int, dtype=np.float32, widths=WIDTHS, batch_size=128, engine: str = "auto"
    ) -> None:
        rng = np.random.default_rng(seed)
        self.engine = engine
        self.net = dp.mlp(widths, rng=rng, dtype=dtype)
        self.loss = dp.SoftmaxCrossEntropy()
        self.opt = dp.Adam(self.net.parameters(), lr=1e-3)
        self.rng = rng
        self.batch_size = batch_size

    def epoch(self, X, y) -> None:
        dp.fit(
            self.net,
            self.loss,
            self.opt,
            X,
            y,
            epochs=1,
            batch_size=self.batch_size,
            rng=self.rng,
            verbose=0,
            engine=self.engine,
        )

    def predict(self, X) -> np.ndarray:
        return np.argmax(self.net.predict_logits(X), axis=1)


class Torch:
    name = "pytorch"

    def __init__(self, seed: int, dtype=np.float32, widths=WIDTHS, batch_size=128) -> None:
        torch.manual_seed(seed)
        torch.set_num_threads(2)
        layers: list = []
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            layers.append(torch.nn.Linear(a, b))
            if i < len(widths) - 2:
                layers.append(torch.nn.ReLU())
        self.net = torch.nn.Sequential(*layers).to(
            torch.float64 if dtype == np.float64 else torch.float32
        )
        self.opt = torch.optim.Adam(self.net.parameters(), lr=1e-3)
        self.loss = torch.nn.CrossEntropyLoss()
        self.generator = torch.Generator().manual_seed(seed)
        self.batch_size = batch_size

    def epoch(self, X, y) -> None:
        X_t, y_t = torch.from_numpy(X), torch.from_numpy(y)
        order = torch.randperm(len(X_t), generator=self.generator)
        for start in range(0, len(X_t), self.batch_size):
            index = order[start : start + self.batch_size]
            self.opt.zero_grad()
            self.loss(self.net(X_t[index]), y_t[index]).backward()
            self.opt.step()

    def predict(self, X) -> np.ndarray:
        with torch.no_grad():
            return self.net(torch.from_numpy(X)).argmax(dim=1).numpy()


class Sklearn:
    name = "scikit-learn"

    def __init__(self, seed: int, dtype=np.float32, widths=WIDTHS, batch_size=128) -> None:
        from sklearn.neural_network import MLPClassifier

        self.net = MLPClassifier(
            hidden_layer_sizes=widths[1:-1],
            solver="adam",
            learning_rate_init=1e-3,
            batch_size=batch_size,
            alpha=0.0,
            random_state=seed,
        )
        self.classes = np.arange(widths[-1])

    def epoch(self, X, y) -> None:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.net.partial_fit(X, y, classes=self.classes)

    def predict(self, X) -> np.ndarray:
        return self.net.predict(X)


def contenders() -> list[type]:
    return [Deltaprop, *([Torch] if torch is not None else []), Sklearn]


# --- measurements ---------------------------------------------------------------------------


def gemm_floor(X: np.ndarray, batch_size: int = 128, widths=WIDTHS) -> float:
    """Seconds per epoch of the matrix products alone: 3 forward, 5 backward per batch."""
    rng = np.random.default_rng(0)
    Ws = [
        rng.standard_normal((b, a)).astype(X.dtype)
        for a, b in zip(widths[:-1], widths[1:], strict=True)
    ]
    x = X[:batch_size].copy()
    acts = [np.empty((batch_size, w), X.dtype) for w in widths]
    grads = [np.empty_like(W) for W in Ws]
    started = time.perf_counter()
    for _ in range(len(X) // batch_size):
        acts[0][...] = x
        for i, W in enumerate(Ws):
            np.matmul(acts[i], W.T, out=acts[i + 1])
        for i in reversed(range(len(Ws))):
            np.matmul(acts[i + 1].T, acts[i], out=grads[i])
            if i > 0:
                np.matmul(acts[i + 1], Ws[i], out=acts[i])
    return time.perf_counter() - started


def timed(fn, *args) -> float:
    started = time.perf_counter()
    fn(*args)
    return time.perf_counter() - started


def inference_rates(names: list[str], tiny: bool, rounds: int = 5) -> dict[str, float]:
    """Samples per second on the test images, each measured in a fresh process (see
    inference_child), the libraries taking turns for ``rounds`` rounds; each library's fastest
    round. A single process's figure moved by up to 1.7x from one round to the next here, with
    the machine's load, so one round per library said more about the moment than the library."""
    rates: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(1 if tiny else rounds):
        for name in names:
            rates[name].append(float(_child("--inference", name, tiny)))
    return {name: max(values) for name, values in rates.items()}


def inference_child(name: str, tiny: bool, repeats: int = 15) -> None:
    """The fastest of ``repeats`` passes over the test images, one library alone in a process.

    Alone, because the libraries disturb one another: right after one library's matrix products
    its thread pool still holds or has just released the second core, and the next library's
    inference ran up to 2x slower or faster depending on which came before it. A pass takes
    ~20 ms and single passes swing with the machine's noise; the fastest pass is the library's
    own speed. The model trains one epoch on part of the data first (the speed of a forward
    pass does not depend on the weights' values) and predicts for a second before the timing.
    """
    cls = {c.name: c for c in contenders()}[name]
    X_train, X_test, y_train, _ = load(tiny)
    model = cls(seed=0)
    model.epoch(X_train[:10000], y_train[:10000])
    warm_up = time.perf_counter() + 1.0  # a second of passes first: the first are slower
    while time.perf_counter() < warm_up:
        model.predict(X_test)
    print(len(X_test) / min(timed(model.predict, X_test) for _ in range(repeats)))


def _child(flag: str, name: str, tiny: bool) -> str:
    args = [sys.executable, __file__, flag, name] + (["--tiny"] if tiny else [])
    result = subprocess.run(args, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise RuntimeError(result.stderr)
    return result.stdout.split()[-1]


def peak_memory_ratio(name: str, tiny: bool) -> float:
    """Peak resident memory over the float32 data set's size, measured in a fresh process."""
    return float(_child("--memory", name, tiny))


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def memory_child(name: str, tiny: bool) -> None:
    """Peak RSS growth from loading the data and training one epoch, after a warm-up.

    The warm-up (one epoch on 256 random rows) loads each library's compiled code and thread
    pools before the baseline is read, so the figure is what grows with the data.
    """
    cls = {c.name: c for c in contenders()}[name]
    model = cls(seed=0)
    rng = np.random.default_rng(0)
    model.epoch(rng.random((256, WIDTHS[0]), dtype=np.float32), rng.integers(0, 10, 256))
    model.predict(rng.random((256, WIDTHS[0]), dtype=np.float32))
    model = cls(seed=0)
    baseline = _rss_kib("VmRSS:")
    X_train, X_test, y_train, y_test = load(tiny)
    model.epoch(X_train, y_train)
    model.predict(X_test)
    data = X_train.nbytes + X_test.nbytes
    print((_rss_kib("VmHWM:") - baseline) * 1024 / data)


def profile(X: np.ndarray, y: np.ndarray, epochs: int = 3) -> str:
    """Where the reference path's training step spends its time, each part timed inside the
    real loop (the compiled epoch is one function: ``benchmarks/compiled_step.py`` measures it).

    Wraps the layers', the loss's and the optimizer's methods and the batch gather with timers,
    trains ``epochs`` epochs and reports the last one (the first pays for compilation).
    """
    model = Deltaprop(seed=0, engine="reference")
    spent: collections.Counter[str] = collections.Counter()
    patched: list[tuple[object, str, object]] = []  # class attributes to put back afterwards

    def timer(owner, method: str, part: str) -> None:
        inner = getattr(owner, method)
        if isinstance(owner, type):
            patched.append((owner, method, owner.__dict__[method]))

        def timed_call(*args, **kwargs):
            started = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                spent[part] += time.perf_counter() - started

        setattr(owner, method, timed_call)

    for i, layer in enumerate(model.net):
        kind = type(layer).__name__
        timer(layer, "forward", f"{kind} forward ({i})")
        # the training loop calls backward_params on the first layer and backward on the others
        timer(layer, "backward_params" if i == 0 else "backward", f"{kind} backward ({i})")
    timer(model.loss, "forward_prepared", "softmax cross-entropy forward")
    timer(model.loss, "backward", "softmax cross-entropy backward (the delta)")
    timer(model.opt, "grad_norm", "gradient norm (finiteness check)")
    timer(dp.Adam, "rule", "Adam update (one compiled pass)")
    timer(Batches, "gather", "batch gather")
    try:
        for _ in range(epochs):
            spent.clear()
            total = timed(model.epoch, X, y)
    finally:
        for owner, method, original in patched:
            setattr(owner, method, original)
    steps = -(-len(X) // model.batch_size)
    floor = gemm_floor(X)
    lines = [
        f"deltaprop training step, batch {model.batch_size}, {steps} steps; ms per step "
        f"(epoch {total:.3f} s)",
        "",
        "| part | ms/step |",
        "|---|---|",
    ]
    for part, seconds in spent.items():
        lines.append(f"| {part} | {seconds / steps * 1e3:.3f} |")
    rest = total - sum(spent.values())
    lines += [
        f"| loop, metrics and callbacks | {rest / steps * 1e3:.3f} |",
        f"| **total** | **{total / steps * 1e3:.3f}** |",
        "",
        f"The matrix products alone (GEMM floor, same run): {floor / steps * 1e3:.3f} ms/step.",
    ]
    return "\n".join(lines)


# --- the report -------------------------------------------------------------------------------


def main_table(epochs: int, tiny: bool) -> str:
    X_train, X_test, y_train, y_test = load(tiny)
    models = [cls(seed=0) for cls in contenders()]
    times: dict[str, list[float]] = {m.name: [] for m in models}
    floors = []
    for _ in range(epochs):
        floors.append(gemm_floor(X_train))
        for model in models:
            times[model.name].append(timed(model.epoch, X_train, y_train))
    steady = slice(1, epochs) if epochs > 1 else slice(0, 1)
    floor = statistics.median(floors)
    rows = {}
    rates = inference_rates([model.name for model in models], tiny)
    for model in models:
        t = times[model.name]
        rows[model.name] = {
            "epoch 2 (s)": t[1] if epochs > 1 else t[0],
            "median epochs 2-n (s)": statistics.median(t[steady]),
            "last epoch (s)": t[-1],
            "test accuracy": float(np.mean(model.predict(X_test) == y_test)),
            "inference (samples/s)": rates[model.name],
            "peak memory / data": peak_memory_ratio(model.name, tiny),
        }
    ours = rows["deltaprop"]["median epochs 2-n (s)"]
    rate = "inference (samples/s)"
    lines = [
        f"Fashion-MNIST {len(X_train)} train / {len(X_test)} test, 784-256-128-10 ReLU, "
        f"Adam 1e-3, batch 128, float32, {epochs} epochs interleaved",
        f"GEMM floor (matrix products alone): {floor:.3f} s/epoch",
        "",
        "| library | " + " | ".join(next(iter(rows.values()))) + " |",
        "|---" * (1 + len(next(iter(rows.values())))) + "|",
    ]
    for name, row in rows.items():
        cells = [f"{v:,.0f}" if "samples" in k else f"{v:.3f}" for k, v in row.items()]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "ratios (same run):",
        f"- deltaprop / GEMM floor: {ours / floor:.2f}",
        f"- deltaprop last epoch / epoch 2: "
        f"{rows['deltaprop']['last epoch (s)'] / rows['deltaprop']['epoch 2 (s)']:.2f}",
    ]
    for name in rows:
        if name != "deltaprop":
            lines.append(
                f"- deltaprop / {name} (steady-state epoch): "
                f"{ours / rows[name]['median epochs 2-n (s)']:.2f}"
            )
            lines.append(
                f"- inference deltaprop / {name}: {rows['deltaprop'][rate] / rows[name][rate]:.2f}"
            )
    lines += ["", "other settings (median of epochs 2-3, s/epoch):", ""]
    lines.append(
        "| setting | " + " | ".join(c.name for c in contenders() if c is not Sklearn) + " |"
    )
    lines.append("|---" * (1 + len([c for c in contenders() if c is not Sklearn])) + "|")
    for label, kwargs in (
        ("float64, batch 128", {"dtype": np.float64}),
        ("float32, batch 32", {"batch_size": 32}),
    ):
        X = X_train.astype(np.float64) if "dtype" in kwargs else X_train
        cells = []
        for cls in contenders():
            if cls is Sklearn:
                continue
            model = cls(seed=0, **kwargs)
            cells.append(
                f"{statistics.median(timed(model.epoch, X, y_train) for _ in range(3)):.3f}"
            )
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def sweeps(out: Path, tiny: bool) -> None:
    X_train, _, y_train, _ = load(tiny)
    X, y = X_train[:20000], y_train[:20000]
    rows = []
    for batch in (32, 64, 128, 256, 512, 1024):
        for cls in contenders():
            if cls is Sklearn:
                continue
            model = cls(seed=0, batch_size=batch)
            model.epoch(X, y)
            rows.append(("batch_size", batch, cls.name, timed(model.epoch, X, y)))
    for width in (64, 256, 1024, 2048):
        for cls in contenders():
            if cls is Sklearn:
                continue
            model = cls(seed=0, widths=(784, width, width // 2, 10))
            model.epoch(X, y)
            rows.append(("width", width, cls.name, timed(model.epoch, X, y)))
    with open(out / "sweeps.csv", "w", newline="") as f:
        csv.writer(f).writerows([("sweep", "value", "library", "seconds_per_20k_samples"), *rows])
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, sweep in zip(axes, ("batch_size", "width"), strict=True):
        for library in sorted({r[2] for r in rows}):
            points = [(r[1], r[3]) for r in rows if r[0] == sweep and r[2] == library]
            ax.plot(*zip(*points, strict=True), marker="o", label=library)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel(sweep if sweep == "batch_size" else "first hidden width (second is half)")
        ax.set_ylabel("seconds per 20,000 samples")
        ax.legend()
    fig.tight_layout()
    fig.savefig(out / "sweeps.png", dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--tiny", action="store_true", help="a few batches only (smoke test)")
    parser.add_argument("--sweep", action="store_true", help="also run the sweeps")
    parser.add_argument(
        "--profile", action="store_true", help="only time the parts of deltaprop's step"
    )
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--memory", help=argparse.SUPPRESS)
    parser.add_argument("--inference", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory:
        memory_child(args.memory, args.tiny)
        return
    if args.inference:
        inference_child(args.inference, args.tiny)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    if args.profile:
        X_train, _, y_train, _ = load(args.tiny)
        report = profile(X_train, y_train, epochs=2 if args.tiny else 3)
        print(report)
        (args.out / ("tiny-profile.md" if args.tiny else "profile.md")).write_text(report + "\n")
        return
    table = main_table(2 if args.tiny else args.epochs, args.tiny)
    print(table)
    (args.out / ("tiny.md" if args.tiny else "latest.md")).write_text(table + "\n")
    if args.sweep:
        sweeps(args.out, args.tiny)
        print(f"sweeps written to {args.out / 'sweeps.csv'} and {args.out / 'sweeps.png'}")


if __name__ == "__main__":
    main()
