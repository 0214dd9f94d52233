"""Dropout and batch normalization on Fashion-MNIST: test accuracy with and without them.

An MLP (784, 512, 512, 10), ReLU, Adam (lr 1e-3), batch 64, trained on the first ``--train``
rows (few, so the plain network overfits) for ``--epochs`` epochs, once per seed, in four
variants: plain; Dropout(0.3) after each hidden ReLU; BatchNorm after each hidden Dense (its bias
dropped, as usual); both. The table gives the final test accuracy on all 10,000 test images,
the training accuracy and the test loss, mean over seeds.

    python benchmarks/regularization.py            # the table (about 2 minutes on 2 cores)
    python benchmarks/regularization.py --tiny     # a few batches: a smoke test

The data come from the Debian package ``dataset-fashion-mnist``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

import deltaprop as dp
from deltaprop import datasets

HERE = Path(__file__).parent
WIDTHS = (784, 512, 512, 10)


def network(seed: int, *, dropout: bool, batch_norm: bool) -> dp.Sequential:
    rng = np.random.default_rng(seed)
    layers: list[dp.Layer] = []
    for i, (fan_in, fan_out) in enumerate(zip(WIDTHS[:-1], WIDTHS[1:], strict=True)):
        hidden = i < len(WIDTHS) - 2
        layers.append(dp.Dense(fan_in, fan_out, bias=not (hidden and batch_norm), rng=rng))
        if hidden:
            if batch_norm:
                layers.append(dp.BatchNorm(fan_out))
            layers.append(dp.ReLU())
            if dropout:
                layers.append(dp.Dropout(0.3))
    return dp.Sequential(*layers)


VARIANTS: dict[str, Callable[[int], dp.Sequential]] = {
    "plain": lambda seed: network(seed, dropout=False, batch_norm=False),
    "Dropout(0.3)": lambda seed: network(seed, dropout=True, batch_norm=False),
    "BatchNorm": lambda seed: network(seed, dropout=False, batch_norm=True),
    "BatchNorm + Dropout(0.3)": lambda seed: network(seed, dropout=True, batch_norm=True),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=6000, help="training rows")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--tiny", action="store_true", help="500 rows, 1 epoch, 1 seed")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    X_train, X_test, y_train, y_test = datasets.fashion_mnist().train_test_split()
    if args.tiny:
        args.train, args.epochs, args.seeds = 500, 1, 1
        X_test, y_test = X_test[:500], y_test[:500]
    X_train, y_train = X_train[: args.train], y_train[: args.train]
    loss = dp.SoftmaxCrossEntropy()
    rows = []
    for name, build in VARIANTS.items():
        scores = []
        started = time.perf_counter()
        for seed in range(args.seeds):
            model = build(seed)
            dp.fit(
                model,
                loss,
                dp.Adam(model.parameters(), lr=1e-3),
                X_train,
                y_train,
                epochs=args.epochs,
                batch_size=64,
                rng=np.random.default_rng(seed),
                verbose=0,
            )
            train = dp.evaluate(model, loss, X_train, y_train)
            test = dp.evaluate(model, loss, X_test, y_test)
            scores.append((test["accuracy"], train["accuracy"], test["loss"]))
        seconds = (time.perf_counter() - started) / args.seeds
        test_acc, train_acc, test_loss = np.mean(scores, axis=0)
        each = ", ".join(f"{s[0]:.4f}" for s in scores)
        rows.append(
            f"| {name} | {test_acc:.4f} ({each}) | {train_acc:.4f} | {test_loss:.3f} | "
            f"{seconds:.1f} |"
        )
        print(rows[-1], flush=True)
    report = "\n".join(
        [
            f"Fashion-MNIST, first {len(X_train)} training rows, {len(X_test)} test rows; MLP "
            f"{WIDTHS}, ReLU, Adam lr 1e-3, batch 64, {args.epochs} epochs; mean over "
            f"{args.seeds} seeds (each seed's test accuracy in brackets)",
            "",
            "| variant | test accuracy | train accuracy | test loss | fit (s) per seed |",
            "|---|---|---|---|---|",
            *rows,
        ]
    )
    print(report)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / ("regularization-tiny.md" if args.tiny else "regularization.md")).write_text(
        report + "\n"
    )


if __name__ == "__main__":
    main()
