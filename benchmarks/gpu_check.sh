#!/usr/bin/env bash
# Every GPU check in one run, for a machine with an NVIDIA GPU, CuPy and PyTorch: the device
# tests (pytest -m gpu), then benchmarks/gpu.py on Fashion-MNIST. Everything is written into
# $OUT (default: gpu-results/): nvidia-smi's view, the test log, the benchmark's report.
#
#   bash benchmarks/gpu_check.sh                  # the data from /usr/share/datasets/fashion-mnist
#   FASHION_MNIST_DIR=.fm bash benchmarks/gpu_check.sh
#
# The project runs from src/ (no install needed where numpy, scipy, numba, scikit-learn,
# safetensors, rich, typer, matplotlib, pytest, hypothesis, cupy and torch are present).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu-results}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
data=${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}
nvidia-smi 2>&1 | tee "$out/nvidia-smi.txt"
python3 -c "import cupy, torch, numpy; print('cupy', cupy.__version__, 'torch', torch.__version__, 'numpy', numpy.__version__)" 2>&1 | tee -a "$out/nvidia-smi.txt"
# the files that hold GPU tests (the others need the web and browser extras to be collected)
timeout 300 python3 -m pytest -q -m gpu -p no:cacheprovider tests/backend/test_devices.py \
    tests/backend/test_cuda_kernels.py tests/cli/test_cli_data.py 2>&1 | tee "$out/gpu-tests.txt"
tests=${PIPESTATUS[0]}
if [ -d "$data" ]; then source=(--data-dir "$data"); else source=(--synthetic); fi
timeout 400 python3 benchmarks/gpu.py "${source[@]}" --out "$out" 2>&1 | tee "$out/gpu-bench.txt"
bench=${PIPESTATUS[0]}
echo "tests exit $tests, benchmark exit $bench"
[ "$tests" = 0 ] && [ "$bench" = 0 ]
