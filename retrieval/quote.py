"""Quote selection: the run of whole sentences/clauses of a hit's paragraph that holds the answer.

Every run of 1–3 consecutive units (≤ MAX_QUOTE_CHARS) is scored by the fitted quote model
(features below, weights in params.json); the best run then grows by whole neighbouring clauses
while it stays short, because an answer often sits in the clause next to the one that repeats the
question's words. Quotes are spans into the original text: always verbatim.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from index.arabic import term_spans, word_spans
from index.numbers import number_spans
from index.chunking import chunk_sentences
from retrieval.evidence import SpanEvidence, span_evidence
from retrieval.query import QType, Query, TermWeights
from retrieval.types import Quote

MAX_QUOTE_CHARS = 400  # a quote is read at a glance in a chat bubble; e5 units are ≤ 240 chars
MAX_WINDOW_UNITS = 3  # a quote starts as 1–3 consecutive units, then grows to MAX_QUOTE_CHARS

QUOTE_FEATURES = {
    "cov": "share of the question's idf weight whose terms the run holds",
    "sim": "cosine of the question with the run's best unit",
    "figure": "a how-many question and a run stating a figure",
    "figure_near": "a how-many question and a figure within 3 words of one of its words",
    "date": "a when question and a run stating a year or a date",
    "digit": "a how-many/when question and a run holding digits",
    "units": "units in the run beyond the first",
    "chars": "length of the run / MAX_QUOTE_CHARS",
    "in_chunk": "the run overlaps the chunk retrieval ranked",
    "first": "the run opens the paragraph",
    "cross_sim": "sim × (1 − known_share): meaning carries questions in another language",
    "cross_cov": "cov × (1 − known_share)",
}


@dataclass(frozen=True, slots=True)
class Paragraph:
    """The units of one paragraph that quotes are built from, with each one's evidence and similarity."""

    start: int
    end: int
    units: list[tuple[int, int]]
    sims: np.ndarray | None  # cosine of the question with each unit (None: not computed)
    evidence: list[SpanEvidence]  # what each unit offers an answer

    def without(self, avoid: Sequence[tuple[int, int]]) -> Paragraph:
        """The same paragraph less the units overlapping `avoid` (what is already quoted)."""
        keep = [k for k, (s, e) in enumerate(self.units) if not any(s < ae and as_ < e for as_, ae in avoid)]
        if len(keep) == len(self.units):
            return self
        sims = self.sims[keep] if self.sims is not None else None
        return Paragraph(self.start, self.end, [self.units[k] for k in keep], sims, [self.evidence[k] for k in keep])


def make_paragraph(body: str, start: int, end: int, units: list[tuple[int, int]], sims: np.ndarray | None) -> Paragraph:
    """A paragraph's quotable units with each one's evidence, analysed once."""
    return Paragraph(start, end, units, sims, [span_evidence(body[s:e]) for s, e in units])


def quote_units(body: str, start: int, end: int) -> list[tuple[int, int]]:
    """The sentences/clauses of a chunk that quotes are built from (each at most ~240 chars)."""
    return chunk_sentences(body, start, end)


def unit_windows(units: Sequence[tuple[int, int]], max_chars: int = MAX_QUOTE_CHARS) -> list[tuple[int, int]]:
    """(first, last) unit indices of every run of ≤ MAX_WINDOW_UNITS consecutive units within max_chars."""
    out: list[tuple[int, int]] = []
    for i in range(len(units)):
        out.append((i, i))
        for j in range(i + 1, min(len(units), i + MAX_WINDOW_UNITS)):
            if units[j][1] - units[i][0] > max_chars:
                break
            out.append((i, j))
    return out


def window_features(
    body: str, para: Paragraph, windows: Sequence[tuple[int, int]], query: Query, weights: TermWeights, chunk: tuple[int, int]
) -> np.ndarray:
    """One row of QUOTE_FEATURES per window of the paragraph."""
    evidence = para.evidence
    sims = para.sims if para.sims is not None else np.zeros(len(para.units))
    covs = [weights.coverage(set().union(*(evidence[k].terms for k in range(i, j + 1)))) for i, j in windows]
    cross = 1.0 - weights.known_share
    number_q = query.qtype in (QType.HOW_MANY, QType.WHEN)
    rows = []
    for (i, j), cov in zip(windows, covs):
        ev = evidence[i : j + 1]
        s, e = para.units[i][0], para.units[j][1]
        sim = float(np.max(sims[i : j + 1]))
        rows.append(
            [
                cov,
                sim,
                float(query.qtype is QType.HOW_MANY and any(x.figure for x in ev)),
                float(query.qtype is QType.HOW_MANY and any(weights.matches(x.near_figure) for x in ev)),
                float(query.qtype is QType.WHEN and any(x.date for x in ev)),
                float(number_q and any(x.digit for x in ev)),
                float(j - i),
                (e - s) / MAX_QUOTE_CHARS,
                float(s < chunk[1] and e > chunk[0]),
                float(i == 0),
                sim * cross,
                cov * cross,
            ]
        )
    return np.array(rows, dtype=np.float64).reshape(len(rows), len(QUOTE_FEATURES))


def grow(body: str, units: Sequence[tuple[int, int]], i: int, j: int, max_chars: int = MAX_QUOTE_CHARS) -> tuple[int, int]:
    """Grow units[i..j] by whole neighbours, the next one first then alternating, while ≤ max_chars."""
    step = 0
    while True:
        options = [(i, j + 1), (i - 1, j)]
        if step % 2 == 1:
            options.reverse()
        for ni, nj in options:
            if 0 <= ni and nj < len(units) and units[nj][1] - units[ni][0] <= max_chars:
                i, j = ni, nj
                break
        else:
            break
        step += 1
    s, e = units[i][0], units[j][1]
    return s, cut(body, s, e, max_chars)


def cut(body: str, s: int, e: int, max_chars: int = MAX_QUOTE_CHARS) -> int:
    """End of a quote starting at s: e, or the last word end that keeps it within max_chars."""
    if e - s <= max_chars:
        return e
    words = [t for t in word_spans(body[s : s + max_chars]) if t.end < max_chars]
    return s + (words[-1].end if words else max_chars)


def highlight_spans(text: str, query: Query, weights: TermWeights) -> tuple[tuple[int, int], ...]:
    """Spans (relative to `text`) of words matching a question term, and the figures a how-many/when question asks for."""
    spans = {(t.start, t.end) for t in term_spans(text, keep_stopwords=True) if weights.weights.get(t.term, 0.0) > 0}
    if query.qtype in (QType.HOW_MANY, QType.WHEN):
        asked = set(query.numbers)
        spans |= {(n.start, n.end) for n in number_spans(text) if n.term not in asked}
    # Overlapping spans (a figure written in words that also matched a term) merge into one.
    out: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return tuple(out)


def make_quote(body: str, s: int, e: int, query: Query, weights: TermWeights) -> Quote:
    """A Quote over body[s:e] with its highlights."""
    text = body[s:e]
    return Quote(text=text, start=s, end=e, highlights=highlight_spans(text, query, weights))
