"""The bot's synchronous, CPU-bound side: answer pages, articles and corpus facts (run in worker threads)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from telegram import InlineKeyboardMarkup

from bot.callbacks import ARTICLE, QUESTION, CallbackStore, encode
from bot.render import answer_keyboard, article_messages, render_page
from index.embedder import Embedder, model_fingerprint_of
from retrieval.search import LiveSearcher
from retrieval.types import Source


class SerialEmbedder:
    """One embedder shared by worker threads; encodes one call at a time (fast tokenizers are not thread-safe)."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        """The wrapped model's name."""
        return self.inner.name

    @property
    def dim(self) -> int:
        """The wrapped model's dimension."""
        return self.inner.dim

    @property
    def fingerprint(self) -> str | None:
        """The wrapped model's weights fingerprint (serving checks it against the index's)."""
        return model_fingerprint_of(self.inner)

    def encode_passages(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Passage vectors, one caller at a time."""
        with self._lock:
            return self.inner.encode_passages(texts, batch_size)

    def encode_queries(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Query vectors, one caller at a time."""
        with self._lock:
            return self.inner.encode_queries(texts, batch_size)


@dataclass(slots=True)
class PageResult:
    """One page of an answer, ready to send; html is None when there is nothing to show."""

    found: bool
    html: str | None = None
    markup: InlineKeyboardMarkup | None = None
    shown: int = 0
    version: str | None = None
    declined: str | None = None  # "content-free": nothing to search for, so no search ran


@dataclass(slots=True)
class ArticleResult:
    """A whole article as messages, or None when it left the index."""

    messages: list[str] | None


@dataclass(frozen=True, slots=True)
class CorpusInfo:
    """What /start and /stats tell about the index."""

    version: str
    articles: int
    chunks: int
    outlets: int
    date_min: str
    date_max: str


class BotSearch:
    """Questions to rendered pages over the live index, with restart-safe button keys."""

    def __init__(self, live: LiveSearcher, store: CallbackStore, top_k: int = 5) -> None:
        self.live = live
        self.store = store
        self.top_k = top_k

    def page(self, question: str, lang: str, offset: int = 0, qvec: np.ndarray | None = None) -> PageResult:
        """The page of hits starting at `offset`, with 📄/more/previous buttons (qvec: the question's vector, if known)."""
        searcher = self.live.get()
        k = self.top_k
        answer = searcher.answer(question, k=k + 1, offset=offset, qvec=qvec)
        if not answer.hits:
            return PageResult(found=answer.found, version=answer.version, declined=answer.declined)
        hits = answer.hits[:k]
        page = render_page(hits, lang, offset, question if offset else None)
        shown = page.shown
        has_more = len(answer.hits) > shown
        qkey, *akeys = self.store.put_many([(QUESTION, question)] + [(ARTICLE, h.source.article_id) for h in hits[:shown]])
        article_data = [encode(ARTICLE, key) for key in akeys]
        markup = answer_keyboard(
            lang,
            article_data,
            more_data=encode(QUESTION, qkey, offset + shown) if has_more else None,
            previous_data=encode(QUESTION, qkey, max(0, offset - k)) if offset > 0 else None,
            offset=offset,
        )
        return PageResult(True, page.html, markup, shown, answer.version)

    def question(self, key: str) -> str | None:
        """The question behind a 'more results' key."""
        return self.store.get(QUESTION, key)

    def article(self, key: str) -> ArticleResult | None:
        """The article behind a 📄 key as messages; None for an unknown key."""
        article_id = self.store.get(ARTICLE, key)
        if article_id is None:
            return None
        version = self.live.get().version
        record = version.article_by_id(article_id)
        if record is None:
            return ArticleResult(None)
        paragraphs = [(p.heading, record.body[p.start : p.end]) for p in version.paragraphs(record.row)]
        source = Source(record.id, record.title, record.source, record.date, record.url)
        return ArticleResult(article_messages(record.title, source, paragraphs))

    def corpus(self) -> CorpusInfo:
        """Counts and date range of the version answering now."""
        version = self.live.get().version
        m = version.manifest
        dates = m.get("dates") or {}
        return CorpusInfo(
            version=version.name,
            articles=int(m["counts"]["articles"]),
            chunks=int(m["counts"]["chunks"]),
            outlets=len(m.get("sources") or []),
            date_min=str(dates.get("min") or "?")[:10],
            date_max=str(dates.get("max") or "?")[:10],
        )
