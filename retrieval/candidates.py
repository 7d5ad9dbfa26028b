"""Candidate generation: the lexical (BM25) and dense (FAISS) sides, restricted by filters."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from index.dense import DenseParams
from index.dense import search as dense_search
from index.store import IndexVersion
from retrieval.query import Query, TermWeights, weigh
from retrieval.types import SearchFilters


@dataclass(slots=True)
class Candidate:
    """A chunk row on its way through the pipeline, with the evidence gathered for it."""

    row: int
    article_row: int = -1
    lexical_rank: int | None = None
    lexical_score: float | None = None
    dense_rank: int | None = None
    dense_score: float | None = None
    unit_score: float | None = None  # best similarity of one of its sentences/clauses
    fused: float = 0.0  # fusion's score: the order in which candidates are scored
    prob: float | None = None  # the fitted passage model's probability that it holds the answer

    @property
    def score(self) -> float:
        """The final ranking score: the fitted probability where scored, else fusion's."""
        return self.prob if self.prob is not None else self.fused


# From this many chunks on, BM25 top-k runs on bm25s's numba backend: its numpy backend adds the postings into a
# score array as long as the corpus and partitions it for every question (p50 28 ms at 10^6 chunks, 2.5 ms at 10^5;
# numba 0.7 and 0.2 ms: bench/query_latency.py --sizes). Below it numpy costs a few ms at most, while numba's first
# call compiles for ~2 s in every process, which a one-shot `newsqa ask` would pay.
NUMBA_MIN_CHUNKS = 200_000


def lexical_backend(n_chunks: int) -> str:
    """bm25s's retrieval backend for an index of this size: "numba" for large ones where numba is installed."""
    if n_chunks < NUMBA_MIN_CHUNKS:
        return "numpy"
    try:
        import numba  # noqa: F401
    except ImportError:
        return "numpy"
    return "numba"


class LexicalSide:
    """BM25 over the index's normalised, stemmed terms, and the idf each term has there."""

    def __init__(self, version: IndexVersion) -> None:
        self.version = version
        self._idf = self._compute_idf()
        self.unknown_idf = math.log1p((version.n_chunks + 0.5) / 0.5)  # a word no chunk uses
        self.backend = lexical_backend(version.n_chunks)
        if self.backend == "numba" and version.bm25 is not None and version.bm25.vocab_dict:
            # numba compiles on its first call (~2 s, once per process): here, where the version is loaded, not
            # inside the first question
            version.bm25.retrieve([[next(iter(version.bm25.vocab_dict.values()))]], k=1, show_progress=False,
                                  n_threads=0, backend_selection="numba")

    def _compute_idf(self) -> dict[str, float]:
        bm25 = self.version.bm25
        if bm25 is None:
            return {}
        df = np.diff(np.asarray(bm25.scores["indptr"]))
        n = max(1, self.version.n_chunks)
        idf = np.log1p((n - df + 0.5) / (df + 0.5))
        return {tok: float(idf[i]) for tok, i in bm25.vocab_dict.items() if i < len(idf)}

    def idf(self, term: str) -> float | None:
        """idf of a term in this index, None when the corpus never uses it."""
        return self._idf.get(term)

    def weigh(self, query: Query) -> TermWeights:
        """The question's terms weighted by idf here."""
        return weigh(query, self.idf, self.unknown_idf)

    def search(self, query: Query, n: int, mask: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Top-n chunk rows by BM25: bm25s's own top-k retrieval, filters as its weight mask."""
        bm25 = self.version.bm25
        if bm25 is None or not query.terms:
            return []
        vocab = bm25.vocab_dict
        ids = [vocab[t] for t in query.terms if t in vocab]
        n = min(n, self.version.n_chunks)
        if not ids or n <= 0:
            return []
        weight = None if mask is None else mask.astype(np.float32)
        rows, scores = bm25.retrieve([ids], k=n, weight_mask=weight, show_progress=False, n_threads=0, backend_selection=self.backend)
        hits = [(int(r), float(s)) for r, s in zip(rows[0], scores[0]) if s > 0]
        return sorted(hits, key=lambda h: (-h[1], h[0]))  # ties by row, as everywhere else

    def search_all(self, query: Query, n: int, mask: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Top-n by scoring every chunk, then sorting: the reference `search` must agree with (tests)."""
        bm25 = self.version.bm25
        if bm25 is None or not query.terms:
            return []
        scores = bm25.get_scores(list(query.terms))
        if mask is not None:
            scores = np.where(mask, scores, 0.0)
        return top_n(scores, n, positive_only=True)


def dense_candidates(
    version: IndexVersion, qvec: np.ndarray, n: int, params: DenseParams, mask: np.ndarray | None = None
) -> list[tuple[int, float]]:
    """Top-n chunk rows by cosine similarity (exact scores, also from approximate indexes)."""
    allowed = np.flatnonzero(mask) if mask is not None else None
    return dense_search(version.faiss, qvec, n, params, allowed, version.vector_rows)


def filter_mask(version: IndexVersion, filters: SearchFilters | None) -> np.ndarray | None:
    """Chunk rows allowed by the filters, or None when no filter is set."""
    if filters is None or not filters.active:
        return None
    ok = np.ones(version.n_articles, dtype=bool)
    if filters.since is not None or filters.until is not None:
        dates = version.article_dates
        if filters.since is not None:
            ok &= dates >= np.datetime64(filters.since, "m")
        if filters.last_minute is not None:
            ok &= dates <= np.datetime64(filters.last_minute, "m")
    if filters.sources:
        ok &= np.array([filters.admits_source(src) for src in version.article_sources], dtype=bool)
    if filters.exclude_articles:
        ids = set(filters.exclude_articles)
        for row in range(version.n_articles):
            if version.article(row).id in ids:
                ok[row] = False
    return ok[np.asarray(version.chunk_article)]


def merge(
    lexical: Sequence[tuple[int, float]], dense: Sequence[tuple[int, float]], article_of: Callable[[int], int]
) -> list[Candidate]:
    """One Candidate per row found by either side, with its rank and score on each."""
    by_row: dict[int, Candidate] = {}
    for rank, (row, score) in enumerate(lexical):
        c = by_row.get(row) or by_row.setdefault(row, Candidate(row, article_of(row)))
        c.lexical_rank, c.lexical_score = rank, score
    for rank, (row, score) in enumerate(dense):
        c = by_row.get(row) or by_row.setdefault(row, Candidate(row, article_of(row)))
        c.dense_rank, c.dense_score = rank, score
    return list(by_row.values())


def top_n(scores: np.ndarray, n: int, positive_only: bool = False) -> list[tuple[int, float]]:
    """The n best (row, score) pairs, best first, ties by row."""
    if len(scores) == 0 or n <= 0:
        return []
    n = min(n, len(scores))
    idx = np.argpartition(-scores, n - 1)[:n]
    idx = idx[np.lexsort((idx, -scores[idx]))]
    return [(int(i), float(scores[i])) for i in idx if not positive_only or scores[i] > 0]
