"""Pick the one to three consecutive sentences of a hit that best answer the question."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from index.arabic import STOPWORDS, clause_spans, stem, word_spans
from retrieval.types import Quote

MAX_QUOTE_CHARS = 400


@dataclass(frozen=True, slots=True)
class QueryTerms:
    """The question's matching terms with their weights (idf from the lexical index)."""

    weights: dict[str, float]

    @property
    def total(self) -> float:
        """Sum of weights: the score of a span holding every term."""
        return sum(self.weights.values())


def query_terms(question: str, idf: Callable[[str], float | None]) -> QueryTerms:
    """Stemmed question terms weighted by idf; words absent from the corpus get the maximum."""
    weights: dict[str, float] = {}
    for tok in word_spans(question):
        if tok.norm in STOPWORDS:
            continue
        term = stem(tok.norm)
        w = idf(term)
        weights[term] = max(weights.get(term, 0.0), w if w is not None else 0.0)
    return QueryTerms(weights)


_QUANTITY_WORDS = frozenset({"كم", "عدد", "نسبه", "مقدار", "many", "much", "percent", "percentage"})
_DIGIT_RE = re.compile(r"[0-9\u0660-\u0669\u06f0-\u06f9]")


def expects_number(question: str) -> bool:
    """Whether the question asks for a quantity (كم، عدد، how many…), so numbers answer it."""
    return any(t.norm in _QUANTITY_WORDS for t in word_spans(question))


def has_number(text: str) -> bool:
    """Whether a text states a figure."""
    return _DIGIT_RE.search(text) is not None


def _span_terms(text: str, s: int, e: int) -> list[tuple[str, int, int]]:
    return [(stem(t.norm), s + t.start, s + t.end) for t in word_spans(text[s:e])]


def candidate_windows(
    body: str, start: int, end: int, max_chars: int = MAX_QUOTE_CHARS
) -> list[tuple[int, int]]:
    """Runs of 1–3 consecutive sentences/clauses within [start, end) of at most max_chars."""
    spans = clause_spans(body, start, end, max_chars=min(240, max_chars))
    windows: list[tuple[int, int]] = []
    for i in range(len(spans)):
        for j in range(i, min(i + 3, len(spans))):
            s, e = spans[i][0], spans[j][1]
            if e - s > max_chars and j > i:
                break
            windows.append((s, min(e, s + max_chars) if j == i else e))
    return windows


def lexical_window_scores(
    body: str, windows: Sequence[tuple[int, int]], q: QueryTerms, number_bonus: float = 0.0
) -> np.ndarray:
    """Weight of distinct question terms each window holds, lightly favouring shorter windows.

    With number_bonus, single sentences/clauses stating a figure gain that much (for quantity
    questions); longer windows do not, so a figure is never pulled in from a neighbouring clause.
    """
    scores = np.zeros(len(windows), dtype=np.float64)
    if number_bonus:
        singles = set(clause_spans(body, windows[0][0], windows[-1][1])) if windows else set()
        scores += [number_bonus if (s, e) in singles and has_number(body[s:e]) else 0.0 for s, e in windows]
    if not q.weights:
        return scores
    for i, (s, e) in enumerate(windows):
        found = {t for t, _, _ in _span_terms(body, s, e) if t in q.weights}
        covered = sum(q.weights[t] for t in found)
        scores[i] += covered / (q.total or 1.0) - 0.02 * math.log1p((e - s) / 100)
    return scores


def highlight_spans(text: str, q: QueryTerms) -> tuple[tuple[int, int], ...]:
    """Spans (relative to `text`) of words that match a question term."""
    return tuple((s, e) for t, s, e in _span_terms(text, 0, len(text)) if t in q.weights and q.weights[t] > 0)


def make_quote(body: str, s: int, e: int, q: QueryTerms) -> Quote:
    """A Quote over body[s:e] with its highlights."""
    text = body[s:e]
    return Quote(text=text, start=s, end=e, highlights=highlight_spans(text, q))


def best_window(
    body: str,
    start: int,
    end: int,
    q: QueryTerms,
    dense_scores: Callable[[list[str]], np.ndarray] | None = None,
    lexical_weight: float = 1.0,
) -> tuple[int, int]:
    """The window that best answers: lexical coverage, plus dense similarity when given."""
    windows = candidate_windows(body, start, end)
    if not windows:
        return start, min(end, start + MAX_QUOTE_CHARS)
    score = lexical_weight * lexical_window_scores(body, windows, q)
    if dense_scores is not None:
        score = score + dense_scores([body[s:e] for s, e in windows])
    # Ties go to the earlier, shorter window (windows are listed in that order).
    return windows[int(np.argmax(score))]
