"""Pick the one to three consecutive sentences of a hit that best answer the question."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from index.chunking import chunk_sentences
from index.arabic import STOPWORDS, clause_spans, normalize, stem, word_spans
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


def _span_terms(text: str, s: int, e: int) -> list[tuple[str, int, int]]:
    return [(stem(t.norm), s + t.start, s + t.end) for t in word_spans(text[s:e])]


def highlight_spans(text: str, q: QueryTerms) -> tuple[tuple[int, int], ...]:
    """Spans (relative to `text`) of words that match a question term."""
    return tuple((s, e) for t, s, e in _span_terms(text, 0, len(text)) if t in q.weights and q.weights[t] > 0)


def make_quote(body: str, s: int, e: int, q: QueryTerms) -> Quote:
    """A Quote over body[s:e] with its highlights."""
    text = body[s:e]
    return Quote(text=text, start=s, end=e, highlights=highlight_spans(text, q))


_NUMERIC_Q = frozenset(
    normalize(w)
    for w in "كم عدد متى عام سنة سنه اي أي how many much when year years number percent".split()  # noqa: SIM905
)
_DIGIT_RE = re.compile(r"\d")


_NUMBER_WORDS = frozenset(
    normalize(w)
    for w in (
        "اثنان اثنين ثلاث ثلاثة اربع أربع اربعة أربعة خمس خمسة ست ستة سبع سبعة ثمان ثماني ثمانية تسع تسعة "
        "عشر عشرة عشرات عشرين ثلاثين اربعين خمسين مئة مائة مئات الف ألف الاف آلاف مليون ملايين مليار مليارات "
        "نصف ربع ثلث ضعف اضعاف عشرات"
    ).split()
)


def states_quantity(text: str) -> bool:
    """Whether a text states a figure, in digits or in words (ثلاثة آلاف)."""
    if _DIGIT_RE.search(text):
        return True
    for tok in word_spans(text):
        w = tok.norm[1:] if tok.norm.startswith("و") and len(tok.norm) > 3 else tok.norm
        if w in _NUMBER_WORDS:
            return True
    return False


_COUNT_Q = frozenset(normalize(w) for w in "كم عدد نسبة مقدار many much".split())  # noqa: SIM905


def count_question(question: str) -> bool:
    """Whether the question asks how many / how much (كم، عدد، how many), not when."""
    return any(t.norm in _COUNT_Q for t in word_spans(question))


def numeric_question(question: str) -> bool:
    """Whether the question asks for a number or a date (كم، متى، how many, what year...)."""
    return any(t.norm in _NUMERIC_Q for t in word_spans(question))


def quote_units(body: str, start: int, end: int) -> list[tuple[int, int]]:
    """The sentences/clauses of a chunk that quotes are built from (each at most ~240 chars)."""
    return chunk_sentences(body, start, end)


def unit_windows(units: Sequence[tuple[int, int]], max_chars: int = MAX_QUOTE_CHARS) -> list[tuple[int, int]]:
    """(first, last) unit indices of every run of consecutive units that fits in max_chars."""
    out: list[tuple[int, int]] = []
    for i in range(len(units)):
        out.append((i, i))
        for j in range(i + 1, len(units)):
            if units[j][1] - units[i][0] > max_chars:
                break
            out.append((i, j))
    return out


def choose_quote(
    body: str,
    start: int,
    end: int,
    q: QueryTerms,
    unit_sims: np.ndarray | None = None,
    dense_weight: float = 0.0,
    numeric: bool = False,
    max_chars: int = MAX_QUOTE_CHARS,
    fill_chars: int | None = None,
    paragraph: tuple[int, int] | None = None,
    units: Sequence[tuple[int, int]] | None = None,
    preferred: tuple[int, int] | None = None,
) -> tuple[int, int]:
    """The span to quote: the run of whole sentences/clauses (≤ max_chars) that best answers.

    A run scores the idf weight of the question words it holds, the meaning match of its best
    unit (when unit similarities are given), and, for how-many/when questions, whether it holds
    a number; a small cost per character keeps it short. A single unit longer than max_chars is
    cut at the last word boundary that fits.
    """
    fill_chars = FILL_CHARS if fill_chars is None else min(fill_chars, max_chars)
    units = list(units) if units is not None else quote_units(body, start, end)
    if not units:
        return start, _cut(body, start, min(end, start + max_chars))
    windows = unit_windows(units, max_chars)
    unit_terms = [{t for t, _, _ in _span_terms(body, s, e)} for s, e in units]
    has_digit = [bool(_DIGIT_RE.search(body[s:e])) for s, e in units]
    total = q.total or 1.0
    best, best_score = windows[0], -math.inf
    for i, j in windows:
        found: set[str] = set().union(*unit_terms[i : j + 1])
        score = sum(w for t, w in q.weights.items() if t in found) / total
        if unit_sims is not None and dense_weight:
            score += dense_weight * float(np.max(unit_sims[i : j + 1]))
        if numeric and any(has_digit[i : j + 1]):
            score += NUMERIC_BONUS
        if preferred is not None and units[i][0] < preferred[1] and units[j][1] > preferred[0]:
            score += PREFERRED_BONUS  # the chunk retrieval picked is the likeliest place
        score -= LENGTH_COST * (units[j][1] - units[i][0]) / 100
        if score > best_score + 1e-9:
            best, best_score = (i, j), score
    # An answer often sits in the clause next to the one that repeats the question's words:
    # grow the run by whole neighbouring units (the next one first) while it stays short,
    # past the chunk's edges too, as long as it stays in the chunk's paragraph.
    p_start, p_end = paragraph if paragraph is not None else (start, end)
    before = clause_spans(body, p_start, units[0][0], max_chars=240) if p_start < units[0][0] else []
    after = clause_spans(body, units[-1][1], p_end, max_chars=240) if units[-1][1] < p_end else []
    seq = before + units + after
    i, j = best[0] + len(before), best[1] + len(before)
    off = len(before)

    def sim(k: int) -> float:
        inside = unit_sims is not None and 0 <= k - off < len(unit_sims)
        return float(unit_sims[k - off]) if inside else -1.0

    step = 0
    while True:
        options = [(i, j + 1), (i - 1, j)]
        if GROW == "prev" or (GROW == "alt" and step % 2 == 1) or (GROW == "sim" and sim(i - 1) > sim(j + 1)):
            options.reverse()
        for ni, nj in options:
            if 0 <= ni and nj < len(seq) and seq[nj][1] - seq[ni][0] <= fill_chars:
                i, j = ni, nj
                break
        else:
            break
        step += 1
    s, e = seq[i][0], seq[j][1]
    return s, _cut(body, s, e, max_chars)


NUMERIC_BONUS = 0.1
PREFERRED_BONUS = 0.1
FILL_CHARS = MAX_QUOTE_CHARS  # a chosen run grows by neighbouring clauses up to this length
GROW = "alt"  # which side a quote grows first: next, prev, alt(ernate) or sim(ilar meaning)
LENGTH_COST = 0.01


def _cut(body: str, s: int, e: int, max_chars: int = MAX_QUOTE_CHARS) -> int:
    """End of a quote starting at s: e, or the last word end that keeps it within max_chars."""
    if e - s <= max_chars:
        return e
    words = [t for t in word_spans(body[s : s + max_chars]) if t.end < max_chars]
    return s + (words[-1].end if words else max_chars)


