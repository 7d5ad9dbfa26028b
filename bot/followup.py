"""Follow-up questions in a chat: whether a message leans on the previous exchange, and each chat's context.

The context lives per chat in SQLite beside the bot's button keys (it survives a restart), expires
after NEWSQA_FOLLOWUP_MINUTES, and is never shared between chats. The chat CLI keeps it in memory.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bot.asking import Ask
from index.arabic import STOPWORDS, normalize, word_spans
from retrieval.context import REFERENCE_WORDS, bare_word, content_words
from retrieval.types import Context, SearchFilters

# Independent pronouns are also the copula of a new question (`من هو شامي ويتنس؟`): no reference on their own.
_COPULA = frozenset(normalize(w) for w in "هو هي هم هما هن".split())
_POINTING = REFERENCE_WORDS - _COPULA
_EN_OPENERS = ("and", "so", "also", "but", "then", "what about", "how about", "and what about")
# An Arabic pronoun written onto a verb or preposition (اعتقله, عددهم, قالها), read in the original spelling (not ة).
_ATTACHED_RE = re.compile(r"^[\u0621-\u064a]{2,}(?:ه|ها|هم|هما|هن)$")
_ARTICLE_PREFIXES = ("ال", "وال", "بال", "فال", "كال", "لل")
SHORT_WORDS = 6  # a follow-up is short: attached pronouns count only in messages this short
OWN_TOPIC = 3  # content words from which a message with a leading "and" is read as a new question


@dataclass(frozen=True, slots=True)
class Reading:
    """Whether a message reads as a follow-up, and the sign that says so (for tests and logs)."""

    followup: bool
    why: str


def read(message: str) -> Reading:
    """Decide from the message alone: length, pointing words, a leading و/ف/"and", no topic of its own."""
    tokens = word_spans(message)
    if not tokens:
        return Reading(False, "no words")
    words = [t.norm for t in tokens]
    raw = [message[t.start : t.end] for t in tokens]
    own = content_words(message)
    latin = sum(w.isascii() for w in words) * 2 > len(words)
    named = latin and any(r[:1].isupper() for r in raw[1:])  # an English name of its own: "Twitter", "Bangalore"
    pointing = [r for r, w in zip(raw, words) if bare_word(w) in _POINTING]
    if pointing:
        return Reading(True, f"points back: {pointing[0]}")
    if len(words) <= SHORT_WORDS and not latin:
        attached = [
            r for r, w in zip(raw, words)
            if _ATTACHED_RE.match(r) and not r.startswith(_ARTICLE_PREFIXES) and w not in STOPWORDS
        ]
        if attached and len(own) <= OWN_TOPIC:
            return Reading(True, f"points back: {attached[0]}")
    lead = " ".join(words[:3])
    opens = (words[0] in ("و", "ف") or bare_word(words[0]) != words[0]) if not latin else any(
        lead == o or lead.startswith(o + " ") for o in _EN_OPENERS
    )
    if opens and len(own) <= OWN_TOPIC and not (named and len(own) > 1):
        return Reading(True, f"opens with: {raw[0]}")
    if len(own) <= 1 and len(words) <= 4 and not named:
        return Reading(True, "short, no topic of its own")
    return Reading(False, "a question of its own")


@dataclass(frozen=True, slots=True)
class Turn:
    """What a chat remembers of its last exchange."""

    question: str
    terms: tuple[str, ...]
    articles: tuple[str, ...]
    at: float  # seconds since the epoch (a restart keeps the clock)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS followup_context (
    chat_id INTEGER PRIMARY KEY,
    question TEXT NOT NULL,
    terms TEXT NOT NULL,
    articles TEXT NOT NULL,
    at REAL NOT NULL
);
"""


class ContextStore:
    """Each chat's last exchange, in SQLite (a file, or memory for the chat CLI), for ttl seconds."""

    def __init__(self, path: Path | None, ttl_seconds: float, clock: Callable[[], float] = time.time) -> None:
        self.ttl = ttl_seconds
        self.clock = clock
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path) if path is not None else ":memory:", check_same_thread=False,
                                   isolation_level=None)
        if path is not None:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # a power cut may forget a follow-up context, nothing more
        self._db.executescript(_SCHEMA)

    def get(self, chat_id: int) -> Turn | None:
        """The chat's last exchange, or None when there is none or it has expired."""
        with self._lock:
            row = self._db.execute(
                "SELECT question, terms, articles, at FROM followup_context WHERE chat_id=?", (chat_id,)
            ).fetchone()
        if row is None:
            return None
        turn = Turn(row[0], tuple(json.loads(row[1])), tuple(json.loads(row[2])), float(row[3]))
        if self.clock() - turn.at > self.ttl:
            self.clear(chat_id)
            return None
        return turn

    def put(self, chat_id: int, turn: Turn) -> None:
        """Remember a chat's last exchange (replacing the one before)."""
        with self._lock:
            self._db.execute(
                "INSERT INTO followup_context (chat_id, question, terms, articles, at) VALUES (?,?,?,?,?) "
                "ON CONFLICT(chat_id) DO UPDATE SET question=excluded.question, terms=excluded.terms, "
                "articles=excluded.articles, at=excluded.at",
                (chat_id, turn.question, json.dumps(turn.terms, ensure_ascii=False), json.dumps(turn.articles), turn.at),
            )

    def clear(self, chat_id: int) -> bool:
        """Forget a chat's context (/new); whether there was one."""
        with self._lock:
            return self._db.execute("DELETE FROM followup_context WHERE chat_id=?", (chat_id,)).rowcount > 0

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()


class Conversations:
    """Turns each chat's messages into searches: a follow-up carries the previous exchange, a new topic starts fresh."""

    def __init__(self, store: ContextStore) -> None:
        self.store = store

    def ask(self, chat_id: int, question: str, filters: SearchFilters | None = None) -> Ask:
        """The search for a message: in the chat's context when it reads as a follow-up to a live exchange."""
        before = self.store.get(chat_id)
        if before is None or not read(question).followup:
            return Ask(question, filters)
        return Ask(question, filters, Context(before.terms, before.articles), before.question)

    def answered(self, chat_id: int, ask: Ask, articles: Sequence[str], found: bool) -> None:
        """Remember an answered exchange: its articles and the topic's words.

        A follow-up without an answer changes nothing (ask it again, differently); a new topic without one
        forgets the context (it must not lean on the question before it).
        """
        if ask.followup and ask.context is not None:
            if not found:
                return
            # The topic stays the first question's: a chain of follow-ups would otherwise bury each one's own
            # words under the words carried from all those before it.
            terms = ask.context.terms
        elif not found:
            self.store.clear(chat_id)  # a new topic starts fresh, even when nothing answers it
            return
        else:
            terms = content_words(ask.question)
        self.store.put(chat_id, Turn(ask.question, terms, tuple(dict.fromkeys(articles)), self.store.clock()))

    def new(self, chat_id: int) -> bool:
        """Start fresh (/new); whether there was a context to forget."""
        return self.store.clear(chat_id)
