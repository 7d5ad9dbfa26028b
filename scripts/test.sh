#!/usr/bin/env bash
# Install, then run the whole test suite (a real model, real FAISS/SQLite, a loopback Bot API).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
exec .venv/bin/python -m pytest -q "$@"
