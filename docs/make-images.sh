#!/usr/bin/env bash
# Draws the pictures of README.md's quick tour into docs/images (about a minute; Fashion-MNIST
# from Debian's dataset-fashion-mnist).
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m deltaprop train --data moons --hidden 16,16 --lr 0.01 --epochs 100 \
    --out "$work/moons.safetensors" --plots "$work/moons" --quiet
python3 -m deltaprop train --data fashion-mnist --hidden 256,128 --epochs 10 \
    --out "$work/fm.safetensors" --plots "$work/fm" --quiet
cp "$work/moons/decision-boundary.png" docs/images/moons-decision-boundary.png
cp "$work/moons/learning-curves.png" docs/images/moons-learning-curves.png
cp "$work/fm/confusion-matrix.png" docs/images/fashion-mnist-confusion-matrix.png
cp "$work/fm/diagnostics.png" docs/images/fashion-mnist-diagnostics.png
