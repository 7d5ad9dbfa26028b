"""Runs `newsqa index update` in a child process with the test embedder (crash and Ctrl-C tests).

Usage: python -m tests.reindex_worker CORPUS INDEX_DIR; Settings come from the environment as in
main() (NEWSQA_TEST_PAUSE_AT, NEWSQA_BATCH_SIZE, ...).
"""

from __future__ import annotations

import sys
from pathlib import Path

from bot.cli import cmd_index_build
from bot.settings import Settings
from index.errors import NewsqaError
from tests.fakes import HashEmbedder


def main() -> int:
    """Build Settings, point them at the given folders and run the CLI's update command."""
    settings = Settings()
    settings.corpus_dir = Path(sys.argv[1])
    settings.index_dir = Path(sys.argv[2])
    try:
        return cmd_index_build(settings, full=False, progress=True, embedder=HashEmbedder())
    except NewsqaError as exc:  # as main() reports it
        print(f"newsqa: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
