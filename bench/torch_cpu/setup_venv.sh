#!/usr/bin/env bash
# Creates the benchmark-only virtual environment with PyTorch for the CPU
# comparison (bench/torch_cpu/run.sh). PyTorch is a yardstick here, never a
# dependency of the project: nothing outside bench/torch_cpu imports it.
# Usage: bench/torch_cpu/setup_venv.sh [VENV_DIR]   (default /work/venv-bench,
# or $VEL_BENCH_VENV). Idempotent: does nothing when torch already imports.
set -eu
VENV=${1:-${VEL_BENCH_VENV:-/work/venv-bench}}
PY=${PYTHON:-python3}
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import torch' 2>/dev/null; then
  echo "setup_venv: $VENV already has torch $("$VENV/bin/python" -c 'import torch; print(torch.__version__)')"
  exit 0
fi
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
# The PyPI wheel; its CUDA libraries are unused here (the runner sets
# CUDA_VISIBLE_DEVICES= and only times CPU tensors).
"$VENV/bin/python" -m pip install -q torch numpy
"$VENV/bin/python" -c 'import torch; print("setup_venv: torch", torch.__version__, "in", "'"$VENV"'")'
