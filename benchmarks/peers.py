"""deltaprop against the strongest CPU peers, epochs taking turns in one process.

Fashion-MNIST, 784-256-128-10 ReLU, softmax cross-entropy, Adam (lr 1e-3), float32, the same
shuffled batches for everyone. Contenders (each optional, ``pip install -e '.[bench]'``):

- ``deltaprop``: ``dp.fit(..., engine="auto")`` — the compiled epoch where it chooses it;
- ``deltaprop compiled``: ``engine="compiled"``;
- ``JAX jit step``: the whole train step (forward, loss, grad, Adam) under ``jax.jit``;
- ``JAX scan epoch``: the epoch as one ``jax.lax.scan`` over the batches, under ``jax.jit``;
- ``Keras 3 on JAX``: ``model.fit`` for one epoch, the rows in the same order;
- ``PyTorch eager``;
- ``PyTorch compile`` (``--torch-compile``): the model and ``opt.step`` under ``torch.compile``
  (Inductor's C++ code; the backward pass through AOTAutograd).

Reported: the median (and minimum) seconds per epoch of ``--rounds`` rounds after one warm-up
epoch each (compiling excluded), and each as a ratio to deltaprop's in the same run; then, the
models trained, each one's test accuracy and inference samples/s over the 10,000 test images
(the fastest of 5 passes). ``--load K`` runs the timed epochs and the inference beside K
processes that each keep a core busy (started by this script, after the contenders are built),
and reports how many cores each contender's process used while its epochs ran (CPU seconds over
wall seconds: Linux shares the cores between threads, so a library that keeps more threads
runnable takes more of them from its neighbours).

    python benchmarks/peers.py                      # batch 32, 128, 1024; 3 rounds
    python benchmarks/peers.py --batches 128 --rounds 5
    python benchmarks/peers.py --widths 784,4096,4096,10 --rows 6000 --batches 128
    python benchmarks/peers.py --load 2             # beside two busy processes
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import time

import numpy as np

import deltaprop as dp
from contention import beside  # benchmarks/, beside this file

WIDTHS = (784, 256, 128, 10)


PREDICTORS: dict[str, object] = {}
"""Each contender's inference, ``X -> logits`` as a NumPy array (filled by the factories)."""


PAUSE = 0.3
"""Seconds each contender waits before its timed epoch: OpenBLAS's threads (NumPy's, PyTorch's)
spin for about 0.1 s after their last product, on the cores the next contender needs. One
1000×784 by 784×256 product just before it made an epoch of compiled tiles 1.4× slower."""


def deltaprop_epoch(engine: str, widths=WIDTHS):
    net = dp.mlp(list(widths), rng=0)
    PREDICTORS["deltaprop" if engine == "auto" else f"deltaprop {engine}"] = net.predict_logits
    opt = dp.Adam(net.parameters(), lr=1e-3)
    loss = dp.SoftmaxCrossEntropy()

    def epoch(X, y, batch, order) -> float:
        """One epoch in the given order (``train_rows``: no copy of X); the epoch's own time,
        as ``History`` records it — fit's checks of the whole X before it are left out, as a
        run of many epochs pays them once."""
        history = dp.fit(
            net,
            loss,
            opt,
            X,
            y,
            batch_size=batch,
            shuffle=False,
            verbose=0,
            engine=engine,
            rng=0,
            train_rows=order,
        )
        return history["epoch_time"][-1]

    return epoch


def jax_epochs(widths=WIDTHS):
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(0)
    params = []
    for fan_in, fan_out in zip(widths[:-1], widths[1:], strict=True):
        bound = np.sqrt(6 / fan_in)
        params.append(
            (
                jnp.asarray(rng.uniform(-bound, bound, (fan_in, fan_out)), jnp.float32),
                jnp.zeros(fan_out, jnp.float32),
            )
        )

    def forward(params, x):
        for W, b in params[:-1]:
            x = jax.nn.relu(x @ W + b)
        return x @ params[-1][0] + params[-1][1]

    def loss_fn(params, x, y):
        logits = forward(params, x)
        return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(len(y)), y])

    def adam(params, grads, m, v, t):
        t = t + 1
        m = jax.tree_util.tree_map(lambda m, g: 0.9 * m + 0.1 * g, m, grads)
        v = jax.tree_util.tree_map(lambda v, g: 0.999 * v + 0.001 * g * g, v, grads)
        scale = 1e-3 * jnp.sqrt(1 - 0.999**t) / (1 - 0.9**t)
        params = jax.tree_util.tree_map(
            lambda p, m, v: p - scale * m / (jnp.sqrt(v) + 1e-8), params, m, v
        )
        return params, m, v, t

    @jax.jit
    def step(state, x, y):
        params, m, v, t = state
        grads = jax.grad(loss_fn)(params, x, y)
        return adam(params, grads, m, v, t)

    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    state = [(params, zeros, zeros, 0)]
    jitted = jax.jit(forward)
    # the two JAX contenders train one set of parameters: one entry for both
    PREDICTORS["JAX"] = lambda X: np.asarray(jitted(state[0][0], X).block_until_ready())

    def step_epoch(X, y, batch, order):
        s = state[0]
        for start in range(0, len(order) - batch + 1, batch):
            rows = order[start : start + batch]
            s = step(s, X[rows], y[rows])
        jax.block_until_ready(s[0])
        state[0] = s

    @jax.jit
    def scanned(s, xs, ys):
        return jax.lax.scan(lambda s, b: (step(s, b[0], b[1]), None), s, (xs, ys))[0]

    def scan_epoch(X, y, batch, order):
        n = (len(order) // batch) * batch  # scan needs equal batches: the last partial one left
        xs = X[order[:n]].reshape(-1, batch, X.shape[1])
        ys = y[order[:n]].reshape(-1, batch)
        s = scanned(state[0], jnp.asarray(xs), jnp.asarray(ys))
        jax.block_until_ready(s[0])
        state[0] = s

    return step_epoch, scan_epoch


def torch_epoch(compiled: bool = False, widths=WIDTHS):
    import torch

    layers: list = []
    for fan_in, fan_out in zip(widths[:-1], widths[1:], strict=True):
        layers += [torch.nn.Linear(fan_in, fan_out), torch.nn.ReLU()]
    net = torch.nn.Sequential(*layers[:-1])
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    forward = torch.compile(net) if compiled else net
    # the optimizer's step compiled too (PyTorch's recipe: ``torch.compile(opt.step)``)
    update = torch.compile(opt.step) if compiled else opt.step

    def predict(X):
        with torch.no_grad():
            return forward(torch.from_numpy(X)).numpy()

    PREDICTORS["PyTorch compile" if compiled else "PyTorch eager"] = predict

    def epoch(X, y, batch, order):
        Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
        index = torch.from_numpy(order)
        for start in range(0, len(order), batch):
            rows = index[start : start + batch]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(forward(Xt[rows]), yt[rows]).backward()
            update()

    return epoch


def keras_epoch(widths=WIDTHS):
    """Keras 3 on JAX: ``model.fit`` for one epoch of the given order (its own time, without
    the copy of the rows into that order)."""
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras

    hidden = [keras.layers.Dense(width, activation="relu") for width in widths[1:-1]]
    model = keras.Sequential([keras.Input((widths[0],)), *hidden, keras.layers.Dense(widths[-1])])
    PREDICTORS["Keras 3 on JAX"] = lambda X: model.predict(X, batch_size=len(X), verbose=0)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )

    def epoch(X, y, batch, order) -> float:
        Xo, yo = X[order], y[order]
        started = time.perf_counter()
        model.fit(Xo, yo, batch_size=batch, epochs=1, shuffle=False, verbose=0)
        return time.perf_counter() - started

    return epoch


def inference(X_test: np.ndarray, y_test: np.ndarray, passes: int) -> None:
    """Each contender's test accuracy and inference samples/s (the fastest of ``passes``
    passes over the test rows, after one of warm-up), as ratios to deltaprop's."""
    rates: dict[str, tuple[float, float]] = {}
    for name, predict in PREDICTORS.items():
        logits = np.asarray(predict(X_test))  # warm up: compile, caches
        best = math.inf
        for _ in range(passes):
            started = time.perf_counter()
            predict(X_test)
            best = min(best, time.perf_counter() - started)
        rates[name] = (float(np.mean(logits.argmax(axis=1) == y_test)), len(X_test) / best)
    ours = rates["deltaprop"][1]
    print(
        f"\n| after training: {len(X_test):,} test rows | accuracy | inference samples/s "
        "| ratio to deltaprop |\n|---|---|---|---|"
    )
    for name, (accuracy, rate) in rates.items():
        print(f"| {name} | {accuracy:.3f} | {rate:,.0f} | {rate / ours:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[32, 128, 1024])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--widths", default=",".join(map(str, WIDTHS)), help="e.g. 784,4096,4096,10"
    )
    parser.add_argument("--rows", type=int, default=None, help="train on the first ROWS images")
    parser.add_argument("--load", type=int, default=0, help="beside LOAD core-burning processes")
    parser.add_argument(
        "--torch-compile",
        action="store_true",
        help="also PyTorch with the model and the optimizer's step under torch.compile "
        "(needs a C++ compiler; compiling takes a minute or more)",
    )
    args = parser.parse_args()
    widths = tuple(int(w) for w in args.widths.split(","))
    X, X_test, y, y_test = dp.datasets.fashion_mnist().train_test_split()
    X, y = np.ascontiguousarray(X[: args.rows], np.float32), y[: args.rows].astype(np.int64)
    X_test = np.ascontiguousarray(X_test, np.float32)
    contenders = {
        "deltaprop": deltaprop_epoch("auto", widths),
        "deltaprop compiled": deltaprop_epoch("compiled", widths),
    }
    try:
        contenders["JAX jit step"], contenders["JAX scan epoch"] = jax_epochs(widths)
    except ImportError:
        pass
    try:
        contenders["Keras 3 on JAX"] = keras_epoch(widths)
    except ImportError:
        pass
    try:
        contenders["PyTorch eager"] = torch_epoch(widths=widths)
        if args.torch_compile:
            contenders["PyTorch compile"] = torch_epoch(compiled=True, widths=widths)
    except ImportError:
        pass
    with beside(str(args.load)):
        race(args, contenders, widths, X, y)
        inference(X_test, y_test.astype(np.int64), passes=5)


def race(args: argparse.Namespace, contenders: dict, widths, X, y) -> None:
    """The timed epochs, taking turns: per batch size, each contender's median (and minimum)
    seconds, its ratio to deltaprop's, and the cores its process used meanwhile."""
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"{args.load} burners, load {os.getloadavg()[0]:.1f}; Fashion-MNIST {len(X):,} rows, "
        f"{'-'.join(map(str, widths))}, s/epoch median (min)"
    )
    for batch in args.batches:
        times: dict[str, list[float]] = {name: [] for name in contenders}
        cores: dict[str, list[float]] = {name: [] for name in contenders}
        rng = np.random.default_rng(batch)
        for epoch in contenders.values():  # warm up: compile, caches
            epoch(X, y, batch, rng.permutation(len(X)))
        for _ in range(args.rounds):
            order = rng.permutation(len(X))
            for name, epoch in contenders.items():
                time.sleep(PAUSE)
                cpu, started = time.process_time(), time.perf_counter()
                own = epoch(X, y, batch, order)
                wall = time.perf_counter() - started
                times[name].append(own if own is not None else wall)
                cores[name].append((time.process_time() - cpu) / wall)
        ours = statistics.median(times["deltaprop"])
        print(f"\n| batch {batch} | s/epoch | ratio to deltaprop | cores used |\n|---|---|---|---|")
        for name, values in times.items():
            median = statistics.median(values)
            print(
                f"| {name} | {median:.3f} ({min(values):.3f}) | {median / ours:.2f} "
                f"| {statistics.median(cores[name]):.2f} |"
            )


if __name__ == "__main__":
    main()
