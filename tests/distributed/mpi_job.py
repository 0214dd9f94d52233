"""One rank of a data-parallel job the tests start with ``mpiexec -n K``: train the test's
network with ``distributed=True`` and write what this rank ended with to ``OUT/rank-R.npz``.

    python mpi_job.py OUT CASE [EPOCHS] [RESUME]

CASE names the network and data of :func:`case` (shared with the tests' one-process runs).
"""

import json
import os
import signal
import sys
from pathlib import Path

import numpy as np

import deltaprop as dp


def case(name: str, seed: int = 0):
    """(model, loss, optimizer, X, y, fit keywords) of a test case, the same in every process."""
    rng = np.random.default_rng(7)
    X = rng.standard_normal((150, 8))
    if name in ("regression", "diverges"):
        y = X @ rng.standard_normal((8, 2)) + 0.1 * rng.standard_normal((150, 2))
        net = dp.mlp([8, 12, 2], rng=seed, dtype=np.float64, l2=0.01)
        loss = dp.MeanSquaredError()
        lr = 0.05 if name == "diverges" else 0.005  # 0.05 with momentum blows up in epoch 1
        opt = dp.SGD(net.parameters(), lr=lr, momentum=0.9)
        # 120 training rows in batches of 7: the last has one row, and other ranks get none
        extra = {"sample_weight": rng.uniform(0.0, 2.0, 150), "batch_size": 7}
    else:
        y = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(int) + (X[:, 3] > 1)
        dropout = 0.3 if name == "dropout" else 0.0  # masks drawn from fit's generator
        activation = dp.ReLU if name == "compiled" else dp.Tanh  # the compiled epoch's chain
        net = dp.mlp([8, 16, 3], rng=seed, dtype=np.float64, activation=activation, dropout=dropout)
        loss = dp.SoftmaxCrossEntropy()
        opt = dp.Adam(net.parameters(), lr=0.01)
        extra = {"batch_size": 7 if name == "dropout" else 32}
        if name.startswith("batchnorm"):  # batch statistics summed over the ranks
            layers = [
                dp.Dense(8, 16, rng=seed),
                dp.BatchNorm(16),
                dp.ReLU(),
                dp.Dense(16, 3, rng=1),
            ]
            net = dp.Sequential(*layers).astype(np.float64)
            opt = dp.Adam(net.parameters(), lr=0.01)
            extra = {"batch_size": 8}
            if name == "batchnorm-2":  # batches of 2 on 3 ranks: one rank has no rows of each
                # (SGD: Adam turns the rounding noise of the bias before BatchNorm into whole
                # steps, and statistics of 2 rows make that chaotic within a few epochs)
                opt = dp.SGD(net.parameters(), lr=0.01)
                extra = {"batch_size": 2}
    if name == "compiled":
        extra["engine"] = "compiled"
    keywords = {
        # 2 rows of statistics make training chaotic: rounding differences grow 1e-13 → 2e-10
        # from epoch 1 to 3, and to 0.5 by epoch 12, in one process against another order of sums
        "epochs": 2 if name == "batchnorm-2" else 12,
        "rng": 3,
        "validation_split": 0.2,
        "callbacks": [dp.EarlyStopping(patience=2, restore_best_weights=True)],
        "verbose": 0,
        **extra,
    }
    return net, loss, opt, X, y, keywords


def estimator(distributed):
    """scikit-learn's MLPClassifier on digits, early stopping on: the same in every process."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    model = dp.MLPClassifier(
        hidden_layer_sizes=(16,),
        max_iter=15,
        random_state=0,
        early_stopping=True,
        distributed=distributed,
        dtype="float64",
    )
    return model.fit(X / 16, y)


def main() -> None:
    out, name = Path(sys.argv[1]), sys.argv[2]
    from deltaprop.distributed import World

    world = World()
    if name == "estimator":
        import warnings

        warnings.simplefilter("ignore")
        fitted = estimator(True)
        np.savez(
            out / f"rank-{world.rank}.npz",
            weights=fitted.coefs_[0],
            history=json.dumps({"validation_scores": fitted.validation_scores_}),
            stop=json.dumps(fitted.n_iter_),
        )
        return
    seed = 1 if name == "mismatch" and world.rank == 1 else 0
    refused = ("mismatch", "raises", "dies", "memmap")
    net, loss, opt, X, y, keywords = case("classification" if name in refused else name, seed)
    if name == "memmap":  # one file shared by the ranks, read as each reaches its rows
        X = np.load(out / "X.npy", mmap_mode="r")
    if len(sys.argv) > 3:
        keywords["epochs"] = int(sys.argv[3])
    checkpoint = out / "checkpoint.safetensors"
    keywords["callbacks"].append(dp.ModelCheckpoint(checkpoint))
    keywords["callbacks"].append(dp.CSVLogger(out / "log.csv"))
    if len(sys.argv) > 4:
        keywords["resume_from"] = checkpoint
    if name in ("raises", "dies"):

        class Fails(dp.Callback):
            def on_epoch_end(self, run, epoch, logs):
                if world.rank == 1 and epoch == 1:
                    if name == "dies":  # killed, as by the out-of-memory killer: no exception
                        os.kill(os.getpid(), signal.SIGKILL)
                    raise RuntimeError("a callback failed on purpose")

        keywords["callbacks"].append(Fails())
    try:
        history = dp.fit(net, loss, opt, X, y, distributed=world, **keywords)
    except ValueError as error:
        (out / f"error-{world.rank}.txt").write_text(str(error))
        return
    np.savez(
        out / f"rank-{world.rank}.npz",
        weights=net.flat_values,
        history=json.dumps({k: v for k, v in history.items()}),
        stop=json.dumps(history.stop_reason),
    )


if __name__ == "__main__":
    main()
