"""Filters said in a message (`من شبكة النبأ: …`, `في 2014: …`, `since 2014: …`) and the outlets /sources lists.

A message filters when the words before its first colon are all filter clauses; anything else before
a colon is part of the question. What cannot be applied (an unknown outlet, a date that is no date)
is a FilterError naming it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np

from index.arabic import normalize
from index.errors import NewsqaError
from index.store import IndexReader
from retrieval.types import SearchFilters

MAX_PREFIX_WORDS = 8  # a filter prefix is a few words; a longer text before a colon is a question
_PREFIX_RE = re.compile(r"^\s*([^:：\n]{1,120}?)\s*[:：]\s*(\S.*)$", re.DOTALL)
_DATE_RE = re.compile(r"^(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?$")
_TRAIL = "،,.؟?!"

# Clause keywords (normalised) → what the date after them means; "from" is an outlet unless a date follows.
_IN = {"في", "عام", "سنه", "خلال", "in", "during"}
_SINCE = {"منذ", "since", "بعد", "after"}
_UNTIL = {"قبل", "حتي", "before", "until", "till", "الي", "to"}
_FROM = {"من", "from"}
_AND = {"و", "and"}
_YEAR_WORDS = {"عام", "سنه", "year"}


class FilterError(NewsqaError):
    """A filter in the message that cannot be applied; the message names the part at fault."""

    def __init__(self, kind: str, value: str) -> None:
        super().__init__(f"{kind}: {value}")
        self.kind = kind  # "outlet" (no such outlet) or "date" (not a date)
        self.value = value


@dataclass(frozen=True, slots=True)
class Outlet:
    """One outlet of the index: how many articles, from when to when."""

    name: str
    articles: int
    first: datetime
    last: datetime


def outlets(version: IndexReader) -> list[Outlet]:
    """Every outlet of an index version, most articles first (a backend that can summarise them itself does)."""
    summary = getattr(version, "outlet_summary", None)
    if summary is not None:
        out = [Outlet(name, n, first, last) for name, n, first, last in summary()]
    else:
        dates = version.article_dates
        by: dict[str, list[int]] = {}
        for row, name in enumerate(version.article_sources):
            by.setdefault(name, []).append(row)
        out = [Outlet(name, len(rows), _dt(dates[rows].min()), _dt(dates[rows].max())) for name, rows in by.items()]
    return sorted(out, key=lambda o: (-o.articles, o.name))


def _dt(value: np.datetime64) -> datetime:
    return datetime.fromisoformat(str(value.astype("datetime64[m]")))


@dataclass(frozen=True, slots=True)
class Parsed:
    """A message split into the question and the filters said before it (None: no filter said)."""

    question: str
    filters: SearchFilters | None = None


def parse(message: str, known_outlets: Sequence[str] | Callable[[], Sequence[str]]) -> Parsed:
    """The question and its filters; a message without a filter prefix is all question.

    known_outlets may be a function: it is called only for a message that names an outlet.
    """
    m = _PREFIX_RE.match(message)
    if m is None:
        return Parsed(message)
    prefix, question = m.group(1), m.group(2).strip()
    words = prefix.split()
    if len(words) > MAX_PREFIX_WORDS or _keyword(words[0]) is None:
        return Parsed(message)
    clauses = _clauses(words)
    if clauses is None:
        return Parsed(message)
    filters = SearchFilters()
    for key, value in clauses:
        filters = _apply(filters, key, value, known_outlets)
    return Parsed(question, filters)


def _keyword(word: str) -> str | None:
    """The clause keyword a word is (with a leading و as in `وفي 2014`), or None."""
    norm = normalize(word)
    for cand in (norm, norm[1:] if len(norm) > 1 and norm[0] == "و" else None):
        if cand and cand in _IN | _SINCE | _UNTIL | _FROM:
            return cand
    return None


def _clauses(words: list[str]) -> list[tuple[str, str]] | None:
    """(keyword, value) pairs covering every word, or None when the prefix is not made of clauses."""
    out: list[tuple[str, list[str]]] = []
    for word in words:
        key = _keyword(word)
        if key is not None and (not out or out[-1][1]):
            out.append((key, []))  # a keyword after a clause's value starts the next clause
        elif not out:
            return None
        elif normalize(word) not in _AND:
            out[-1][1].append(word.strip(_TRAIL))
    if not out or any(not value for _, value in out):
        return None
    pairs = [(key, " ".join(value)) for key, value in out]
    for key, value in pairs:
        if key not in _FROM and not _is_date(value):
            return None  # "in Bangalore: …" is a question, not a filter
    return pairs


def _is_date(value: str) -> bool:
    words = value.split()
    if words and normalize(words[0]) in _YEAR_WORDS:
        words = words[1:]
    return len(words) == 1 and bool(re.match(r"^\d{4}(?:-\d{1,2}){0,2}$", words[0]))


def _apply(filters: SearchFilters, key: str, value: str, known: Sequence[str] | Callable[[], Sequence[str]]) -> SearchFilters:
    if key in _FROM and not _is_date(value):
        return replace(filters, sources=(*filters.sources, _outlet(value, known() if callable(known) else known)))
    first, last = _period(value)
    if key in _IN:
        return replace(filters, since=first, until=last)
    if key in _SINCE:
        after = key in ("بعد", "after")
        return replace(filters, since=_next_day(last) if after else first)
    if key in _FROM:
        return replace(filters, since=first)
    before = key in ("قبل", "before")
    return replace(filters, until=_previous_day(first) if before else last)


def _outlet(value: str, known: Sequence[str]) -> str:
    """The known outlet a name means (normalised, either containing the other)."""
    want = normalize(value)
    for name in known:
        have = normalize(name)
        if want and (want == have or want in have or have in want):
            return name
    raise FilterError("outlet", value)


def _period(value: str) -> tuple[datetime, datetime]:
    """First and last day of a year, month or day."""
    words = value.split()
    token = words[-1]
    m = _DATE_RE.match(token)
    if m is None:
        raise FilterError("date", value)
    year, month, day = int(m.group(1)), m.group(2), m.group(3)
    try:
        if month is None:
            return datetime(year, 1, 1), datetime(year, 12, 31)
        if day is None:
            first = datetime(year, int(month), 1)
            nxt = datetime(year + (first.month == 12), first.month % 12 + 1, 1)
            return first, _previous_day(nxt)
        d = datetime(year, int(month), int(day))
        return d, d
    except ValueError:
        raise FilterError("date", value) from None


def _next_day(d: datetime) -> datetime:
    from datetime import timedelta

    return d + timedelta(days=1)


def _previous_day(d: datetime) -> datetime:
    from datetime import timedelta

    return d - timedelta(days=1)


def describe(filters: SearchFilters) -> tuple[str | None, str | None]:
    """The outlet(s) and the period a filter keeps, as people read them (None where not filtered)."""
    outlets_ = "، ".join(filters.sources) if filters.sources else None
    since, until = filters.since, filters.until
    if since is None and until is None:
        return outlets_, None
    if since is not None and until is not None and (since.month, since.day, until.month, until.day) == (1, 1, 12, 31) \
            and since.year == until.year:
        return outlets_, str(since.year)
    a = since.strftime("%Y-%m-%d") if since is not None else "…"
    b = until.strftime("%Y-%m-%d") if until is not None else "…"
    return outlets_, f"{a} – {b}"


def combine(base: SearchFilters | None, said: SearchFilters | None) -> SearchFilters | None:
    """Filters said in a message over those given on the command line: each one said replaces its kind."""
    if said is None:
        return base
    if base is None:
        return said
    return replace(
        base,
        since=said.since if said.since is not None or said.until is not None else base.since,
        until=said.until if said.since is not None or said.until is not None else base.until,
        sources=said.sources or base.sources,
    )
