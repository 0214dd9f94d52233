"""The benchmark scripts run end to end on a tiny budget, so they cannot rot (no timing tested)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from deltaprop import datasets

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not datasets.FASHION_MNIST_DIR.exists(),
        reason="Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)",
    ),
]

BENCHMARKS = Path(__file__).parents[1] / "benchmarks"


def run_tiny(script: str, *args: str) -> None:
    """Run ``benchmarks/<script> --tiny *args``; fail with its stderr if it fails."""
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--tiny", *args],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr


def test_benchmark_runs_on_a_tiny_budget(tmp_path):
    run_tiny("fashion_mnist.py", "--out", str(tmp_path))
    table = (tmp_path / "tiny.md").read_text()
    assert "| deltaprop |" in table and "| scikit-learn |" in table
    assert "deltaprop / GEMM floor" in table


def test_profile_runs_on_a_tiny_budget(tmp_path):
    run_tiny("fashion_mnist.py", "--profile", "--out", str(tmp_path))
    report = (tmp_path / "tiny-profile.md").read_text()
    assert "16 steps" in report  # 2,048 rows in batches of 128
    for part in ("batch gather", "Dense forward (0)", "Adam update", "gradient norm", "**total**"):
        assert part in report


def test_estimator_benchmark_runs_on_a_tiny_budget(tmp_path):
    run_tiny("estimators.py", "--repeats", "1", "--out", str(tmp_path))
    report = (tmp_path / "estimators-tiny.md").read_text()
    assert "| deltaprop |" in report and "| scikit-learn |" in report and "GEMM floor" in report


def test_regularization_experiment_runs_on_a_tiny_budget(tmp_path):
    run_tiny("regularization.py", "--out", str(tmp_path))
    report = (tmp_path / "regularization-tiny.md").read_text()
    variants = [line.split("|")[1].strip() for line in report.splitlines()[4:]]
    assert variants == ["plain", "Dropout(0.3)", "BatchNorm", "BatchNorm + Dropout(0.3)"]
    accuracies = [float(line.split("|")[2].split()[0]) for line in report.splitlines()[4:]]
    assert all(0.3 < a <= 1 for a in accuracies)


def test_the_compiled_step_benchmark_runs_on_a_tiny_budget():
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "compiled_step.py"), "--tiny", "--batch", "64"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    for row in ("compiled", "reference", "GEMM, OpenBLAS", "GEMM, split", "compiled / reference"):
        assert row in result.stdout


def test_gpu_benchmark_runs_its_code_on_the_cpu(tmp_path):
    run_tiny("gpu.py", "--device", "cpu", "--batch", "256", "--out", str(tmp_path))
    report = (tmp_path / "gpu-tiny.md").read_text()
    assert "## batch 256" in report and "| deltaprop |" in report


def test_the_peers_benchmark_runs_beside_a_burner():
    """``--load`` starts its own busy process; every contender reports the cores it used."""
    result = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "peers.py"),
            *("--rows", "512", "--batches", "128", "--rounds", "1", "--load", "1"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert "1 burners" in result.stdout
    lines = result.stdout.splitlines()
    rows = [line.split("|") for line in lines if line.startswith("| deltaprop")]
    assert [row[1].strip() for row in rows[:2]] == ["deltaprop", "deltaprop compiled"]
    for row in rows[:2]:  # s/epoch, the ratio to deltaprop, the cores used
        assert float(row[2].split()[0]) > 0 and 0 < float(row[4]) <= (os.cpu_count() or 1) + 0.5
