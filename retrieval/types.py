"""What retrieval hands to front ends: hits with their quotes and sources, and whole answers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from index.articles import format_date


@dataclass(frozen=True, slots=True)
class SearchFilters:
    """Restrict a search to a period and/or outlets (inclusive dates)."""

    since: datetime | None = None
    until: datetime | None = None
    sources: tuple[str, ...] = ()
    exclude_articles: tuple[str, ...] = ()  # article ids left out (evaluation: "the gold passage removed")

    @property
    def active(self) -> bool:
        """Whether any filter is set."""
        return self.since is not None or self.until is not None or bool(self.sources) or bool(self.exclude_articles)

    @property
    def last_minute(self) -> datetime | None:
        """The last minute `until` admits: a bare date (00:00) includes that whole day."""
        until = self.until
        if until is not None and until.hour == 0 and until.minute == 0:
            return until.replace(hour=23, minute=59)
        return until

    def admits_source(self, outlet: str) -> bool:
        """Whether an outlet passes the outlet filter: any name given is a part of it, in any case."""
        name = outlet.casefold()
        return not self.sources or any(s.casefold() in name for s in self.sources)


@dataclass(frozen=True, slots=True)
class Context:
    """What a follow-up question leans on: the previous question's content words and its answer's articles."""

    terms: tuple[str, ...] = ()  # content words of the earlier question(s), as written (searched with the follow-up)
    articles: tuple[str, ...] = ()  # article ids the previous answer quoted (preferred when they hold an answer)

    @property
    def active(self) -> bool:
        """Whether there is anything to carry."""
        return bool(self.terms) or bool(self.articles)


@dataclass(frozen=True, slots=True)
class Quote:
    """Verbatim excerpt of an article: body[start:end], with matched-word spans inside it."""

    text: str
    start: int
    end: int
    highlights: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True, slots=True)
class Source:
    """Where a quote comes from, as a source line shows it."""

    article_id: str
    title: str
    outlet: str
    date: datetime
    url: str | None = None

    @property
    def date_text(self) -> str:
        """The date as people read it in a source line."""
        return format_date(self.date)


@dataclass(frozen=True, slots=True)
class Hit:
    """One ranked chunk with the quote that answers best, and its ranks on each side."""

    chunk_row: int
    article_row: int
    source: Source
    section: str | None
    quote: Quote
    score: float
    dense_score: float | None = None
    lexical_rank: int | None = None
    dense_rank: int | None = None


@dataclass(slots=True)
class Answer:
    """The reply to one question: quotes to show, or an honest 'nothing found'."""

    question: str
    hits: list[Hit] = field(default_factory=list)
    found: bool = False
    version: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    probability: float | None = None  # the decision's probability that the best passage answers
    declined: str | None = None  # why nothing is quoted: "content-free" (no search ran) or "no-answer"

    def to_json(self) -> dict:
        """The stable `--json` shape scripts depend on."""
        return {
            "question": self.question,
            "hits": [
                {
                    "quote": h.quote.text,
                    "title": h.source.title,
                    "source": h.source.outlet,
                    "date": h.source.date_text,
                    "article_id": h.source.article_id,
                    "score": round(float(h.score), 6),
                }
                for h in self.hits
            ],
        }
