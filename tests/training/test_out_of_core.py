"""Data larger than memory: ``fit`` and the estimators (early stopping too) train from a
memory-mapped ``.npy`` under a memory limit smaller than the file (``resource.setrlimit`` in a
subprocess), and the estimators' ``partial_fit`` takes a chunked Dask array chunk by chunk
without computing it whole."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import deltaprop as dp

pytestmark = pytest.mark.slow

JOB = textwrap.dedent(
    """
    import resource, sys
    limit = int(sys.argv[2]) * 2**20
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))  # anonymous memory: not the file
    import numpy as np
    import deltaprop as dp
    X = np.load(sys.argv[1] + "/X.npy", mmap_mode="r")
    y = np.load(sys.argv[1] + "/y.npy")
    try:
        np.ones(X.size, dtype=np.float32)  # X itself in memory: more than the limit allows
        print("the limit did not hold")
    except MemoryError:
        pass
    net = dp.mlp([X.shape[1], 32, 2], rng=0)
    history = dp.fit(net, dp.SoftmaxCrossEntropy(), dp.Adam(net.parameters()), X, y, epochs=1,
                     batch_size=256, rng=0, verbose=0)
    import warnings
    warnings.simplefilter("ignore")  # one iteration does not converge
    estimator = dp.MLPClassifier(hidden_layer_sizes=(16,), max_iter=1, early_stopping=True,
                                 random_state=0, dtype="float32").fit(X, y)  # held out by index
    anonymous = next(l for l in open("/proc/self/status") if l.startswith("RssAnon"))
    print(history["accuracy"][-1], estimator.validation_scores_[-1],
          int(anonymous.split()[1]) // 1024)
    """
)


def test_fit_streams_a_memory_mapped_file_larger_than_the_memory_limit(tmp_path):
    rows, features = 160_000, 784  # 502 MB of float32
    X = np.lib.format.open_memmap(tmp_path / "X.npy", "w+", np.float32, (rows, features))
    rng = np.random.default_rng(0)
    w = rng.standard_normal(features).astype(np.float32)
    y = np.empty(rows, dtype=np.int64)
    for start in range(0, rows, 20_000):
        block = rng.standard_normal((20_000, features), dtype=np.float32)
        X[start : start + 20_000] = block
        y[start : start + 20_000] = block @ w > 0
    X.flush()
    del X
    np.save(tmp_path / "y.npy", y)
    limit_mb = 480  # the file is 502 MB
    done = subprocess.run(
        [sys.executable, "-c", JOB, str(tmp_path), str(limit_mb)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "the limit did not hold" not in done.stdout
    accuracy, validation, anonymous_mb = done.stdout.split()
    assert float(accuracy) > 0.85  # it learned from every row
    assert float(validation) > 0.85  # the estimator too, with early stopping's held-out rows
    assert int(anonymous_mb) < limit_mb


def test_partial_fit_takes_a_dask_array_chunk_by_chunk():
    da = pytest.importorskip("dask.array", reason="pip install 'deltaprop[dask]'")
    rng = np.random.default_rng(1)
    X_np = rng.standard_normal((3000, 6))
    y_np = (X_np[:, 0] - X_np[:, 1] > 0).astype(int)
    X, y = da.from_array(X_np, chunks=(500, 6)), da.from_array(y_np, chunks=500)
    streamed = dp.MLPClassifier(hidden_layer_sizes=(8,), random_state=0, learning_rate_init=0.01)
    direct = dp.MLPClassifier(hidden_layer_sizes=(8,), random_state=0, learning_rate_init=0.01)
    for _ in range(5):  # five passes over the chunks
        for X_chunk, y_chunk in dp.datasets.chunks(X, y):
            assert len(X_chunk) == 500 and isinstance(X_chunk, np.ndarray)
            streamed.partial_fit(X_chunk, y_chunk, classes=[0, 1])
        for start in range(0, 3000, 500):
            rows = slice(start, start + 500)
            direct.partial_fit(X_np[rows], y_np[rows], classes=[0, 1])
    np.testing.assert_array_equal(streamed.coefs_[0], direct.coefs_[0])
    assert streamed.score(X_np, y_np) > 0.9


def test_the_command_line_streams_an_npy_pair_and_says_so(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from deltaprop.cli import app

    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(2)
    X = rng.standard_normal((4000, 5)).astype(np.float32)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", (X[:, 0] > 0).astype(np.int64))
    args = ["train", "--data", "X.npy", "--target-file", "y.npy", "--epochs", "20", "--no-plots"]
    result = CliRunner().invoke(app, [*args, "--json", "--out", "m.safetensors"])
    assert result.exit_code == 0, result.output
    import json

    report = json.loads(result.stdout)
    assert report["notes"][0].startswith("streaming X.npy: memory-mapped")
    assert (
        report["split"]["test"] == 1000
        and "the last 25% of the rows" in report["split"]["test_from"]
    )
    assert report["test"]["accuracy"] > 0.9
    refused = CliRunner().invoke(app, ["train", "--data", "iris", "--target-file", "y.npy"])
    assert refused.exit_code == 2 and "--target-file goes with --data X.npy" in refused.output
    short = tmp_path / "short.npy"
    np.save(short, np.zeros(10))
    bad = CliRunner().invoke(app, ["train", "--data", "X.npy", "--target-file", str(short)])
    assert bad.exit_code == 2 and "must hold one target per row" in bad.output
