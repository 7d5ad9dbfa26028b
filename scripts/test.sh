#!/usr/bin/env bash
# Install, lint (ruff), type-check (mypy), then run the whole test suite (a real model, real FAISS/SQLite,
# a loopback Bot API). The tests use a throwaway data home and never look at ../shared (tests/conftest.py).
set -euo pipefail
cd "$(dirname "$0")/.."
NEWSQA_EXTRAS=dev,qdrant,ray bash scripts/install.sh  # both backends and the Ray build are tested
.venv/bin/ruff check .
.venv/bin/mypy
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
exec .venv/bin/python -m pytest -q "$@"
