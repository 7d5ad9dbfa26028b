"""A question as the bot asks it: its text, filters from the message, the follow-up context; kept behind buttons."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime

from bot.chatfilters import describe
from bot.render import esc
from bot.texts import text
from retrieval.types import Context, SearchFilters


@dataclass(frozen=True, slots=True)
class Ask:
    """One search the bot runs: a page of it is what a button brings back, so it is stored whole."""

    question: str
    filters: SearchFilters | None = None
    context: Context | None = None
    about: str | None = None  # the earlier question a follow-up leans on (shown in its note)

    @property
    def followup(self) -> bool:
        """Whether it is searched in the context of the previous exchange."""
        return self.context is not None and self.context.active

    def note_html(self, lang: str) -> str:
        """The lines that open its answer: read as a follow-up (so a misread shows), the filter applied."""
        lines = []
        if self.followup and self.about:
            about = self.about if len(self.about) <= 120 else self.about[:119] + "…"
            lines.append(text("followup_note", lang, about=esc(about)))
        if self.filters is not None and (self.filters.sources or self.filters.since or self.filters.until):
            outlet, period = describe(self.filters)
            parts = ([text("filter_outlet", lang, outlet=esc(outlet))] if outlet else []) + (
                [text("filter_period", lang, period=esc(period))] if period else []
            )
            lines.append(text("filter_note", lang, parts=" · ".join(parts)))
        return "\n".join(lines)

    def narrowed(self, source: str | None = None, year: int | None = None) -> Ask:
        """The same search restricted to one outlet or one year (the buttons under an answer)."""
        f = self.filters or SearchFilters()
        if source is not None:
            f = replace(f, sources=(source,))
        if year is not None:
            f = replace(f, since=datetime(year, 1, 1), until=datetime(year, 12, 31))
        return replace(self, filters=f)

    def to_json(self) -> str:
        """The stored form: plain text for a bare question (as keys stored before follow-ups), else JSON."""
        if self.filters is None and self.context is None:
            return self.question
        data: dict[str, object] = {"q": self.question}
        if self.filters is not None:
            f = self.filters
            data["f"] = {
                "since": f.since.isoformat() if f.since else None,
                "until": f.until.isoformat() if f.until else None,
                "sources": list(f.sources),
            }
        if self.context is not None:
            data["c"] = {"terms": list(self.context.terms), "articles": list(self.context.articles)}
        if self.about is not None:
            data["about"] = self.about
        return json.dumps(data, ensure_ascii=False)

    @classmethod
    def from_json(cls, value: str) -> Ask:
        """Read what to_json stored; a plain question stays a plain question."""
        if not value.startswith("{"):
            return cls(value)
        try:
            data = json.loads(value)
        except json.JSONDecodeError:
            return cls(value)
        filters = context = None
        if isinstance(f := data.get("f"), dict):
            filters = SearchFilters(
                since=datetime.fromisoformat(f["since"]) if f.get("since") else None,
                until=datetime.fromisoformat(f["until"]) if f.get("until") else None,
                sources=tuple(f.get("sources") or ()),
            )
        if isinstance(c := data.get("c"), dict):
            context = Context(tuple(c.get("terms") or ()), tuple(c.get("articles") or ()))
        return cls(str(data["q"]), filters, context, data.get("about"))
