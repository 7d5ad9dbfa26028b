"""Inline mode: `@bot question` typed in any chat offers verbatim quotes, each with its source line, to drop in.

The same rules as in chat: everything sent is HTML-escaped and within 4096 characters, questions longer than
the chat limit are refused, and searches are limited per user per minute (a budget of their own, as typing
sends several queries; an answer served from the short per-query cache runs no search and does not count).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from telegram import (
    InlineQueryResultArticle,
    InlineQueryResultsButton,
    InputTextMessageContent,
    LinkPreviewOptions,
    Update,
)
from telegram.constants import ParseMode
from telegram.ext import ContextTypes

from bot.flood import UserLimiter
from bot.render import MESSAGE_LIMIT, esc, source_html, tg_len
from bot.texts import language, text
from index.arabic import normalize
from retrieval.search import LiveSearcher
from retrieval.types import Hit, Quote

MAX_CACHED_QUERIES = 1000
TITLE_CHARS = 120  # what a client shows of a result's title and description; the quote itself is whole
DESCRIPTION_CHARS = 200
HELP_START = "help"  # the result list's button opens a private chat with /start help


@dataclass(frozen=True, slots=True)
class InlineQuote:
    """One inline result: a short title and description for the list, and the message it sends."""

    id: str
    title: str
    description: str
    html: str


@dataclass(frozen=True, slots=True)
class InlineReply:
    """The quotes for one inline query; declined says why there are none ("content-free", "no-answer")."""

    quotes: tuple[InlineQuote, ...]
    declined: str | None = None


def one_line(s: str, limit: int) -> str:
    """Whitespace collapsed and cut to `limit` characters with …."""
    s = " ".join(s.split())
    return s if len(s) <= limit else s[: limit - 1].rstrip() + "…"


def quote_message(hit: Hit) -> str:
    """«verbatim quote» and its source line, escaped, within one message."""
    body = f"«{esc(hit.quote.text)}»\n{source_html(hit.source)}"
    if tg_len(body) <= MESSAGE_LIMIT:
        return body
    room = MESSAGE_LIMIT - tg_len(source_html(hit.source)) - 16
    cut = hit.quote.text
    while tg_len(esc(cut)) > room:  # escaping can only lengthen: shrink until the escaped form fits
        cut = cut[: max(1, len(cut) * room // max(1, tg_len(esc(cut))) - 1)]
    return quote_message(replace(hit, quote=Quote(cut + "…", hit.quote.start, hit.quote.start + len(cut))))


def inline_quote(hit: Hit, version: str | None) -> InlineQuote:
    """The inline result of one hit (its id names the version, chunk and quote start: unique, ≤ 64 bytes)."""
    source = hit.source
    return InlineQuote(
        id=f"{version or 'v'}-{hit.chunk_row}-{hit.quote.start}",
        title=one_line(hit.quote.text, TITLE_CHARS),
        description=one_line(f"{source.title} — {source.outlet} — {source.date_text}", DESCRIPTION_CHARS),
        html=quote_message(hit),
    )


class InlineSearch:
    """Inline replies over the live index, kept briefly per normalised query (search runs in worker threads)."""

    def __init__(self, live: LiveSearcher, limit: int, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.live = live
        self.limit = limit
        self.ttl = ttl
        self.clock = clock
        self._cache: OrderedDict[str, tuple[float, InlineReply]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(question: str) -> str:
        """The cache key: the question's normalised text."""
        return normalize(" ".join(question.split()))

    def cached(self, question: str) -> InlineReply | None:
        """A reply computed less than `ttl` seconds ago for the same normalised question."""
        with self._lock:
            entry = self._cache.get(self.key(question))
            if entry is None or entry[0] <= self.clock():
                return None
            return entry[1]

    def search(self, question: str) -> InlineReply:
        """Search now (up to `limit` quotes) and keep the reply for `ttl` seconds."""
        answer = self.live.answer(question, k=self.limit)
        reply = InlineReply(tuple(inline_quote(h, answer.version) for h in answer.hits[: self.limit]),
                            None if answer.hits else (answer.declined or "no-answer"))
        if self.ttl > 0:
            with self._lock:
                self._cache[self.key(question)] = (self.clock() + self.ttl, reply)
                self._cache.move_to_end(self.key(question))
                while len(self._cache) > MAX_CACHED_QUERIES:
                    self._cache.popitem(last=False)
        return reply


class InlineMode:
    """The inline query handler: limits, cache, search off the event loop, answerInlineQuery."""

    def __init__(self, search: InlineSearch, limiter: UserLimiter, run_sync: Callable[..., Awaitable[Any]],
                 cache_seconds: int, max_chars: int) -> None:
        self.search = search
        self.limiter = limiter
        self.run_sync = run_sync
        self.cache_seconds = cache_seconds
        self.max_chars = max_chars
        self.preview = LinkPreviewOptions(is_disabled=True)

    async def on_inline_query(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """`@bot question` in any chat: up to N quotes with their sources, or a button saying why there are none."""
        query = update.inline_query
        lang = language(query.from_user.language_code if query.from_user else None)
        question = " ".join(query.query.split())
        if not question:
            await self._none(query, text("inline_help", lang))
            return
        if len(question) > self.max_chars:
            await self._none(query, text("inline_too_long", lang, limit=self.max_chars))
            return
        reply = self.search.cached(question)
        if reply is None:
            allowed, _, wait = self.limiter.check(query.from_user.id)
            if not allowed:
                await self._none(query, text("inline_too_fast", lang, seconds=wait), personal=True)
                return
            reply = await self.run_sync(self.search.search, question)
        if not reply.quotes:
            key = "inline_no_question" if reply.declined == "content-free" else "inline_no_answer"
            await self._none(query, text(key, lang))
            return
        results = [
            InlineQueryResultArticle(
                id=q.id,
                title=q.title,
                description=q.description,
                input_message_content=InputTextMessageContent(q.html, parse_mode=ParseMode.HTML,
                                                              link_preview_options=self.preview),
            )
            for q in reply.quotes
        ]
        await query.answer(results, cache_time=self.cache_seconds)

    async def _none(self, query: Any, label: str, personal: bool = False) -> None:
        """No results: a button (opening a private chat with /start help) says why."""
        await query.answer([], cache_time=0 if personal else self.cache_seconds, is_personal=personal or None,
                           button=InlineQueryResultsButton(label, start_parameter=HELP_START))
