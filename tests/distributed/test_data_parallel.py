"""Data-parallel training over MPI: ``mpiexec -n 2`` and ``-n 3`` end with the weights, the
losses, the metrics and the early-stopping decision of one process training on the whole
batches (dropout too: every rank draws the batch's masks and keeps its rows; batch
normalization too: its statistics are summed over the ranks; the compiled epoch too); every
rank holds the same weights; rank 0 alone writes; a resume may use another
number of ranks; mismatched ranks are refused and a failing rank ends the job."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import deltaprop as dp
from deltaprop.distributed import local_launcher

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from mpi_job import case  # noqa: E402

pytest.importorskip("mpi4py", reason="pip install 'deltaprop[mpi]' for the MPI tests")
MPIEXEC = shutil.which("mpiexec")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(MPIEXEC is None, reason="no mpiexec (pip install mpich, or Debian's)"),
]


def mpi(ranks, out, *args, timeout=120):
    """Run ``mpi_job.py`` on ``ranks`` ranks over the loopback interface only."""
    out.mkdir(exist_ok=True)
    command = local_launcher(ranks) + [
        sys.executable,
        str(HERE / "mpi_job.py"),
        str(out),
        *map(str, args),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)


def one_process(name, epochs=None):
    net, loss, opt, X, y, keywords = case(name)
    if epochs is not None:
        keywords["epochs"] = epochs
    keywords.setdefault("engine", "reference")
    history = dp.fit(net, loss, opt, X, y, **keywords)
    return net.flat_values, history


def ranks_of(out, ranks):
    found = []
    for r in range(ranks):
        saved = np.load(out / f"rank-{r}.npz")
        found.append(
            (saved["weights"], json.loads(str(saved["history"])), json.loads(str(saved["stop"])))
        )
    return found


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the one-process run of "diverges"
@pytest.mark.parametrize("ranks", [2, 3])
@pytest.mark.parametrize(
    "name",
    ["classification", "regression", "diverges", "dropout", "batchnorm", "batchnorm-2", "compiled"],
)
def test_n_ranks_end_as_one_process_on_the_whole_batches(tmp_path, ranks, name):
    done = mpi(ranks, tmp_path / "job", name)
    assert done.returncode == 0, done.stderr
    weights, history = one_process(name)
    found = ranks_of(tmp_path / "job", ranks)
    for rank_weights, rank_history, stop in found:
        np.testing.assert_array_equal(rank_weights, found[0][0])  # every rank the same, bitwise
        # the bias before a BatchNorm has a gradient of rounding noise only (the batch mean
        # removes it), which Adam turns into steps of its own: those weights stay ~1e-10
        atol = 1e-8 if name.startswith("batchnorm") else 1e-10
        np.testing.assert_allclose(rank_weights, weights, rtol=0, atol=atol)
        assert set(rank_history) == set(history)
        for key in history:
            if key != "epoch_time":
                np.testing.assert_allclose(rank_history[key], history[key], rtol=1e-9, err_msg=key)
        assert stop == history.stop_reason  # early stopping (or the rollback) decided the same
    if name == "diverges":
        assert history.diverged and history.stop_reason.startswith("non-finite")
        return
    # rank 0 alone wrote the checkpoint and the log, one line per epoch
    assert len((tmp_path / "job" / "log.csv").read_text().splitlines()) == len(history["loss"]) + 1


def test_a_resume_may_use_another_number_of_ranks(tmp_path):
    first = mpi(2, tmp_path / "job", "classification", 4)
    assert first.returncode == 0, first.stderr
    resumed = mpi(3, tmp_path / "job", "classification", 12, "resume")
    assert resumed.returncode == 0, resumed.stderr
    weights, _ = one_process("classification")
    for rank_weights, _, _ in ranks_of(tmp_path / "job", 3):
        np.testing.assert_allclose(rank_weights, weights, rtol=0, atol=1e-10)


def test_ranks_started_differently_are_refused_on_every_rank(tmp_path):
    done = mpi(2, tmp_path / "job", "mismatch")
    assert done.returncode == 0, done.stderr
    for r in (0, 1):
        text = (tmp_path / "job" / f"error-{r}.txt").read_text()
        assert text.startswith("distributed: the ranks were started with different initial weights")
        assert "rank 0:" in text and "rank 1:" in text


def test_a_rank_that_fails_ends_the_whole_job_without_a_hang(tmp_path):
    done = mpi(2, tmp_path / "job", "raises", timeout=60)
    assert done.returncode != 0
    assert "rank 1 of 2 failed: RuntimeError: a callback failed on purpose" in done.stderr


def test_a_rank_that_is_killed_ends_the_whole_job_without_a_hang(tmp_path):
    done = mpi(2, tmp_path / "job", "dies", timeout=60)  # the launcher ends the other rank
    assert done.returncode != 0
    assert not list((tmp_path / "job").glob("rank-*.npz"))  # no rank went on to the end


def test_mpirun_deltaprop_train_just_works(tmp_path):
    args = ["train", "--data", "iris", "--epochs", "8", "--no-plots", "--json", "--hidden", "8"]
    command = local_launcher(2)
    parallel = subprocess.run(
        [*command, sys.executable, "-m", "deltaprop", *args, "--out", "two.safetensors"],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
    )
    assert parallel.returncode == 0, parallel.stderr
    report = json.loads(parallel.stdout)  # one document: rank 0's alone
    assert "trained data-parallel on 2 MPI ranks" in report["notes"]
    alone = subprocess.run(
        [sys.executable, "-m", "deltaprop", *args, "--out", "one.safetensors"],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
    )
    assert alone.returncode == 0, alone.stderr
    single = json.loads(alone.stdout)
    assert report["epochs"] == single["epochs"]
    np.testing.assert_allclose(report["history"]["loss"], single["history"]["loss"], rtol=1e-5)
    two, _ = dp.load(tmp_path / "two.safetensors")
    one, _ = dp.load(tmp_path / "one.safetensors")
    np.testing.assert_allclose(two.flat_values, one.flat_values, atol=1e-5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.safetensors", "two.safetensors"]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_the_estimators_take_it_too(tmp_path):
    from mpi_job import estimator

    done = mpi(2, tmp_path / "job", "estimator")
    assert done.returncode == 0, done.stderr
    alone = estimator(None)
    for weights, history, n_iter in ranks_of(tmp_path / "job", 2):
        np.testing.assert_allclose(weights, alone.coefs_[0], atol=1e-10)
        np.testing.assert_allclose(history["validation_scores"], alone.validation_scores_)
        assert n_iter == alone.n_iter_


def test_the_ranks_share_one_memory_mapped_file(tmp_path):
    _, _, _, X, _, _ = case("classification")
    (tmp_path / "job").mkdir()
    np.save(tmp_path / "job" / "X.npy", X)
    done = mpi(2, tmp_path / "job", "memmap")
    assert done.returncode == 0, done.stderr
    weights, history = one_process("classification")
    for rank_weights, rank_history, _ in ranks_of(tmp_path / "job", 2):
        np.testing.assert_allclose(rank_weights, weights, rtol=0, atol=1e-10)
        np.testing.assert_allclose(rank_history["val_loss"], history["val_loss"], rtol=1e-9)
