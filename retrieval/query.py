"""The question analysed once: every later stage reads this instead of re-tokenising the text."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from index.arabic import mostly_arabic, normalize, term_spans, terms, word_spans
from index.numbers import number_spans


class QType(StrEnum):
    """What kind of answer the question asks for (drives answer-type agreement features)."""

    HOW_MANY = "how_many"
    WHEN = "when"
    WHERE = "where"
    WHO = "who"
    WHY = "why"
    OTHER = "other"


class Script(StrEnum):
    """The question's writing system: Arabic, Latin (English), or neither."""

    ARABIC = "ar"
    LATIN = "en"
    OTHER = "other"


def _norm_set(words: str) -> frozenset[str]:
    return frozenset(normalize(w) for w in words.split())


# Question-type cue words, normalised; multi-word cues are matched on the normalised text.
_HOW_MANY = _norm_set("كم عدد نسبة مقدار")
_WHEN = _norm_set("متى")
_WHERE = _norm_set("أين اين")
_WHY = _norm_set("لماذا")
_WHO_FIRST = _norm_set("من")  # "من" is also "from": a who-question only when it opens the question
_EN = {
    QType.HOW_MANY: re.compile(r"\bhow (?:many|much)\b|\bwhat (?:percentage|number|proportion)\b"),
    QType.WHEN: re.compile(r"\bwhen\b|\bwhat (?:year|date|day|month|time)\b|\bwhich (?:year|date|day|month)\b|\bin what year\b"),
    QType.WHERE: re.compile(r"\bwhere\b|\bwhich (?:city|country|place|town|region)\b|\bwhat (?:city|country|place)\b"),
    QType.WHO: re.compile(r"\bwho(?:m|se)?\b"),
    QType.WHY: re.compile(r"\bwhy\b|\bwhat (?:caused|was the reason)\b"),
}
_AR_PHRASES = {
    QType.WHEN: re.compile(r"(?:في )?(?:اي|أي) (?:عام|سنه|يوم|شهر|تاريخ|وقت)|ما تاريخ|(?:اي|أي) ساعه"),
    QType.WHERE: re.compile(r"(?:في )?(?:اي|أي) (?:مدينه|دوله|بلد|مكان|منطقه)|ما (?:مكان|موقع)"),
    QType.WHY: re.compile(r"ما (?:سبب|الذي دفع)|(?:لاي|لأي) سبب"),
    QType.HOW_MANY: re.compile(r"ما (?:عدد|نسبه|قيمه|مبلغ)"),
}
# Code pasted instead of a question (SQL, shell, markup): nothing a news archive can answer.
_CODE_RE = re.compile(
    r"(?i)\b(?:drop|truncate|alter)\s+(?:table|database)\b|\bunion\s+(?:all\s+)?select\b|\bdelete\s+from\b|\binsert\s+into\b"
    r"|;\s*--|'\s*(?:or|and)\s+\d+\s*=\s*\d+|<\s*/?\s*script\b|\$\(|\{\{"
)
_YEAR_RE = re.compile(r"\b(1[89]\d\d|20\d\d)\b")


@dataclass(frozen=True, slots=True)
class Query:
    """One question: its original text and everything the pipeline needs to know about it."""

    text: str
    norm: str
    words: tuple[str, ...]  # normalised words, function words included
    terms: tuple[str, ...]  # BM25 terms: stemmed content words, figure values, joined word pairs (index.arabic.question_terms)
    pairs: dict[str, tuple[str, ...]]  # joined-pair term → the terms of its two words; the terms that are two adjacent words joined (`شامي ويتنس` → شاميويتنس): count only where the corpus has them
    script: Script
    qtype: QType
    numbers: tuple[str, ...]
    years: tuple[int, ...]

    @property
    def content_free(self) -> bool:
        """No word that could match anything (punctuation, emoji, invisible characters), or code instead of a question."""
        return (not self.terms and not self.numbers) or bool(_CODE_RE.search(self.text))

    @property
    def arabic(self) -> bool:
        """Whether the question is written in Arabic script."""
        return self.script is Script.ARABIC

    @property
    def wants_figure(self) -> bool:
        """How-many questions are answered by a figure."""
        return self.qtype is QType.HOW_MANY

    @property
    def wants_number(self) -> bool:
        """How-many and when questions are answered by digits (a figure, a year, a date)."""
        return self.qtype in (QType.HOW_MANY, QType.WHEN)


def _script(text: str) -> Script:
    if mostly_arabic(text):
        return Script.ARABIC
    letters = [ch for ch in text if ch.isalpha()]
    return Script.LATIN if letters and sum(ch.isascii() for ch in letters) * 2 > len(letters) else Script.OTHER


def _qtype(norm: str, words: tuple[str, ...], script: Script) -> QType:
    if script is Script.LATIN:
        for kind, rx in _EN.items():
            if rx.search(norm):
                return kind
        return QType.OTHER
    bare = [w[1:] if len(w) > 2 and w[0] in "وف" and w[1:] in (_HOW_MANY | _WHEN | _WHERE | _WHY | _WHO_FIRST) else w for w in words]
    if any(w in _HOW_MANY for w in bare):
        return QType.HOW_MANY
    for kind, rx in _AR_PHRASES.items():
        if rx.search(norm):
            return kind
    if any(w in _WHEN for w in bare):
        return QType.WHEN
    if any(w in _WHERE for w in bare):
        return QType.WHERE
    if any(w == "لماذا" for w in bare):
        return QType.WHY
    if bare and bare[0] in _WHO_FIRST:
        return QType.WHO
    return QType.OTHER


def analyse(question: str) -> Query:
    """Analyse a question once: normalised words, stemmed terms, script, question type, figures."""
    tokens = word_spans(question)
    words = tuple(t.norm for t in tokens)
    norm = " ".join(words)
    spans = term_spans(question, question=True)
    all_terms = tuple(t.term for t in spans)
    single = frozenset(terms(question))
    pairs = {
        t.term: tuple(u.term for u in spans if u is not t and u.term in single and t.start <= u.start and u.end <= t.end)
        for t in spans
        if t.term not in single
    }
    script = _script(question)
    numbers = tuple(dict.fromkeys(n.term for n in number_spans(question)))
    years = tuple(int(y) for y in _YEAR_RE.findall(norm))
    return Query(question, norm, words, all_terms, pairs, script, _qtype(norm, words, script), numbers, years)


@dataclass(frozen=True, slots=True)
class TermWeights:
    """The question's terms weighted by idf in one index; 0 for words the corpus never uses."""

    weights: dict[str, float]
    known_share: float  # share of the question's word weight that the corpus vocabulary knows
    max_idf: float = 1.0  # the idf a word no chunk uses would have (scales idf-based features to 0..1)
    pairs: dict[str, tuple[str, ...]] = field(default_factory=dict)  # a joined pair found stands for its words

    @property
    def total(self) -> float:
        """Sum of weights: the score of a span holding every term."""
        return sum(self.weights.values())

    @property
    def word_total(self) -> float:
        """Sum of the weights of the question's words (a joined pair is an alternative spelling, not a word)."""
        return sum(w for t, w in self.weights.items() if t not in self.pairs)

    def matches(self, found: set[str] | frozenset[str]) -> bool:
        """Whether any of the question's words (known to the corpus) is among `found`."""
        return any(w > 0 and t in found for t, w in self.weights.items())

    def coverage(self, found: set[str] | frozenset[str]) -> float:
        """Share of the question's word weight a text holding `found` terms matches (a joined pair counts as its words)."""
        total = self.word_total
        if total <= 0:
            return 0.0
        hit = set(found)
        for pair, parts in self.pairs.items():
            if pair in found:
                hit.update(parts)
        return sum(w for t, w in self.weights.items() if t in hit and t not in self.pairs) / total


def weigh(query: Query, idf: Callable[[str], float | None], unknown_idf: float) -> TermWeights:
    """Weight each term by its idf; `unknown_idf` is what a word absent from the corpus would get."""
    weights: dict[str, float] = {}
    for term in query.terms:
        w = idf(term)
        if w is None and term in query.pairs:
            continue  # most adjacent word pairs are no joined name: only those the corpus uses count
        weights[term] = max(weights.get(term, 0.0), w if w is not None else 0.0)
    words = {t: w for t, w in weights.items() if t not in query.pairs}
    known = sum(w for w in words.values() if w > 0)
    missing = unknown_idf * sum(1 for w in words.values() if w <= 0)
    share = known / (known + missing) if known + missing > 0 else 0.0
    return TermWeights(weights, share, unknown_idf, {p: parts for p, parts in query.pairs.items() if p in weights})
