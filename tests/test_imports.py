"""``import deltaprop`` stays light: scikit-learn, SciPy, Numba (the compiled kernels), plotting,
the web server, MPI and the GPU are imported when first used, not before (its time is measured in
``benchmarks/``; what it imports is checked here)."""

import subprocess
import sys

import pytest

LATER = [
    "sklearn",
    "scipy",
    "numba",
    "llvmlite",
    "scipy.special",
    "scipy.stats",
    "matplotlib",
    "pandas",
    "starlette",
    "uvicorn",
    "mpi4py",
    "dask",
    "cupy",
    "torch",
    "tensorboardX",
    "pyarrow",
]


@pytest.mark.slow
def test_import_deltaprop_leaves_the_heavy_parts_for_later():
    code = "import sys, deltaprop; print(' '.join(sorted(sys.modules)))"
    loaded = set(
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.split()
    )
    assert not [name for name in LATER if name in loaded]


@pytest.mark.slow
def test_the_estimators_and_their_files_load_on_first_use(tmp_path):
    path = tmp_path / "est.safetensors"
    fit = (
        "import numpy as np, deltaprop as dp;"
        "est = dp.MLPClassifier(hidden_layer_sizes=(3,), max_iter=2).fit(np.eye(4), [0, 1, 0, 1]);"
        f"dp.save(est, {str(path)!r})"
    )
    subprocess.run([sys.executable, "-W", "ignore", "-c", fit], check=True)
    load = f"import sys, deltaprop as dp; e = dp.load({str(path)!r}); print(type(e).__name__)"
    done = subprocess.run([sys.executable, "-c", load], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "MLPClassifier"
