"""The benchmark script runs end to end on a tiny budget, so it cannot rot (no timing asserted)."""

import subprocess
import sys
from pathlib import Path

import pytest

from deltaprop import datasets

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "fashion_mnist.py"


@pytest.mark.skipif(
    not datasets.FASHION_MNIST_DIR.exists(),
    reason="Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)",
)
def test_benchmark_runs_on_a_tiny_budget(tmp_path):
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--tiny", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    table = (tmp_path / "tiny.md").read_text()
    assert "| deltaprop |" in table and "| scikit-learn |" in table
    assert "deltaprop / GEMM floor" in table


@pytest.mark.skipif(
    not datasets.FASHION_MNIST_DIR.exists(),
    reason="Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)",
)
def test_profile_runs_on_a_tiny_budget(tmp_path):
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--profile", "--tiny", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    report = (tmp_path / "tiny-profile.md").read_text()
    assert "16 steps" in report  # 2,048 rows in batches of 128
    for part in ("batch gather", "Dense forward (0)", "Adam update", "gradient norm", "**total**"):
        assert part in report


@pytest.mark.skipif(
    not datasets.FASHION_MNIST_DIR.exists(),
    reason="Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)",
)
def test_estimator_benchmark_runs_on_a_tiny_budget(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            str(SCRIPT.parent / "estimators.py"),
            "--tiny",
            "--repeats",
            "1",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    report = (tmp_path / "estimators-tiny.md").read_text()
    assert "| deltaprop |" in report and "| scikit-learn |" in report and "GEMM floor" in report


@pytest.mark.skipif(
    not datasets.FASHION_MNIST_DIR.exists(),
    reason="Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)",
)
def test_regularization_experiment_runs_on_a_tiny_budget(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            str(SCRIPT.parent / "regularization.py"),
            "--tiny",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    report = (tmp_path / "regularization-tiny.md").read_text()
    for variant in (
        "| plain |",
        "| Dropout(0.3) |",
        "| BatchNorm |",
        "| BatchNorm + Dropout(0.3) |",
    ):
        assert variant in report
    accuracies = [float(line.split("|")[2].split()[0]) for line in report.splitlines()[4:]]
    assert len(accuracies) == 4 and all(0.3 < a <= 1 for a in accuracies)
