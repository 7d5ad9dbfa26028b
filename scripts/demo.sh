#!/usr/bin/env bash
# Install, index the bundled sample corpus, and answer a sample question.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
.venv/bin/newsqa index update --corpus corpus
.venv/bin/newsqa ask "${1:-كم عدد متابعي حساب شامي ويتنس؟}"
