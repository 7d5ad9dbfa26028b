"""The bot's synchronous, CPU-bound side: answer pages, articles and corpus facts (run in worker threads)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from telegram import InlineKeyboardMarkup

from bot.asking import Ask
from bot.callbacks import ARTICLE, DOWN, QUESTION, UP, VOTE, CallbackStore, encode
from bot.chatfilters import Outlet, outlets
from bot.feedback import AnswerRecord
from bot.render import answer_keyboard, article_messages, render_page
from bot.texts import text
from index.embedder import Embedder, encode_questions, model_fingerprint_of, tokenizer_fingerprint_of
from retrieval.search import LiveSearcher
from retrieval.types import Hit, Source


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

    @property
    def tokenizer_fingerprint(self) -> str | None:
        """The wrapped model's tokenizer fingerprint (a build compares it with the previous version's)."""
        return tokenizer_fingerprint_of(self.inner)

    def encode_passages(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Passage vectors, one caller at a time."""
        with self._lock:
            return self.inner.encode_passages(texts, batch_size)

    def encode_queries(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Query vectors, one caller at a time."""
        with self._lock:
            return self.inner.encode_queries(texts, batch_size)

    def encode_questions(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Users' questions as the wrapped model encodes them (int8 for Arabic where it can), one caller at a time."""
        with self._lock:
            return encode_questions(self.inner, texts, batch_size)


@dataclass(slots=True)
class PageResult:
    """One page of an answer, ready to send; html is None when there is nothing to show."""

    found: bool
    html: str | None = None
    markup: InlineKeyboardMarkup | None = None
    shown: int = 0
    version: str | None = None
    declined: str | None = None  # "content-free": nothing to search for, so no search ran
    articles: tuple[str, ...] = ()  # ids of the articles quoted (what a follow-up leans on)
    note: str = ""  # HTML lines opening the answer: read as a follow-up, the filter applied


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

    def page(
        self, question: str | Ask, lang: str, offset: int = 0, qvec: np.ndarray | None = None, second_qvec: np.ndarray | None = None
    ) -> PageResult:
        """The page of hits starting at `offset`: 📄, 👍/👎, previous/more (and narrowing buttons on the first).

        qvec: the vector of the text searched, when the caller has it: for a follow-up, the expanded question
        (`searched_text`), never the follow-up's own words. second_qvec: that text's vector by the second encoder.
        """
        ask = question if isinstance(question, Ask) else Ask(question)
        searcher = self.live.get()
        k = self.top_k
        answer = searcher.answer(ask.question, k=k + 1, offset=offset, filters=ask.filters, context=ask.context,
                                 qvec=qvec, second_qvec=second_qvec)
        note = ask.note_html(lang)
        if not answer.hits:
            return PageResult(found=answer.found, version=answer.version, declined=answer.declined, note=note)
        hits = answer.hits[:k]
        page = render_page(hits, lang, offset, ask.question if offset else None, note)
        shown = page.shown
        has_more = len(answer.hits) > shown
        narrow = _narrowing(ask, hits[:shown], lang) if offset == 0 else []
        record = AnswerRecord.of(ask.question, lang, answer.version, offset, hits[:shown])  # what a 👍/👎 is about
        keys = self.store.put_many(
            [(QUESTION, ask.to_json())]
            + [(ARTICLE, h.source.article_id) for h in hits[:shown]]
            + [(QUESTION, n.to_json()) for _, n in narrow]
            + [(VOTE, record.to_json())]
        )
        qkey, akeys, nkeys, vkey = keys[0], keys[1 : 1 + shown], keys[1 + shown : -1], keys[-1]
        article_data = [encode(ARTICLE, key) for key in akeys]
        markup = answer_keyboard(
            lang,
            article_data,
            more_data=encode(QUESTION, qkey, offset + shown) if has_more else None,
            previous_data=encode(QUESTION, qkey, max(0, offset - k)) if offset > 0 else None,
            offset=offset,
            vote_data=(encode(VOTE, vkey, UP), encode(VOTE, vkey, DOWN)),
            narrow=[(label, encode(QUESTION, key, 0)) for (label, _), key in zip(narrow, nkeys)],
        )
        articles = tuple(dict.fromkeys(h.source.article_id for h in hits[:shown]))
        return PageResult(True, page.html, markup, shown, answer.version, articles=articles, note=note)

    def ask(self, key: str) -> Ask | None:
        """The search behind a 'more results' or narrowing key."""
        value = self.store.get(QUESTION, key)
        return Ask.from_json(value) if value is not None else None

    def outlets(self) -> list[Outlet]:
        """The outlets of the version answering now, with article counts and date ranges (/sources)."""
        return outlets(self.live.get().version)

    def question(self, key: str) -> str | None:
        """The question text behind a 'more results' key."""
        ask = self.ask(key)
        return ask.question if ask is not None else None

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


MAX_NARROW = 3  # buttons per kind under an answer: the outlets or years most quoted first


def _narrowing(ask: Ask, hits: Sequence[Hit], lang: str) -> list[tuple[str, Ask]]:
    """Buttons that narrow an answer quoting several outlets (or years) to one of them, each with its search."""
    out: list[tuple[str, Ask]] = []
    f = ask.filters
    names = list(dict.fromkeys(h.source.outlet for h in hits))
    if len(names) > 1 and not (f is not None and f.sources):
        out += [(text("narrow_outlet", lang, outlet=_short(n)), ask.narrowed(source=n)) for n in names[:MAX_NARROW]]
    years = list(dict.fromkeys(h.source.date.year for h in hits))
    if len(years) > 1 and not (f is not None and (f.since or f.until)):
        out += [(text("narrow_year", lang, year=y), ask.narrowed(year=y)) for y in years[:MAX_NARROW]]
    return out


def _short(name: str, limit: int = 30) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"
