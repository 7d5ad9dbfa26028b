"""The hybrid searcher: Arabic-normalised BM25 and dense FAISS, fused; filters; quotes per hit."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index.arabic import terms
from index.dense import DenseParams
from index.dense import search as dense_search
from index.embedder import Embedder
from index.store import IndexVersion, open_current, read_current
from retrieval.quote import QueryTerms, candidate_windows, lexical_window_scores, make_quote, query_terms
from retrieval.types import Answer, Hit, SearchFilters, Source

MODES = ("fused", "lexical", "dense")


@dataclass(frozen=True, slots=True)
class SearchConfig:
    """Tuning of ranking, grouping and the no-answer gate (from Settings)."""

    candidates: int = 100
    rrf_k: int = 60
    per_article: int = 2
    min_dense: float = 0.80
    min_dense_with_words: float = 0.78
    min_dense_cross: float = 0.775
    min_word_coverage: float = 0.5
    dedup_jaccard: float = 0.5
    nprobe: int = 0  # approximate FAISS kinds: 0 = the value stored in the index
    ef_search: int = 0
    exact_rerank: bool = True  # re-score approximate candidates exactly from vectors.npy


@dataclass(slots=True)
class Candidate:
    """A chunk row on its way through fusion."""

    row: int
    score: float = 0.0
    lexical_rank: int | None = None
    dense_rank: int | None = None
    dense_score: float | None = None


class Searcher:
    """Answers questions over one loaded index version."""

    def __init__(self, version: IndexVersion, embedder: Embedder, config: SearchConfig = SearchConfig()) -> None:
        self.version = version
        self.embedder = embedder
        self.config = config
        self._idf = self._compute_idf()

    # --- lexical side -------------------------------------------------------------------
    def _compute_idf(self) -> dict[str, float]:
        bm25 = self.version.bm25
        if bm25 is None:
            return {}
        indptr = np.asarray(bm25.scores["indptr"])
        df = np.diff(indptr)
        n = max(1, self.version.n_chunks)
        idf = np.log1p((n - df + 0.5) / (df + 0.5))
        return {tok: float(idf[i]) for tok, i in bm25.vocab_dict.items() if i < len(idf)}

    def idf(self, term: str) -> float | None:
        """idf of a term in this index, None when the corpus never uses it."""
        return self._idf.get(term)

    def coverage(self, q: QueryTerms) -> float:
        """Share of the question's word weight that the corpus vocabulary knows at all.

        A word the corpus never uses counts with the largest idf; an English question over an
        Arabic corpus scores near 0, which tells fusion the lexical side has nothing to say.
        """
        if not q.weights:
            return 0.0
        unknown = math.log1p((self.version.n_chunks + 0.5) / 0.5)
        known = sum(w for w in q.weights.values() if w > 0)
        missing = sum(unknown for w in q.weights.values() if w <= 0)
        return known / (known + missing) if known + missing else 0.0

    def lexical(self, question: str, n: int, mask: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Top-n chunk rows by BM25 over normalised, stemmed terms."""
        if self.version.bm25 is None:
            return []
        q = terms(question)
        if not q:
            return []
        scores = self.version.bm25.get_scores(q)
        if mask is not None:
            scores = np.where(mask, scores, 0.0)
        return _top(scores, n, positive_only=True)

    # --- dense side ---------------------------------------------------------------------
    def dense(self, qvec: np.ndarray, n: int, mask: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Top-n chunk rows by cosine similarity (exact scores, also from approximate indexes)."""
        allowed = np.flatnonzero(mask) if mask is not None else None
        params = DenseParams(self.config.nprobe, self.config.ef_search, self.config.exact_rerank)
        return dense_search(self.version.faiss, qvec, n, params, allowed, self.version.vector_rows)

    # --- filters ------------------------------------------------------------------------
    def filter_mask(self, filters: SearchFilters | None) -> np.ndarray | None:
        """Chunk rows allowed by the filters, or None when no filter is set."""
        if filters is None or not filters.active:
            return None
        v = self.version
        ok = np.ones(v.n_articles, dtype=bool)
        if filters.since is not None or filters.until is not None:
            dates = v.article_dates
            if filters.since is not None:
                ok &= dates >= np.datetime64(filters.since, "m")
            if filters.until is not None:
                until = filters.until
                if until.hour == 0 and until.minute == 0:
                    until = until.replace(hour=23, minute=59)  # a bare date includes that whole day
                ok &= dates <= np.datetime64(until, "m")
        if filters.sources:
            wanted = {s.casefold() for s in filters.sources}
            ok &= np.array([any(w in src.casefold() for w in wanted) for src in v.article_sources], dtype=bool)
        return ok[np.asarray(v.chunk_article)]

    # --- ranking ------------------------------------------------------------------------
    def rank(
        self,
        question: str,
        mode: str = "fused",
        filters: SearchFilters | None = None,
        qvec: np.ndarray | None = None,
        timings: dict[str, float] | None = None,
    ) -> tuple[list[Candidate], QueryTerms, np.ndarray | None]:
        """Candidates best first, the question's weighted terms, and its vector (if dense ran)."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}: one of {', '.join(MODES)}")
        timings = timings if timings is not None else {}
        n = self.config.candidates
        mask = self.filter_mask(filters)
        q = query_terms(question, self.idf)
        by_row: dict[int, Candidate] = {}
        if mode in ("fused", "lexical"):
            t = time.perf_counter()
            for rank, (row, _) in enumerate(self.lexical(question, n, mask)):
                by_row.setdefault(row, Candidate(row)).lexical_rank = rank
            timings["lexical"] = time.perf_counter() - t
        if mode in ("fused", "dense"):
            t = time.perf_counter()
            if qvec is None:
                qvec = self.embedder.encode_queries([question])[0]
            timings["embed"] = time.perf_counter() - t
            t = time.perf_counter()
            for rank, (row, score) in enumerate(self.dense(qvec, n, mask)):
                c = by_row.setdefault(row, Candidate(row))
                c.dense_rank, c.dense_score = rank, score
            timings["dense"] = time.perf_counter() - t
        t = time.perf_counter()
        w_lex = self.coverage(q) if mode == "fused" else 1.0
        k = self.config.rrf_k
        for c in by_row.values():
            c.score = (w_lex / (k + c.lexical_rank + 1) if c.lexical_rank is not None else 0.0) + (
                1.0 / (k + c.dense_rank + 1) if c.dense_rank is not None else 0.0
            )
        ranked = sorted(by_row.values(), key=lambda c: (-c.score, c.row))
        timings["fusion"] = time.perf_counter() - t
        return ranked, q, qvec

    def answer(
        self,
        question: str,
        k: int = 5,
        mode: str = "fused",
        filters: SearchFilters | None = None,
        per_article: int | None = None,
        offset: int = 0,
        qvec: np.ndarray | None = None,
    ) -> Answer:
        """Ranked hits with verbatim quotes and sources, or found=False when nothing answers."""
        started = time.perf_counter()
        timings: dict[str, float] = {}
        answer = Answer(question=question, version=self.version.name, timings=timings)
        if not question.strip():
            return answer
        ranked, q, qvec = self.rank(question, mode, filters, qvec, timings)
        if not ranked:
            timings["total"] = time.perf_counter() - started
            return answer
        t = time.perf_counter()
        per_article = self.config.per_article if per_article is None else per_article
        coverage = self.coverage(q)
        if not self.is_relevant(ranked[0], q, mode):
            timings["total"] = time.perf_counter() - started
            return answer  # found stays False: better to say so than to quote noise
        picked: list[tuple[Candidate, object, object]] = []
        kept_terms: list[set[str]] = []
        per_article_count: dict[int, int] = {}
        for cand in ranked:
            if len(picked) >= offset + k:
                break
            chunk = self.version.chunk(cand.row)
            if per_article and per_article_count.get(chunk.article_row, 0) >= per_article:
                continue
            article = self.version.article(chunk.article_row)
            cterms = set(terms(article.body[chunk.start : chunk.end]))
            if any(_jaccard(cterms, other) >= self.config.dedup_jaccard for other in kept_terms):
                continue  # the same passage told again (another agency's copy): quote it once
            kept_terms.append(cterms)
            per_article_count[chunk.article_row] = per_article_count.get(chunk.article_row, 0) + 1
            picked.append((cand, chunk, article))
        picked = picked[offset:]
        windows = [candidate_windows(a.body, c.start, c.end) or [(c.start, min(c.end, c.start + 400))] for _, c, a in picked]
        scores = [lexical_window_scores(a.body, w, q) for (_, _, a), w in zip(picked, windows)]
        if qvec is not None and coverage < 0.5 and picked:
            # Few shared words (e.g. an English question): let the meaning pick the sentences.
            texts = [a.body[s:e] for (_, _, a), w in zip(picked, windows) for s, e in w]
            sims = self.embedder.encode_passages(texts) @ qvec
            pos = 0
            for i, w in enumerate(windows):
                scores[i] = coverage * scores[i] + sims[pos : pos + len(w)]
                pos += len(w)
        for (cand, chunk, article), w, sc in zip(picked, windows, scores):
            s, e = w[int(np.argmax(sc))]
            answer.hits.append(
                Hit(
                    chunk_row=cand.row,
                    article_row=chunk.article_row,
                    source=Source(article.id, article.title, article.source, article.date, article.url),
                    section=chunk.section,
                    quote=make_quote(article.body, s, e, q),
                    score=cand.score,
                    dense_score=cand.dense_score,
                    lexical_rank=cand.lexical_rank,
                    dense_rank=cand.dense_rank,
                )
            )
        answer.found = bool(answer.hits) or offset > 0
        timings["quote"] = time.perf_counter() - t
        timings["total"] = time.perf_counter() - started
        return answer

    def is_relevant(self, top: Candidate, q: QueryTerms, mode: str) -> bool:
        """Whether the best candidate really answers, rather than being the least bad of noise."""
        chunk = self.version.chunk(top.row)
        body = self.version.article(chunk.article_row).body
        words = _word_coverage(body[chunk.start : chunk.end], q)
        if mode == "lexical" or top.dense_score is None:
            return words >= self.config.min_word_coverage
        dense = top.dense_score
        if self.coverage(q) < 0.5:
            return dense >= self.config.min_dense_cross
        if dense >= self.config.min_dense:
            return True
        return dense >= self.config.min_dense_with_words and words >= self.config.min_word_coverage


def _word_coverage(text: str, q: QueryTerms) -> float:
    """Share of the question's known-word weight that the text holds."""
    known = {t: w for t, w in q.weights.items() if w > 0}
    if not known:
        return 0.0
    found = set(terms(text, keep_stopwords=True))
    return sum(w for t, w in known.items() if t in found) / sum(known.values())


def _jaccard(a: set[str], b: set[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


def _top(scores: np.ndarray, n: int, positive_only: bool = False) -> list[tuple[int, float]]:
    if len(scores) == 0:
        return []
    n = min(n, len(scores))
    idx = np.argpartition(-scores, n - 1)[:n]
    idx = idx[np.argsort(-scores[idx], kind="stable")]
    return [(int(i), float(scores[i])) for i in idx if not positive_only or scores[i] > 0]


class LiveSearcher:
    """Follows the index's CURRENT pointer: a new version is picked up without a restart.

    Each call hands out the Searcher of the version current at that moment; a question in
    flight keeps the one it started with.
    """

    def __init__(self, index_dir: Path, embedder: Embedder, config: SearchConfig = SearchConfig(), check_every: float = 1.0) -> None:
        self.index_dir = index_dir
        self.embedder = embedder
        self.config = config
        self.check_every = check_every
        self._lock = threading.Lock()
        self._searcher: Searcher | None = None
        self._checked = 0.0

    def get(self) -> Searcher:
        """The searcher of the current version (reloaded when CURRENT has moved)."""
        now = time.monotonic()
        current = self._searcher
        if current is not None and now - self._checked < self.check_every:
            return current
        with self._lock:
            self._checked = now
            name = read_current(self.index_dir)
            if self._searcher is None or (name is not None and name != self._searcher.version.name):
                self._searcher = Searcher(open_current(self.index_dir), self.embedder, self.config)
            return self._searcher

    def answer(self, question: str, **kwargs: object) -> Answer:
        """Answer with the version current now."""
        return self.get().answer(question, **kwargs)  # type: ignore[arg-type]


def quote_texts(answer: Answer) -> Sequence[str]:
    """The quoted excerpts of an answer, in order (for tests and eval)."""
    return [h.quote.text for h in answer.hits]
