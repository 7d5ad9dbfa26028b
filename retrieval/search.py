"""The searcher: wires the answer pipeline's stages over one index version, and nothing else.

query → candidates (lexical, dense, filters) → fusion → passage scoring (fitted) → decision
(fitted, calibrated) → diversification → quote selection (fitted).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import numpy as np

from index.dense import DenseParams
from index.embedder import Embedder, encode_questions
from index.errors import NewsqaError
from index.second_encoder import DIM as SECOND_DIM, shared_encoder
from index.store import ArticleRecord, IndexReader, LocalStore, VersionStore, check_model, remember
from index.words import encode_words, language_means_of
from retrieval.backend import Restriction, backend_for
from retrieval.candidates import Candidate, merge
from retrieval.centring import CENTRE_WEIGHT, centred, language_offset
from retrieval.context import expand, own_text, prefer
from retrieval.decide import Decision, decide
from retrieval.diversify import DUPLICATE_JACCARD, diversify, jaccard
from retrieval.evidence import SpanEvidence, analyse_span
from retrieval.fusion import FusionMethod, fuse
from retrieval.query import Query, TermWeights, analyse
from retrieval.quote import Paragraph, grow, make_paragraph, make_quote, quote_units, unit_windows, window_features
from retrieval.translate import translate
from retrieval.scoring import Params, decision_features, passage_features, shipped_params
from retrieval.types import Answer, Context, Hit, SearchFilters, Source

MODES = ("fused", "lexical", "dense")
UNIT_CACHE_CHUNKS = 5_000  # chunks whose sentence vectors stay in memory when the build stored none (~30 MB)
EVIDENCE_CACHE_CHUNKS = 5_000  # chunks whose analysed evidence stays in memory (~8 KB each, ~40 MB)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SearchConfig:
    """How much work each stage does, and overrides of the fitted decision (from Settings)."""

    candidates: int = 100  # per side, before fusion
    scored: int = 20  # best fused candidates whose sentences are read and that the fitted model scores
    fusion: FusionMethod = FusionMethod.CONVEX
    lexical_weight: float = 0.5  # lexical share of convex fusion when every question word is known (bench/RESULTS.md)
    per_article: int = 2
    rerank: bool = True  # order by the fitted passage model (False: by fusion alone, for ablation)
    threshold: float | None = None  # answer/no-answer threshold; None = the fitted one, 0 = always answer
    nprobe: int = 0  # approximate FAISS kinds: 0 = the value stored in the index
    ef_search: int = 0
    exact_rerank: bool = True  # re-score approximate candidates exactly from vectors.npy
    translate: bool = True  # match a question in another script by the corpus terms its words mean (retrieval/translate.py)
    centre: float = CENTRE_WEIGHT  # share of the language offset taken off such a question's vector (retrieval/centring.py; 0 = off)


@dataclass(slots=True)
class Ranking:
    """What ranking learnt about one question: its analysis, candidates best first, their evidence."""

    query: Query
    weights: TermWeights
    candidates: list[Candidate]
    qvec: np.ndarray | None = None
    features: dict[int, np.ndarray] = field(default_factory=dict)  # passage features by row (scored ones)
    evidence: dict[int, SpanEvidence] = field(default_factory=dict)
    dense_median: float | None = None  # median cosine of the dense candidates: how much the best stands out
    unit_median: float | None = None  # median best-sentence cosine of the scored candidates
    paragraphs: dict[int, tuple[Paragraph, tuple[int, int]]] = field(default_factory=dict)  # by candidate row, built once


class Searcher:
    """Answers questions over one loaded index version."""

    def __init__(self, version: IndexReader, embedder: Embedder, config: SearchConfig = SearchConfig(), params: Params | None = None) -> None:
        self.version = version
        self.embedder = embedder
        self.config = config
        translates = config.translate and bool(version.manifest.get("lexicon"))
        self.params = params or shipped_params(version.manifest.get("model", {}).get("backend"), translates)  # the vectors' own fit
        self.backend = backend_for(version)  # local files or Qdrant: candidates, idf, filters
        self._unit_cache: dict[int, np.ndarray] = {}
        self._second_cache: dict[int, np.ndarray] = {}  # second-encoder vectors of chunks an index did not store them for
        shared_encoder().preload()  # while the question is analysed and encoded
        self._cache_lock = threading.Lock()
        self._evidence: dict[int, SpanEvidence] = {}

    def threshold(self, query: Query) -> float:
        """The answer/no-answer threshold in force for this question (fitted per script unless set)."""
        if self.config.threshold is not None:
            return self.config.threshold
        return self.params.thresholds.get("arabic" if query.arabic else "other", self.params.threshold)

    # --- ranking ------------------------------------------------------------------------
    def rank(
        self,
        question: str | Query,
        mode: str = "fused",
        filters: SearchFilters | None = None,
        qvec: np.ndarray | None = None,
        timings: dict[str, float] | None = None,
        second_qvec: np.ndarray | None = None,
    ) -> Ranking:
        """Candidates best first: fused, then (in fused mode) re-ranked by the fitted passage model.

        qvec and second_qvec, when given, are the question's vectors by the model and by the second encoder.
        """
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}: one of {', '.join(MODES)}")
        timings = timings if timings is not None else {}
        query = question if isinstance(question, Query) else analyse(question)
        weights = self.backend.weigh(query)
        cfg = self.config
        mask = self.backend.restrict(filters)
        lex: list[tuple[int, float]] = []
        dense: list[tuple[int, float]] = []
        dense_median = None
        if mode in ("fused", "lexical"):
            t = time.perf_counter()
            translated = self.translated(query, weights)
            if translated is not None:
                # Its words are matched as the corpus terms they mean; fusion still reads how much of the question itself the corpus knows.
                weights = replace(self.backend.weigh(translated), known_share=weights.known_share)
            timings["translate"] = time.perf_counter() - t
            t = time.perf_counter()
            lex = self.lexical(translated or query, cfg.candidates, mask)
            timings["lexical"] = time.perf_counter() - t
        if mode in ("fused", "dense"):
            t = time.perf_counter()
            if qvec is None:
                qvec = encode_questions(self.embedder, [query.text])[0]
            if not query.arabic and cfg.centre:
                offset = self.language_offset()
                if offset is not None:
                    qvec = centred(qvec, offset, cfg.centre)
            timings["embed"] = time.perf_counter() - t
            t = time.perf_counter()
            dense = self.dense(qvec, cfg.candidates, mask)
            dense_median = float(np.median([d for _, d in dense])) if dense else None
            timings["dense"] = time.perf_counter() - t
        t = time.perf_counter()
        cands = merge(lex, dense, self.backend.article_row)
        fuse(cands, mode, weights.known_share, cfg.lexical_weight, cfg.fusion)
        cands.sort(key=lambda c: (-c.fused, c.row))
        ranking = Ranking(query, weights, cands, qvec, dense_median=dense_median)
        timings["fusion"] = time.perf_counter() - t
        t = time.perf_counter()
        if mode == "fused" and qvec is not None and cands:
            head = cands[: cfg.scored]
            for c, vecs in zip(head, self.unit_vectors([c.row for c in head], query)):
                c.unit_score = float(np.max(vecs @ qvec)) if len(vecs) else None
            units = [c.unit_score for c in head if c.unit_score is not None]
            ranking.unit_median = float(np.median(units)) if units else None
            fuse(cands, mode, weights.known_share, cfg.lexical_weight, cfg.fusion)
            head = sorted(cands, key=lambda c: (-c.fused, c.row))[: cfg.scored]
            ranking.evidence = {c.row: self.evidence(c.row) for c in head}
            leads = [self.version.chunk(c.row).ord == 0 for c in head]
            second = self.second_scores([c.row for c in head], query, second_qvec)
            x = passage_features(head, [ranking.evidence[c.row] for c in head], leads, query, weights, second)
            for c, p, row in zip(head, self.params.passage.probs(x), x):
                c.prob = float(p)
                ranking.features[c.row] = row
            rest = sorted((c for c in cands if c.prob is None), key=lambda c: (-c.fused, c.row))
            order = (lambda c: (-(c.prob or 0.0), c.row)) if cfg.rerank else (lambda c: (-c.fused, c.row))
            ranking.candidates = sorted(head, key=order) + rest
        timings["score"] = time.perf_counter() - t
        return ranking

    def language_offset(self) -> np.ndarray | None:
        """What sets an English question's vector apart from Arabic (retrieval/centring.py), from the model's word
        lists (their means are worked out once); None for an embedder without them."""
        return language_offset(language_means_of(self.embedder))

    def translated(self, query: Query, weights: TermWeights) -> Query | None:
        """A question in another script as the corpus's own terms (retrieval/translate.py), None when not needed."""
        if query.arabic or not self.config.translate:
            return None
        return translate(query, self.version.lexicon(), partial(encode_words, self.embedder), lambda t: weights.weights.get(t, 0.0) > 0)

    def evidence(self, row: int) -> SpanEvidence:
        """A chunk's evidence: as the build stored it, else analysed here; kept for the questions that come back to it.

        Analysing was three quarters of a question's CPU time; reading the stored analysis costs a SQLite row.
        """
        # kept here, by row: not also in span_evidence's cache
        return remember(self._evidence, EVIDENCE_CACHE_CHUNKS, row, self._load_evidence)

    def _load_evidence(self, row: int) -> SpanEvidence:
        """The stored analysis of a chunk (index/evidence.py), or the analysis of its text when none was stored."""
        stored = self.version.chunk_evidence(row)
        return stored if stored is not None else analyse_span(self.version.chunk_text(row))

    def lexical(self, query: Query, n: int, mask: Restriction = None) -> list[tuple[int, float]]:
        """Top-n chunk rows by BM25 (the candidates stage's lexical side)."""
        return self.backend.lexical(query, n, mask)

    def dense(self, qvec: np.ndarray, n: int, mask: Restriction = None) -> list[tuple[int, float]]:
        """Top-n chunk rows by cosine similarity (the candidates stage's dense side)."""
        cfg = self.config
        return self.backend.dense(qvec, n, DenseParams(cfg.nprobe, cfg.ef_search, cfg.exact_rerank), mask)

    def decision(self, ranking: Ranking, cand: Candidate) -> Decision:
        """Whether `cand` answers the question well enough to be quoted on its own."""
        row = ranking.features.get(cand.row)
        if row is None:  # lexical/dense diagnostics modes, or a candidate the model did not score
            return Decision(True, 1.0)
        return decide(self.params.decision(ranking.query.arabic), self.decision_row(ranking, cand), self.threshold(ranking.query))

    def decision_row(self, ranking: Ranking, cand: Candidate) -> np.ndarray:
        """The decision model's features for a scored candidate (also what bench/fit_scoring.py fits on)."""
        return decision_features(
            cand, ranking.features[cand.row], ranking.evidence[cand.row], ranking.query, ranking.weights,
            ranking.dense_median, ranking.unit_median,
        )

    def competes(self, ranking: Ranking, cand: Candidate, mode: str) -> bool:
        """Whether a hit after the first is worth a place: relevant on its own, not the least bad of noise."""
        if mode != "fused":
            return True
        return cand.prob is not None and self.decision(ranking, cand).answer

    # --- answering ----------------------------------------------------------------------
    def answer(
        self,
        question: str,
        k: int = 5,
        mode: str = "fused",
        filters: SearchFilters | None = None,
        per_article: int | None = None,
        offset: int = 0,
        qvec: np.ndarray | None = None,
        context: Context | None = None,
        second_qvec: np.ndarray | None = None,
    ) -> Answer:
        """Ranked hits with verbatim quotes and sources, or found=False when nothing answers.

        With a context (a follow-up question), its words are searched too and its articles come first when
        they answer. qvec, if given, is the vector of `searched_text(question, context)` (retrieval/context.py);
        second_qvec, if given, is that text's vector by the second encoder.
        """
        started = time.perf_counter()
        timings: dict[str, float] = {}
        answer = Answer(question=question, version=self.version.name, timings=timings)
        follow = context is not None and context.active
        query = expand(question, context) if follow and context is not None else analyse(question)
        timings["analyse"] = time.perf_counter() - started
        if query.content_free:
            answer.declined = "content-free"
            return answer  # nothing to search for: no search runs
        ranking = self.rank(query, mode, filters, qvec, timings, second_qvec)
        if follow and context is not None and ranking.candidates:
            self.prefer_context(ranking, question, context)
        t = time.perf_counter()
        timings["quote"] = 0.0
        if not ranking.candidates:
            timings["total"] = time.perf_counter() - started
            return answer
        top = ranking.candidates[0]
        verdict = self.decision(ranking, top)
        answer.probability = verdict.probability
        timings["decide"] = time.perf_counter() - t
        t = time.perf_counter()
        if not verdict.answer:
            answer.declined = "no-answer"
            timings["total"] = time.perf_counter() - started
            return answer  # better to say so than to quote noise
        per_article = self.config.per_article if per_article is None else per_article
        kept_terms: list[tuple[int, frozenset[str]]] = []
        kept_spans: list[tuple[int, int, int]] = []
        accepted = 0
        quoted_best: list[Candidate] = []

        def order() -> Iterator[Candidate]:
            ranked = list(diversify(ranking.candidates, per_article, lambda c: self.competes(ranking, c, mode)))
            if not ranked:
                return
            first = self.lead(ranking, ranked)
            ranked.remove(first)
            yield first
            if per_article != 1 and not any(c.article_row == first.article_row for c in ranking.candidates[1 : self.config.scored]):
                # The best article has no other passage in the running: its second place is the next best
                # run of the paragraph already quoted, before other articles take the places.
                yield first
            yield from ranked
            # Places still free: the next best runs of the best article's paragraphs already quoted.
            for _ in range(k):
                again = list(quoted_best)
                quoted_best.clear()
                if not again:
                    return
                yield from again

        for cand in order():
            if accepted >= offset + k:
                break
            chunk = self.version.chunk(cand.row)
            ev = ranking.evidence.get(cand.row) or self.evidence(cand.row)
            if any(r != chunk.article_row and jaccard(ev.terms, other) >= DUPLICATE_JACCARD for r, other in kept_terms):
                continue  # the same passage told again (another agency's copy): quote it once
            article = self.version.article(chunk.article_row)
            quoted = [(ks, ke) for r, ks, ke in kept_spans if r == chunk.article_row]
            span = self.quote_span(ranking, cand, article, avoid=quoted)
            if span is None:
                continue  # every run of this paragraph is already quoted
            s, e, _ = span
            if chunk.article_row == top.article_row:
                quoted_best.append(cand)
            kept_terms.append((chunk.article_row, ev.terms))
            kept_spans.append((chunk.article_row, s, e))
            accepted += 1
            if accepted <= offset:
                continue
            answer.hits.append(
                Hit(
                    chunk_row=cand.row,
                    article_row=chunk.article_row,
                    source=Source(article.id, article.title, article.source, article.date, article.url),
                    section=chunk.section,
                    quote=make_quote(article.body, s, e, ranking.query, ranking.weights),
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

    def prefer_context(self, ranking: Ranking, question: str, context: Context) -> None:
        """Passages answering the follow-up's own words first; the previous answer's articles first among equals."""
        rows = {r.row for a in context.articles if (r := self.version.article_by_id(a)) is not None}
        if not ranking.features:
            return
        own = self.backend.weigh(analyse(own_text(question)))
        ranking.candidates = prefer(
            ranking.candidates,
            rows,
            lambda c: own.coverage(ranking.evidence[c.row].terms),
            lambda c: self.decision(ranking, c).answer,
        )

    def lead(self, ranking: Ranking, ranked: Sequence[Candidate]) -> Candidate:
        """The hit to quote first: of the best article's passages in the running, the one whose best run
        holds the strongest evidence by the fitted quote model (the figure a how-many question asks for)."""
        best = ranked[0]
        same = [c for c in ranked if c.article_row == best.article_row and c.prob is not None]
        if len(same) < 2:
            return best
        article = self.version.article(best.article_row)
        spans = [self.quote_span(ranking, c, article) for c in same]
        scores = [sp[2] if sp is not None else float("-inf") for sp in spans]
        return same[int(np.argmax(scores))]

    # --- quotes -------------------------------------------------------------------------
    def paragraph(
        self, cand: Candidate, article: ArticleRecord, qvec: np.ndarray | None, query: Query | None = None
    ) -> tuple[Paragraph, tuple[int, int]]:
        """The paragraph holding a candidate chunk, as quotable units with their similarities, and the chunk's span."""
        chunk = self.version.chunk(cand.row)
        body = article.body
        p_start = body.rfind("\n", 0, chunk.start) + 1
        p_end = len(body) if (nl := body.find("\n", chunk.end)) < 0 else nl
        rows = self.version.chunk_rows_within(chunk.article_row, p_start, p_end) or [cand.row]
        units = [u for r in rows for u in quote_units(body, *self._span(r))]
        sims = np.concatenate([v @ qvec for v in self.unit_vectors(rows, query)]) if qvec is not None else None
        if sims is not None and len(sims) != len(units):
            sims = None  # stored sentence vectors that do not line up with today's units are not used
        return make_paragraph(body, p_start, p_end, units, sims), (chunk.start, chunk.end)

    def quote_span(
        self, ranking: Ranking, cand: Candidate, article: ArticleRecord, avoid: Sequence[tuple[int, int]] = ()
    ) -> tuple[int, int, float] | None:
        """The span to quote for one hit and its quote-model log-odds: the best run, grown by whole clauses.

        Runs overlapping `avoid` (what this article already quotes) are left out, so a second hit in
        the same paragraph quotes its next best sentences instead of repeating the first.
        """
        if cand.row not in ranking.paragraphs:  # the first quote's choice and the quotes themselves read it
            ranking.paragraphs[cand.row] = self.paragraph(cand, article, ranking.qvec, ranking.query)
        whole, chunk_span = ranking.paragraphs[cand.row]
        para = whole.without(avoid)
        if not para.units:
            return None
        windows = [(i, j) for i, j in unit_windows(para.units) if _consecutive(para.units, i, j, article.body)]
        x = window_features(article.body, para, windows, ranking.query, ranking.weights, chunk_span)
        logits = self.params.quote.logits(x)
        best = int(np.argmax(logits))
        i, j = windows[best]
        run, at = _run_around(para.units, i, j, article.body)
        s, e = grow(article.body, run, at, at + j - i)
        return s, e, float(logits[best])

    def _span(self, row: int) -> tuple[int, int]:
        chunk = self.version.chunk(row)
        return chunk.start, chunk.end

    def unit_vectors(self, rows: Sequence[int], query: Query | None = None) -> list[np.ndarray]:
        """Vectors of each chunk's quotable sentences/clauses: stored by the build, else encoded once and cached.

        Late-chunked vectors (one pass per chunk) match questions in the corpus's language as well as
        sentences encoded alone, but not questions in another language (English over Arabic news):
        for those, the few sentences a question needs are encoded alone, once, and cached.
        """
        if query is not None and not query.arabic and self.late_chunked:
            return self._encoded_units(rows)
        stored = self.version.unit_vectors(rows)
        return stored if stored is not None else self._encoded_units(rows)

    def _encoded_units(self, rows: Sequence[int]) -> list[np.ndarray]:
        """Each chunk's sentences encoded alone (cached): when the build stored none, or for cross-language questions."""
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
            # One encoder call per chunk: int8 scales activations per batch, so a chunk's vectors must not
            # depend on which other chunks happened to be missing from the cache at the same time.
            empty = np.zeros((0, self.embedder.dim), np.float32)
            parts = [self.embedder.encode_passages(texts[a:b]) if b > a else empty for a, b in spans]
            with self._cache_lock:
                if len(self._unit_cache) + len(missing) > UNIT_CACHE_CHUNKS:
                    self._unit_cache.clear()
                for r, vecs in zip(missing, parts):
                    self._unit_cache[r] = found[r] = vecs
        return [found[r] for r in rows]  # from this call's view: another thread may clear the cache

    def second_scores(self, rows: Sequence[int], query: Query, qvec: np.ndarray | None = None) -> np.ndarray:
        """Cosine of the question with each chunk by the second encoder (index/second_encoder.py); qvec: the
        question's vector by it, when the caller encoded it already (the bot, in shared batches)."""
        if qvec is None:
            qvec = shared_encoder().encode([query.text])[0]
        stored = self.version.second_rows(rows)
        return (stored if stored is not None else self._encoded_second(rows)) @ qvec

    def _encoded_second(self, rows: Sequence[int]) -> np.ndarray:
        """Second-encoder vectors of chunks whose index stores none (built before them), encoded once and cached."""
        found = {r: v for r in dict.fromkeys(rows) if (v := self._second_cache.get(r)) is not None}
        missing = [r for r in dict.fromkeys(rows) if r not in found]
        if missing:
            if not self._second_cache:
                log.info("index %s stores no second-encoder vectors: candidates are encoded as they come (`newsqa index update` stores them)", self.version.name)
            found.update(zip(missing, shared_encoder().encode([self.version.chunk_text(r) for r in missing])))
            with self._cache_lock:
                if len(self._second_cache) + len(missing) > UNIT_CACHE_CHUNKS:
                    self._second_cache.clear()
                self._second_cache.update((r, found[r]) for r in missing)
        return np.stack([found[r] for r in rows]) if len(rows) else np.zeros((0, SECOND_DIM), np.float32)

    @property
    def late_chunked(self) -> bool:
        """Whether the stored sentence vectors were pooled from the chunks' own pass (index/late_chunking.py)."""
        return (self.version.manifest.get("sentences") or {}).get("method") == "late-chunking"

    def warm_units(self, cache: Path | None = None) -> None:
        """Encode every chunk's sentences now (or load them from `cache`, an .npz this wrote); no-op when stored.

        Late-chunked stored vectors still leave cross-language questions to these (evaluation warms them).
        """
        if self.version.manifest.get("sentences") and not self.late_chunked:
            return
        rows = list(range(self.version.n_chunks))
        if cache is not None and cache.is_file():
            data = np.load(cache)
            if data["version"].item() == self.version.manifest.get("created", "") + self.version.name:
                offsets, vecs = data["offsets"], data["vectors"]
                self._unit_cache.update({r: vecs[offsets[r] : offsets[r + 1]] for r in rows})
                return
        all_vecs = self._encoded_units(rows)
        if cache is not None:
            offsets = np.cumsum([0] + [len(v) for v in all_vecs])
            vecs = np.concatenate(all_vecs) if all_vecs else np.zeros((0, self.embedder.dim), np.float32)
            stamp = np.array(self.version.manifest.get("created", "") + self.version.name)
            np.savez(cache, offsets=offsets, vectors=vecs, version=stamp)


def _consecutive(units: Sequence[tuple[int, int]], i: int, j: int, body: str) -> bool:
    """Whether units i..j follow each other in the text (no quoted unit left out between them)."""
    return all(not body[units[k][1] : units[k + 1][0]].strip() for k in range(i, j))


def _run_around(units: Sequence[tuple[int, int]], i: int, j: int, body: str) -> tuple[list[tuple[int, int]], int]:
    """The consecutive units around i..j (how far a quote may grow without crossing another quote), and where i sits in them."""
    a, b = i, j
    while a > 0 and not body[units[a - 1][1] : units[a][0]].strip():
        a -= 1
    while b + 1 < len(units) and not body[units[b][1] : units[b + 1][0]].strip():
        b += 1
    return list(units[a : b + 1]), i - a


class LiveSearcher:
    """Follows the index's CURRENT pointer: a new version is picked up without a restart.

    Each call hands out the Searcher of the version current at that moment; a question in
    flight keeps the one it started with. A new version that fails to load is skipped (the
    previous one keeps answering) until CURRENT moves again.
    """

    def __init__(
        self, index: Path | VersionStore, embedder: Embedder, config: SearchConfig = SearchConfig(), check_every: float = 1.0
    ) -> None:
        self.store: VersionStore = LocalStore(index) if isinstance(index, Path) else index
        self.embedder = embedder
        self.config = config
        self.check_every = check_every
        self._lock = threading.Lock()
        self._searcher: Searcher | None = None
        self._checked = 0.0
        self._failed: str | None = None
        self.problem: str | None = None  # why the version CURRENT names is not the one answering (for /stats)

    def get(self) -> Searcher:
        """The searcher of the current version (reloaded when CURRENT has moved)."""
        now = time.monotonic()
        current = self._searcher
        if current is not None and now - self._checked < self.check_every:
            return current
        with self._lock:
            self._checked = now
            name = self.store.current_name()
            if self._searcher is None:
                self._searcher = Searcher(self._open(), self.embedder, self.config)
            elif name is not None and name != self._searcher.version.name and name != self._failed:
                try:
                    self._searcher = Searcher(self._open(), self.embedder, self.config)
                    log.info("switched to index version %s", self._searcher.version.name)
                    self._failed = self.problem = None
                except (NewsqaError, OSError, RuntimeError, ValueError) as exc:
                    self._failed, self.problem = name, str(exc)
                    log.warning("index version %s cannot be loaded (%s); still answering from %s", name, exc, self._searcher.version.name)
            return self._searcher

    def _open(self) -> IndexReader:
        """Load the current version, refusing one whose vectors come from another model than ours."""
        version = self.store.open_current()
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
