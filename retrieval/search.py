"""The hybrid searcher: Arabic-normalised BM25 and dense FAISS, fused; filters; quotes per hit."""

from __future__ import annotations

import logging
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
from index.errors import NewsqaError
from index.store import IndexVersion, check_model, open_current, read_current
from retrieval.quote import QueryTerms, choose_quote, count_question, make_quote, numeric_question, query_terms, quote_units, states_quantity
from retrieval.types import Answer, Hit, SearchFilters, Source

MODES = ("fused", "lexical", "dense")
QUOTE_WHOLE_PARAGRAPH = True
UNIT_CACHE_CHUNKS = 5_000  # chunks whose sentence vectors stay in memory (~30 MB at 384 dims)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SearchConfig:
    """Tuning of ranking, grouping and the no-answer gate (from Settings)."""

    candidates: int = 100
    rrf_k: int = 60
    fusion: str = "convex"  # or "rrf"
    lexical_weight: float = 0.5  # lexical share of a convex fusion when every question word is known
    per_article: int = 2
    min_dense: float = 0.80
    min_dense_with_words: float = 0.78
    min_dense_cross: float = 0.77
    min_word_coverage: float = 0.5
    dedup_jaccard: float = 0.5
    unit_weight: float = 1.0  # weight of the best single sentence's similarity in the dense score
    unit_depth: int = 10  # dense candidates re-scored sentence by sentence (cost: their sentences, once)
    quote_dense_weight: float = 1.0  # meaning's share in picking quotes even when words match
    quote_dense_below: float = 0.5  # question word coverage under which quotes are picked by meaning too
    nprobe: int = 0  # approximate FAISS kinds: 0 = the value stored in the index
    ef_search: int = 0
    quantity_penalty: float = 0.5  # how-many questions: score factor of leading chunks stating no figure
    quantity_window: int = 20
    tail_margin: float = 0.03  # hits after the first: within this cosine of the best, or relevant alone
    exact_rerank: bool = True  # re-score approximate candidates exactly from vectors.npy


@dataclass(slots=True)
class Candidate:
    """A chunk row on its way through fusion."""

    row: int
    score: float = 0.0
    lexical_rank: int | None = None
    dense_rank: int | None = None
    dense_score: float | None = None
    lexical_score: float | None = None
    unit_score: float | None = None  # best similarity of one of its sentences/clauses


class Searcher:
    """Answers questions over one loaded index version."""

    def __init__(self, version: IndexVersion, embedder: Embedder, config: SearchConfig = SearchConfig()) -> None:
        self.version = version
        self.embedder = embedder
        self.config = config
        self._idf = self._compute_idf()
        self._unit_cache: dict[int, np.ndarray] = {}
        self._cache_lock = threading.Lock()

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
            for rank, (row, score) in enumerate(self.lexical(question, n, mask)):
                c = by_row.setdefault(row, Candidate(row))
                c.lexical_rank, c.lexical_score = rank, score
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
            if self.config.unit_weight > 0:
                t = time.perf_counter()
                top = sorted((c for c in by_row.values() if c.dense_rank is not None), key=lambda c: c.dense_rank)
                top = top[: self.config.unit_depth]
                for c, vecs in zip(top, self.unit_vectors([c.row for c in top])):
                    c.unit_score = float(np.max(vecs @ qvec)) if len(vecs) else None
                timings["units"] = time.perf_counter() - t
        t = time.perf_counter()
        self._fuse(list(by_row.values()), mode, self.coverage(q))
        ranked = sorted(by_row.values(), key=lambda c: (-c.score, c.row))
        if mode == "fused" and self.config.quantity_penalty < 1.0 and self.coverage(q) >= 0.5 and count_question(question):
            # A how-many question is answered by a figure: leading chunks stating none step back.
            head = ranked[: self.config.quantity_window]
            for c in head:
                if not states_quantity(self._chunk_text(c.row)):
                    c.score *= self.config.quantity_penalty
            ranked = sorted(head, key=lambda c: (-c.score, c.row)) + ranked[len(head) :]
        timings["fusion"] = time.perf_counter() - t
        return ranked, q, qvec

    def _chunk_text(self, row: int) -> str:
        chunk = self.version.chunk(row)
        (text,) = self.version.db.execute(
            "SELECT substr(body, ?, ?) FROM articles WHERE row=?", (chunk.start + 1, chunk.end - chunk.start, chunk.article_row)
        ).fetchone()
        return text

    def _fuse(self, cands: list[Candidate], mode: str, coverage: float) -> None:
        """Set each candidate's score: a convex mix of normalised dense and lexical scores.

        The lexical side's weight shrinks with the share of the question's words the corpus
        knows: an English question over Arabic news (coverage near 0) ranks by meaning alone,
        instead of letting a stray number or name drag the dense ranking down (as RRF does).
        `fusion="rrf"` keeps coverage-weighted reciprocal-rank fusion for comparison.
        """
        if not cands:
            return
        cfg = self.config
        w = {"lexical": 1.0, "dense": 0.0}.get(mode, cfg.lexical_weight * coverage)
        if cfg.fusion == "rrf":
            k = cfg.rrf_k
            w_lex = 1.0 if mode == "lexical" else coverage
            for c in cands:
                c.score = (w_lex / (k + c.lexical_rank + 1) if c.lexical_rank is not None else 0.0) + (
                    1.0 / (k + c.dense_rank + 1) if c.dense_rank is not None else 0.0
                )
            return
        g = cfg.unit_weight
        # A question is usually answered by one sentence: its best sentence counts beside the chunk.
        adjusted = [
            (c.dense_score + g * c.unit_score) / (1 + g) if c.dense_score is not None and c.unit_score is not None else c.dense_score
            for c in cands
        ]
        if any(c.unit_score is not None for c in cands):
            # Candidates deeper than unit_depth were not re-scored: they may not overtake those that were.
            floor = min(a for c, a in zip(cands, adjusted) if c.unit_score is not None)
            adjusted = [min(a, floor) if a is not None and c.unit_score is None else a for c, a in zip(cands, adjusted)]
        dense = [d for d in adjusted if d is not None]
        lex_max = max((c.lexical_score for c in cands if c.lexical_score is not None), default=0.0) or 1.0
        d_min, d_max = (min(dense), max(dense)) if dense else (0.0, 1.0)
        span = d_max - d_min
        for c, cd in zip(cands, adjusted):
            d = 0.0 if cd is None else ((cd - d_min) / span if span > 1e-6 else 1.0)
            lx = 0.0 if c.lexical_score is None else c.lexical_score / lex_max
            c.score = (1.0 - w) * d + w * lx

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
        if not self.is_relevant(ranked[0], q, mode, arabic=_mostly_arabic(question)):
            timings["quote"] = 0.0
            timings["total"] = time.perf_counter() - started
            return answer  # found stays False: better to say so than to quote noise
        numeric = numeric_question(question)
        cfg = self.config
        use_dense = qvec is not None and (coverage < cfg.quote_dense_below or cfg.quote_dense_weight > 0)
        arabic = _mostly_arabic(question)
        top_dense = ranked[0].dense_score
        kept_terms: list[set[str]] = []
        kept_spans: list[tuple[int, int, int]] = []
        per_article_count: dict[int, int] = {}
        accepted = 0
        for cand in ranked:
            if accepted >= offset + k:
                break
            chunk = self.version.chunk(cand.row)
            if per_article and per_article_count.get(chunk.article_row, 0) >= per_article:
                continue
            if accepted and not self._worth_quoting(cand, top_dense, q, mode, arabic):
                continue  # a tail hit that would not pass the gate on its own is noise, not an answer
            article = self.version.article(chunk.article_row)
            cterms = set(terms(article.body[chunk.start : chunk.end]))
            if any(_jaccard(cterms, other) >= cfg.dedup_jaccard for other in kept_terms):
                continue  # the same passage told again (another agency's copy): quote it once
            s, e = self._quote_span(cand, chunk, article, q, qvec if use_dense else None, coverage, numeric)
            if any(r == chunk.article_row and s < ke and ks < e for r, ks, ke in kept_spans):
                continue  # two chunks of one paragraph led to the same sentences: quote them once
            kept_terms.append(cterms)
            kept_spans.append((chunk.article_row, s, e))
            per_article_count[chunk.article_row] = per_article_count.get(chunk.article_row, 0) + 1
            accepted += 1
            if accepted <= offset:
                continue
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

    def _worth_quoting(self, cand: Candidate, top_dense: float | None, q: QueryTerms, mode: str, arabic: bool) -> bool:
        """A hit after the first: close to the best one in meaning, or relevant on its own."""
        if cand.dense_score is not None and top_dense is not None and cand.dense_score >= top_dense - self.config.tail_margin:
            return True
        return self.is_relevant(cand, q, mode, arabic=arabic)

    def _quote_span(self, cand: Candidate, chunk, article, q: QueryTerms, qvec, coverage: float, numeric: bool) -> tuple[int, int]:  # noqa: ANN001
        """The span to quote for one hit (see retrieval/quote.py choose_quote)."""
        cfg = self.config
        body = article.body
        para = (body.rfind("\n", 0, chunk.start) + 1, len(body) if (nl := body.find("\n", chunk.end)) < 0 else nl)
        w_dense = cfg.quote_dense_weight + 1.0 - coverage
        if QUOTE_WHOLE_PARAGRAPH:
            # The answer may sit in the paragraph's other chunk: pick among all its clauses,
            # with a bonus for the chunk that retrieval ranked.
            rows = self.paragraph_chunks(chunk, para)
            units = [u for r in rows for u in self._chunk_units(r)]
            sims = np.concatenate([v @ qvec for v in self.unit_vectors(rows)]) if (qvec is not None and rows) else None
            return choose_quote(body, para[0], para[1], q, sims, w_dense, numeric, paragraph=para, units=units, preferred=(chunk.start, chunk.end))
        sims = self._unit_sims(chunk, body, qvec) if qvec is not None else None
        return choose_quote(body, chunk.start, chunk.end, q, sims, w_dense, numeric, paragraph=para)

    def unit_vectors(self, rows: Sequence[int]) -> list[np.ndarray]:
        """Vectors of each chunk's quotable sentences/clauses: stored by the build, else encoded once and cached."""
        stored = self.version.sentence_vectors()
        if stored is not None:
            vecs, offsets = stored
            return [vecs.read_range(offsets[r], offsets[r + 1]).astype(np.float32) for r in rows]
        found = {r: v for r in dict.fromkeys(rows) if (v := self._unit_cache.get(r)) is not None}
        missing = [r for r in dict.fromkeys(rows) if r not in found]
        if missing:
            spans: list[tuple[int, int]] = []
            texts: list[str] = []
            for r in missing:
                chunk = self.version.chunk(r)
                body = self.version.article(chunk.article_row).body
                units = quote_units(body, chunk.start, chunk.end)
                spans.append((len(texts), len(texts) + len(units)))
                texts.extend(body[a:b] for a, b in units)
            vecs = self.embedder.encode_passages(texts) if texts else np.zeros((0, self.embedder.dim), np.float32)
            with self._cache_lock:
                if len(self._unit_cache) + len(missing) > UNIT_CACHE_CHUNKS:
                    self._unit_cache.clear()
                for r, (a, b) in zip(missing, spans):
                    self._unit_cache[r] = found[r] = vecs[a:b]
        return [found[r] for r in rows]  # from this call's view: another thread may clear the cache

    def paragraph_chunks(self, chunk, para: tuple[int, int]) -> list[int]:
        """Rows of the chunks of `chunk`'s article that lie in the paragraph span, in order."""
        rows = self.version.db.execute(
            'SELECT row FROM chunks WHERE article_row=? AND start>=? AND "end"<=? ORDER BY ord',
            (chunk.article_row, para[0], para[1]),
        ).fetchall()
        return [r[0] for r in rows] or [chunk.row]

    def _chunk_units(self, row: int) -> list[tuple[int, int]]:
        chunk = self.version.chunk(row)
        return quote_units(self.version.article(chunk.article_row).body, chunk.start, chunk.end)

    def warm_units(self, cache: Path | None = None) -> None:
        """Encode every chunk's sentences now (or load them from `cache`, an .npz this wrote)."""
        rows = list(range(self.version.n_chunks))
        if cache is not None and cache.is_file():
            data = np.load(cache)
            if data["version"].item() == self.version.manifest.get("created", "") + self.version.name:
                offsets, vecs = data["offsets"], data["vectors"]
                self._unit_cache.update({r: vecs[offsets[r] : offsets[r + 1]] for r in rows})
                return
        all_vecs = self.unit_vectors(rows)
        if cache is not None:
            offsets = np.cumsum([0] + [len(v) for v in all_vecs])
            vecs = np.concatenate(all_vecs) if all_vecs else np.zeros((0, self.embedder.dim), np.float32)
            stamp = np.array(self.version.manifest.get("created", "") + self.version.name)
            np.savez(cache, offsets=offsets, vectors=vecs, version=stamp)

    def _unit_sims(self, chunk, body: str, qvec: np.ndarray) -> np.ndarray:
        """Cosine of the question with each quotable unit of a chunk."""
        return self.unit_vectors([chunk.row])[0] @ qvec

    def is_relevant(self, top: Candidate, q: QueryTerms, mode: str, arabic: bool = False) -> bool:
        """Whether the best candidate really answers, rather than being the least bad of noise.

        Few known words means either another language (meaning alone must carry it: the cross
        threshold) or, for an Arabic question over Arabic news, words the corpus never uses:
        that is usually off topic, so the plain dense threshold applies.
        """
        chunk = self.version.chunk(top.row)
        body = self.version.article(chunk.article_row).body
        words = _word_coverage(body[chunk.start : chunk.end], q)
        if mode == "lexical" or top.dense_score is None:
            return words >= self.config.min_word_coverage
        dense = (top.dense_score + top.unit_score) / 2 if top.unit_score is not None else top.dense_score
        if self.coverage(q) < 0.5:
            return dense >= (self.config.min_dense if arabic else self.config.min_dense_cross)
        if dense >= self.config.min_dense:
            return True
        return dense >= self.config.min_dense_with_words and words >= self.config.min_word_coverage


def _mostly_arabic(text: str) -> bool:
    """Whether most letters of the text are Arabic script."""
    letters = [ch for ch in text if ch.isalpha()]
    return bool(letters) and sum("\u0600" <= ch <= "\u06ff" for ch in letters) * 2 > len(letters)


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
    flight keeps the one it started with. A new version that fails to load is skipped (the
    previous one keeps answering) until CURRENT moves again.
    """

    def __init__(self, index_dir: Path, embedder: Embedder, config: SearchConfig = SearchConfig(), check_every: float = 1.0) -> None:
        self.index_dir = index_dir
        self.embedder = embedder
        self.config = config
        self.check_every = check_every
        self._lock = threading.Lock()
        self._searcher: Searcher | None = None
        self._checked = 0.0
        self._failed: str | None = None

    def get(self) -> Searcher:
        """The searcher of the current version (reloaded when CURRENT has moved)."""
        now = time.monotonic()
        current = self._searcher
        if current is not None and now - self._checked < self.check_every:
            return current
        with self._lock:
            self._checked = now
            name = read_current(self.index_dir)
            if self._searcher is None:
                self._searcher = Searcher(self._open(), self.embedder, self.config)
            elif name is not None and name != self._searcher.version.name and name != self._failed:
                try:
                    self._searcher = Searcher(self._open(), self.embedder, self.config)
                    log.info("switched to index version %s", self._searcher.version.name)
                    self._failed = None
                except (NewsqaError, OSError, RuntimeError, ValueError) as exc:
                    self._failed = name
                    log.warning("index version %s cannot be loaded (%s); still answering from %s", name, exc, self._searcher.version.name)
            return self._searcher

    def _open(self) -> IndexVersion:
        """Load the current version, refusing one whose vectors come from another model than ours."""
        version = open_current(self.index_dir)
        check_model(version, self.embedder)
        return version

    def refresh(self) -> Searcher:
        """Re-read CURRENT now (after an index update), loading the new version if it moved."""
        with self._lock:
            self._checked = float("-inf")
        return self.get()

    def answer(self, question: str, **kwargs: object) -> Answer:
        """Answer with the version current now."""
        return self.get().answer(question, **kwargs)  # type: ignore[arg-type]
