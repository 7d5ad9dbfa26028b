"""One entry for index updates, whichever backend keeps the index (the CLI, the watcher and the bot all use it)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from index.build import BuildOptions, BuildProgress, BuildReport, update_index
from index.store import LocalStore


def run_update(
    settings: Any, embedder: Any, opts: BuildOptions, progress: Callable[[BuildProgress], None] | None = None
) -> BuildReport:
    """Bring the configured index (local files or Qdrant) in line with the corpus folder."""
    store = settings.version_store()
    if isinstance(store, LocalStore):
        return update_index(settings.corpus_dir, settings.index_dir, embedder, opts, progress=progress)
    from index.qdrant_build import update_qdrant

    # The build lock stays a local file: one builder at a time, on the machine that runs the builds.
    return update_qdrant(settings.corpus_dir, store, embedder, settings.index_dir, opts, progress=progress)
