"""Helpers shared by the reindex tests: a small generated corpus, answer snapshots, index contents."""

from __future__ import annotations

import signal
from pathlib import Path

from bench.corpusgen import correct_article, write_corpus
from index.articles import load_corpus
from index.store import VERSIONS, open_current
from retrieval.search import SearchConfig, Searcher
from tests.fakes import HashEmbedder

QUESTIONS = (
    "كم متابعا جمع حساب شاميويتنس على تويتر؟",
    "بكم رفع البنك المركزي سعر الفائدة؟",
    "ما الذي قاله متحدث باسم تويتر عن الاسم الحقيقي؟",
)


def ctrl_c_as_usual() -> None:
    """A child's SIGINT back to the default, so it raises KeyboardInterrupt even when pytest was started in the background.

    A shell starts background jobs with SIGINT ignored, children inherit that, and Python then installs no handler.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def answers(index_dir: Path) -> list[dict]:
    """What the current version answers in every mode (loaded fresh, as a new process would)."""
    version = open_current(index_dir)
    try:
        # The hash embedder's scores mean nothing, so the no-answer gate is opened: every mode answers.
        searcher = Searcher(version, HashEmbedder(), SearchConfig(threshold=0.0))
        return [searcher.answer(q, k=5, mode=m).to_json() for q in QUESTIONS for m in ("fused", "lexical", "dense")]
    finally:
        version.close()


def indexed_ids(index_dir: Path) -> set[str]:
    """Article ids in the current version."""
    version = open_current(index_dir)
    try:
        return {row[0] for row in version.db.execute("SELECT id FROM articles")}
    finally:
        version.close()


def corpus_ids(corpus: Path) -> set[str]:
    """Article ids the corpus folder yields."""
    return {a.id for a in load_corpus(corpus).articles}


def version_dirs(index_dir: Path) -> list[str]:
    """Everything in versions/, completed or not."""
    return sorted(p.name for p in (index_dir / VERSIONS).iterdir())


def change_corpus(corpus: Path, n_before: int, added: int = 3) -> None:
    """A day's work: `added` new articles, two corrected, one withdrawn."""
    extra = corpus.parent / f"{corpus.name}-extra"
    paths = write_corpus(extra, n_before + added, seed=7)
    for p in paths[n_before:]:
        p.rename(corpus / p.name)
    correct_article(corpus / "art-00002.txt")
    correct_article(corpus / "art-00005.txt")
    (corpus / "art-00007.txt").unlink()
