"""deltaprop's MLPClassifier against scikit-learn's on Fashion-MNIST, same hyperparameters.

Task: hidden_layer_sizes=(256, 128), ReLU, Adam (lr 1e-3), batch 200, alpha 1e-4, 10 iterations
(epochs), float32 pixels in [0, 1]. Each library fits ``--repeats`` times, alternating, in one
process; the table gives the fastest fit and the test accuracy of each, and their ratio.

    python benchmarks/estimators.py                 # the table (about 2 minutes)
    python benchmarks/estimators.py --tiny          # a few batches: a smoke test

The data come from the Debian package ``dataset-fashion-mnist``.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as SklearnMLP

import deltaprop as dp
from deltaprop import datasets
from fashion_mnist import gemm_floor  # the same directory

HERE = Path(__file__).parent
PARAMS = dict(
    hidden_layer_sizes=(256, 128),
    solver="adam",
    batch_size=200,
    learning_rate_init=1e-3,
    alpha=1e-4,
    max_iter=10,
    random_state=0,
)


def run(cls: type, X_train, y_train, X_test, y_test) -> tuple[float, float]:
    """Seconds to fit, and test accuracy."""
    model = cls(**PARAMS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        started = time.perf_counter()
        model.fit(X_train, y_train)
        seconds = time.perf_counter() - started
    return seconds, float(np.mean(model.predict(X_test) == y_test))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="2,000 rows and 2 iterations")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    X_train, X_test, y_train, y_test = datasets.fashion_mnist().train_test_split()
    if args.tiny:
        X_train, y_train, X_test, y_test = (
            X_train[:2000],
            y_train[:2000],
            X_test[:500],
            y_test[:500],
        )
        PARAMS["max_iter"] = 2
    dp.MLPClassifier(**{**PARAMS, "max_iter": 1}).fit(X_train[:400], y_train[:400])  # compile
    results: dict[str, list[tuple[float, float]]] = {"deltaprop": [], "scikit-learn": []}
    for _ in range(args.repeats):
        results["deltaprop"].append(run(dp.MLPClassifier, X_train, y_train, X_test, y_test))
        results["scikit-learn"].append(run(SklearnMLP, X_train, y_train, X_test, y_test))
    rows = {name: (min(t for t, _ in runs), runs[0][1]) for name, runs in results.items()}
    epochs = PARAMS["max_iter"]
    floor = epochs * min(gemm_floor(X_train, batch_size=200) for _ in range(args.repeats))
    lines = [
        f"Fashion-MNIST {len(X_train)} train / {len(X_test)} test, MLPClassifier("
        + ", ".join(f"{k}={v!r}" for k, v in PARAMS.items())
        + f"), fastest of {args.repeats} fits each, alternating",
        "",
        "| library | fit (s) | test accuracy |",
        "|---|---|---|",
        *(f"| {name} | {t:.2f} | {acc:.4f} |" for name, (t, acc) in rows.items()),
        "",
        f"scikit-learn / deltaprop fit time: {rows['scikit-learn'][0] / rows['deltaprop'][0]:.2f}",
        f"GEMM floor (the {epochs} epochs' matrix products alone, same run): {floor:.2f} s; "
        f"scikit-learn / floor: {rows['scikit-learn'][0] / floor:.2f}, deltaprop / floor: "
        f"{rows['deltaprop'][0] / floor:.2f}",
    ]
    report = "\n".join(lines)
    print(report)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / ("estimators-tiny.md" if args.tiny else "estimators.md")).write_text(report + "\n")


if __name__ == "__main__":
    main()
