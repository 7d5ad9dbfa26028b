"""What a span of text offers an answer: matched terms, figures, dates; analysed at build time and stored per chunk.

The analysis depends on the text alone, so the build stores each chunk's (meta.sqlite, `chunks.evidence`) and a
question reads it instead of re-analysing ~20 chunks (~0.3 ms each, most of a question's CPU on a cold cache).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from index.arabic import normalize, term_spans, word_spans
from index.numbers import number_spans

_DIGIT_RE = re.compile(r"\d")
_YEAR_RE = re.compile(r"(?<!\d)(1[89]\d\d|20\d\d)(?!\d)")
_NUMBER_WORDS = frozenset(
    normalize(w)
    for w in ["اثنان", "اثنين", "ثلاث", "ثلاثة", "اربع", "أربع", "اربعة", "أربعة", "خمس", "خمسة", "ست", "ستة", "سبع", "سبعة", "ثمان", "ثماني", "ثمانية", "تسع", "تسعة", "عشر", "عشرة", "عشرات", "عشرين", "ثلاثين", "اربعين", "خمسين", "مئة", "مائة", "مئات", "الف", "ألف", "الاف", "آلاف", "مليون", "ملايين", "مليار", "مليارات", "نصف", "ربع", "ثلث", "ضعف", "اضعاف"]
)
_DATE_WORDS = frozenset(
    normalize(w)
    for w in ["يناير", "فبراير", "مارس", "ابريل", "أبريل", "مايو", "يونيو", "يوليو", "اغسطس", "أغسطس", "سبتمبر", "اكتوبر", "أكتوبر", "نوفمبر", "ديسمبر", "كانون", "شباط", "اذار", "آذار", "نيسان", "ايار", "أيار", "حزيران", "تموز", "اب", "آب", "ايلول", "أيلول", "تشرين", "السبت", "الاحد", "الأحد", "الاثنين", "الثلاثاء", "الاربعاء", "الأربعاء", "الخميس", "الجمعة", "امس", "أمس", "اليوم", "غدا", "january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december"]
)


@dataclass(frozen=True, slots=True)
class SpanEvidence:
    """The stemmed terms of a span and whether it states a figure or a date."""

    terms: frozenset[str]
    figure: bool
    digit: bool
    date: bool
    near_figure: frozenset[str] = frozenset()  # terms within NEAR_WORDS words of a figure: "جمع 17700 متتبع"


NEAR_WORDS = 3  # a figure answers a how-many question when it stands this close to the question's words


def analyse_span(text: str) -> SpanEvidence:
    """Analyse one span of original text for matching and answer-type agreement."""
    words = [t.norm for t in word_spans(text)]
    bare = {w[1:] if len(w) > 3 and w[0] in "وب" else w for w in words}
    bare |= {w[2:] for w in words if w.startswith("ال") and len(w) > 4}
    norm = normalize(text)
    digit = bool(_DIGIT_RE.search(norm))
    figures = number_spans(text)
    spans = term_spans(text, keep_stopwords=True, figures=figures)
    near: set[str] = set()
    for n in figures:
        around = [t for t in spans if t.end <= n.start or t.start >= n.end]
        before = [t.term for t in around if t.end <= n.start][-NEAR_WORDS:]
        after = [t.term for t in around if t.start >= n.end][:NEAR_WORDS]
        near.update(before + after)
    return SpanEvidence(
        terms=frozenset(t.term for t in spans),
        near_figure=frozenset(near),
        figure=digit or bool(bare & _NUMBER_WORDS),
        digit=digit,
        date=bool(_YEAR_RE.search(norm)) or bool(bare & _DATE_WORDS),
    )


# Bumped whenever analyse_span's output or the packed form changes: a version stored under another number is
# re-analysed when read, and the next `index update` stores it anew (tests/test_stored_evidence.py).
EVIDENCE_VERSION = 1
_SEP = "\x1f"  # unit separator: never inside a term (terms are words of normalised text)


def pack(evidence: SpanEvidence) -> str:
    """SpanEvidence as one short string for the metadata store: flags, then the terms, then the near-figure terms."""
    flags = f"{int(evidence.figure)}{int(evidence.digit)}{int(evidence.date)}"
    return _SEP.join([flags, " ".join(sorted(evidence.terms)), " ".join(sorted(evidence.near_figure))])


def unpack(packed: str) -> SpanEvidence:
    """The SpanEvidence that pack() stored."""
    flags, terms, near = packed.split(_SEP)
    return SpanEvidence(
        terms=frozenset(terms.split()),
        figure=flags[0] == "1",
        digit=flags[1] == "1",
        date=flags[2] == "1",
        near_figure=frozenset(near.split()),
    )
