"""Each chunk's evidence is analysed by the build and stored; questions read it instead of re-analysing.

A stored analysis must equal the analysis of the chunk's text (or answers would change with the cache), an index
from before it was stored is still answered (analysing as before) and its next update stores it without
re-embedding, and EVIDENCE_VERSION moves whenever the analysis does.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from bench.corpusgen import write_corpus
from index import build as build_module
from index.build import BuildOptions, update_index
from index.evidence import EVIDENCE_VERSION, SpanEvidence, analyse_span, pack, unpack
from index.store import VERSIONS, current_name, open_current
from retrieval.search import SearchConfig, Searcher
from tests.fakes import HashEmbedder
from tests.reindex_helpers import QUESTIONS, change_corpus
from tests.test_analyser_version import SAMPLE

# One golden hash per evidence version; add a line when you bump EVIDENCE_VERSION.
GOLDEN = {1: "64295411bec1015a62f6abdf11a1b9f0a3a826be0d78bba80d325a31d8b51f2f"}


def _digest() -> str:
    h = hashlib.sha256()
    for text in SAMPLE:
        h.update(pack(analyse_span(text)).encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()


def test_evidence_version_moves_with_the_analysis() -> None:
    assert GOLDEN.get(EVIDENCE_VERSION) == _digest(), (
        "analyse_span's output (or its packed form) changed: bump EVIDENCE_VERSION in index/evidence.py "
        f"and add {EVIDENCE_VERSION + 1}: {_digest()!r} to GOLDEN"
    )


@pytest.mark.parametrize("text", SAMPLE)
def test_packing_keeps_everything(text: str) -> None:
    evidence = analyse_span(text)
    assert unpack(pack(evidence)) == evidence


def test_packing_keeps_flags_and_empty_sets() -> None:
    for evidence in (
        SpanEvidence(frozenset(), False, False, False),
        SpanEvidence(frozenset({"عدد", "متتبع"}), True, True, False, frozenset({"متتبع"})),
        SpanEvidence(frozenset({"2014"}), False, True, True),
    ):
        assert unpack(pack(evidence)) == evidence


def test_the_shared_index_stores_every_chunks_analysis(built_index: Path) -> None:
    version = open_current(built_index)
    try:
        assert version.manifest["evidence"] == {"version": EVIDENCE_VERSION}
        for row in range(version.n_chunks):
            assert version.chunk_evidence(row) == analyse_span(version.chunk_text(row)), row
    finally:
        version.close()


def _hits(answer):  # noqa: ANN001, ANN202
    return [(h.chunk_row, h.quote.text, h.quote.highlights, round(h.score, 9)) for h in answer.hits]


def test_stored_and_analysed_evidence_give_the_same_answers(searcher, monkeypatch) -> None:  # noqa: ANN001
    questions = [*QUESTIONS, "How many boats were damaged when the harbour flooded?"]
    stored = Searcher(searcher.version, searcher.embedder, SearchConfig())
    from_stored = [_hits(stored.answer(q)) for q in questions]
    analysed = Searcher(searcher.version, searcher.embedder, SearchConfig())
    monkeypatch.setattr(searcher.version, "chunk_evidence", lambda row: None)  # as an index without it
    assert [_hits(analysed.answer(q)) for q in questions] == from_stored
    assert any(from_stored)


def _built(tmp_path: Path, articles: int, seed: int) -> tuple[Path, Path, HashEmbedder]:
    """A small generated corpus, indexed once: (corpus, index dir, embedder)."""
    corpus, index_dir, embedder = tmp_path / "corpus", tmp_path / "index", HashEmbedder()
    write_corpus(corpus, articles, seed=seed)
    update_index(corpus, index_dir, embedder, BuildOptions())
    return corpus, index_dir, embedder


def test_an_index_without_stored_evidence_is_answered_and_its_update_stores_it(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    corpus = tmp_path / "corpus"
    write_corpus(corpus, 12, seed=3)
    index_dir = tmp_path / "index"
    embedder = HashEmbedder()
    monkeypatch.setattr(build_module, "EVIDENCE_VERSION", EVIDENCE_VERSION - 1)  # as an older build recorded it
    update_index(corpus, index_dir, embedder, BuildOptions())
    monkeypatch.undo()

    old = open_current(index_dir)
    try:
        assert old.chunk_evidence(0) is None and old.stored_evidence() is None  # not this code's: not trusted
        searcher = Searcher(old, embedder, SearchConfig(threshold=0.0))
        assert searcher.evidence(0) == analyse_span(old.chunk_text(0))  # analysed from the text instead
        before = [_hits(searcher.answer(q)) for q in QUESTIONS]
        old_name = old.name
    finally:
        old.close()

    report = update_index(corpus, index_dir, embedder, BuildOptions())  # nothing in the corpus changed
    assert report.switched and report.embedded_chunks == 0
    assert any("stores each chunk's analysed evidence" in n for n in report.notices)  # why a new version, said
    new = open_current(index_dir)
    try:
        assert new.name != old_name
        assert all(new.chunk_evidence(r) == analyse_span(new.chunk_text(r)) for r in range(new.n_chunks))
        assert [_hits(Searcher(new, embedder, SearchConfig(threshold=0.0)).answer(q)) for q in QUESTIONS] == before
    finally:
        new.close()

    again = update_index(corpus, index_dir, embedder, BuildOptions())
    assert not again.switched  # stored now: an unchanged corpus writes nothing


def test_an_update_reuses_unchanged_chunks_evidence_and_analyses_the_rest(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    corpus, index_dir, embedder = _built(tmp_path, 10, seed=5)
    change_corpus(corpus, 10)
    analysed: list[str] = []
    real = build_module.analyse_span
    monkeypatch.setattr(build_module, "analyse_span", lambda text: analysed.append(text) or real(text))
    report = update_index(corpus, index_dir, embedder, BuildOptions())
    assert report.switched and 0 < len(analysed) == report.embedded_chunks  # only the new and changed chunks
    version = open_current(index_dir)
    try:
        assert all(version.chunk_evidence(r) == analyse_span(version.chunk_text(r)) for r in range(version.n_chunks))
    finally:
        version.close()


def test_a_damaged_stored_analysis_is_analysed_again_not_an_error(tmp_path: Path, caplog) -> None:  # noqa: ANN001
    _, index_dir, embedder = _built(tmp_path, 6, seed=9)
    meta = index_dir / VERSIONS / current_name(index_dir) / "meta.sqlite"
    for bad in ("not packed", 42, "1\x1f"):
        with sqlite3.connect(meta) as db:
            db.execute("UPDATE chunks SET evidence=? WHERE row=0", (bad,))
        version = open_current(index_dir, verify="none")  # a version too large for checksums on open would not see it
        try:
            assert version.chunk_evidence(0) is None, bad
            searcher = Searcher(version, embedder, SearchConfig(threshold=0.0))
            assert searcher.evidence(0) == analyse_span(version.chunk_text(0))
            assert searcher.answer(QUESTIONS[0]).hits
        finally:
            version.close()
    assert "stored evidence is unreadable" in caplog.text
