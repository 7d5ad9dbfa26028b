"""Each chunk's evidence is analysed once per index version and reused: same answers, less work per question."""

from __future__ import annotations

from retrieval import search as search_module
from retrieval.evidence import span_evidence
from retrieval.search import SearchConfig, Searcher

QUESTIONS = [
    "كم قاربا تضرر في فيضانات الميناء؟",
    "كم سعر الفائدة الذي أعلنه البنك المركزي؟",
    "How many boats were damaged when the harbour flooded?",
    "ما اسم شركة النور والأمل للبرمجيات؟",
]


def _hits(answer):  # noqa: ANN001, ANN202
    return [(h.chunk_row, h.quote.text, h.quote.highlights, round(h.score, 9)) for h in answer.hits]


def test_cached_evidence_is_the_analysis_of_the_chunk_text(searcher) -> None:  # noqa: ANN001
    fresh = Searcher(searcher.version, searcher.embedder, SearchConfig())
    for row in range(min(10, fresh.version.n_chunks)):
        assert fresh.evidence(row) == span_evidence(fresh.version.chunk_text(row))
        assert fresh.evidence(row) is fresh.evidence(row)  # the second call reads the cache


def test_answers_with_a_warm_cache_equal_answers_with_a_cold_one(searcher) -> None:  # noqa: ANN001
    cold = [_hits(Searcher(searcher.version, searcher.embedder, SearchConfig()).answer(q)) for q in QUESTIONS]
    warm_searcher = Searcher(searcher.version, searcher.embedder, SearchConfig())
    for q in QUESTIONS:
        warm_searcher.answer(q)
    assert warm_searcher._evidence  # the first round filled it
    assert [_hits(warm_searcher.answer(q)) for q in QUESTIONS] == cold
    assert any(cold)


def test_the_cache_stays_bounded(searcher, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(search_module, "EVIDENCE_CACHE_CHUNKS", 3)
    fresh = Searcher(searcher.version, searcher.embedder, SearchConfig())
    for row in range(min(8, fresh.version.n_chunks)):
        fresh.evidence(row)
        assert len(fresh._evidence) <= 3


def test_a_version_reads_each_chunk_and_article_row_from_sqlite_once_and_stays_bounded(searcher, monkeypatch) -> None:  # noqa: ANN001
    from index import store
    from index.store import IndexVersion

    version = IndexVersion(searcher.version.path)
    queries: list[str] = []
    version.db.set_trace_callback(queries.append)
    rows = range(min(6, version.n_chunks))
    first = [version.chunk(r) for r in rows]
    articles = [version.article(c.article_row) for c in first]
    reads = len(queries)
    assert [version.chunk(r) for r in rows] == first and [version.article(c.article_row) for c in first] == articles
    assert len(queries) == reads  # the second round asked SQLite nothing
    assert first == [searcher.version.chunk(r) for r in rows]  # the same records another reader gets
    with_fresh = IndexVersion(searcher.version.path)
    assert [with_fresh._article(c.article_row) for c in first] == articles
    monkeypatch.setattr(store, "CHUNK_CACHE", 2)
    monkeypatch.setattr(store, "ARTICLE_CACHE", 1)
    small = IndexVersion(searcher.version.path)
    for r in rows:
        small.article(small.chunk(r).article_row)
        assert len(small._chunks) <= 2 and len(small._articles) <= 1
