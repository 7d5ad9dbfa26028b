"""👍/👎 on answers: one vote per user per answer (changeable), kept beside the bot state, so real users'
questions become an evaluation set (`newsqa feedback export FILE` → `newsqa eval DATASET --questions FILE`).

An answer page's buttons carry the key of an AnswerRecord (question, index version, and per quote: article,
chunk row, offsets and text) kept in the CallbackStore; a vote copies the record into the votes table, so
votes outlive button keys. A 👍 confirms the page's first quote: its article is the one evaluation expects.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.callbacks import DOWN, UP, VOTE, CallbackStore
from index.arabic import word_spans
from index.errors import NewsqaError
from retrieval.types import Hit

WEEK = 7 * 86400.0
NEW, CHANGED, SAME = "new", "changed", "same"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS votes (
    answer_key TEXT NOT NULL,
    user_id INTEGER NOT NULL,
    vote INTEGER NOT NULL CHECK (vote IN (-1, 1)),
    question TEXT NOT NULL,
    question_norm TEXT NOT NULL,
    lang TEXT,
    article_id TEXT,
    chunk_row INTEGER,
    quote TEXT,
    index_version TEXT,
    answer TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    PRIMARY KEY (answer_key, user_id)
);
CREATE INDEX IF NOT EXISTS votes_updated ON votes (updated);
"""


class FeedbackError(NewsqaError):
    """The feedback store or an answer record cannot be read as written."""


def question_key(question: str) -> str:
    """The question's normalised words: spelling variants, case and punctuation do not split its votes."""
    return " ".join(t.norm for t in word_spans(question)) or " ".join(question.split())


@dataclass(frozen=True, slots=True)
class QuotedHit:
    """One quote of an answer as it was shown: where it comes from, in which version, and its text."""

    article_id: str
    title: str
    chunk_row: int
    start: int
    end: int
    quote: str


@dataclass(frozen=True, slots=True)
class AnswerRecord:
    """What a vote is about: the question and the quotes of one answer page, in one index version."""

    question: str
    lang: str
    version: str
    offset: int
    hits: tuple[QuotedHit, ...]

    @staticmethod
    def of(question: str, lang: str, version: str | None, offset: int, hits: Sequence[Hit]) -> AnswerRecord:
        """The record of an answer page showing `hits`."""
        return AnswerRecord(question, lang, version or "?", offset, tuple(
            QuotedHit(h.source.article_id, h.source.title, h.chunk_row, h.quote.start, h.quote.end, h.quote.text)
            for h in hits
        ))

    def to_json(self) -> str:
        """Compact, deterministic JSON (equal answers get equal button keys)."""
        return json.dumps(
            {"q": self.question, "l": self.lang, "v": self.version, "o": self.offset,
             "h": [[h.article_id, h.title, h.chunk_row, h.start, h.end, h.quote] for h in self.hits]},
            ensure_ascii=False, separators=(",", ":"),
        )

    @staticmethod
    def from_json(text: str) -> AnswerRecord:
        """Parse what to_json wrote."""
        try:
            d = json.loads(text)
            return AnswerRecord(str(d["q"]), str(d["l"]), str(d["v"]), int(d["o"]),
                                tuple(QuotedHit(str(a), str(t), int(c), int(s), int(e), str(q))
                                      for a, t, c, s, e, q in d["h"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise FeedbackError(f"unreadable answer record ({exc})") from None


@dataclass(frozen=True, slots=True)
class Tally:
    """Vote counts over a period."""

    votes: int
    up: int
    down: int
    answers: int
    users: int


@dataclass(frozen=True, slots=True)
class QuestionScore:
    """One question's votes over a period (its variants counted together)."""

    question: str
    up: int
    down: int
    version: str | None


@dataclass(frozen=True, slots=True)
class Confirmed:
    """A question whose answer users confirmed: the article of its first quote, and that quote."""

    question: str
    article_id: str
    quote: str
    lang: str | None
    up: int
    down: int
    version: str | None

    def eval_row(self) -> dict[str, Any]:
        """A `newsqa eval` question: the quote as the answer, the article as the gold passage."""
        digest = hashlib.sha1(f"{question_key(self.question)}\n{self.article_id}".encode()).hexdigest()[:12]
        return {
            "id": f"fb-{digest}", "question": self.question, "answers": [self.quote], "passage_id": self.article_id,
            "lang": self.lang, "votes_up": self.up, "votes_down": self.down, "index_version": self.version,
        }


class FeedbackStore:
    """The votes table in the bot's state file, shared by the handler threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10.0)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise FeedbackError(f"{path}: not a bot state database ({exc})") from None

    def vote(self, key: str, user_id: int, value: int, record: AnswerRecord, now: float | None = None) -> str:
        """Record `user_id`'s vote on an answer: NEW, CHANGED (the other way before) or SAME (nothing written)."""
        if value not in (UP, DOWN):
            raise ValueError(f"a vote is {UP} or {DOWN}, not {value!r}")
        now = time.time() if now is None else now
        first = record.hits[0] if record.hits else None
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            row = self._db.execute("SELECT vote FROM votes WHERE answer_key=? AND user_id=?", (key, user_id)).fetchone()
            if row is not None and row[0] == value:
                return SAME
            if row is not None:
                self._db.execute("UPDATE votes SET vote=?, updated=? WHERE answer_key=? AND user_id=?",
                                 (value, now, key, user_id))
                return CHANGED
            self._db.execute(
                "INSERT INTO votes (answer_key, user_id, vote, question, question_norm, lang, article_id, chunk_row, "
                "quote, index_version, answer, created, updated) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (key, user_id, value, record.question, question_key(record.question), record.lang,
                 first.article_id if first else None, first.chunk_row if first else None,
                 first.quote if first else None, record.version, record.to_json(), now, now),
            )
            return NEW

    def user_vote(self, key: str, user_id: int) -> int | None:
        """The user's current vote on an answer, if any."""
        with self._lock:
            row = self._db.execute("SELECT vote FROM votes WHERE answer_key=? AND user_id=?", (key, user_id)).fetchone()
        return row[0] if row else None

    def tally(self, since: float = 0.0) -> Tally:
        """Counts of the votes last cast or changed at or after `since`."""
        with self._lock:
            row = self._db.execute(
                "SELECT count(*), coalesce(sum(vote = 1), 0), coalesce(sum(vote = -1), 0), count(DISTINCT answer_key), "
                "count(DISTINCT user_id) FROM votes WHERE updated >= ?", (since,)
            ).fetchone()
        return Tally(*(int(x) for x in row))

    def worst(self, since: float = 0.0, n: int = 5) -> list[QuestionScore]:
        """Questions with the most 👎 over 👍 since `since` (only those with a 👎), worst first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT question_norm, sum(vote = 1) AS up, sum(vote = -1) AS down, max(updated), max(index_version) "
                "FROM votes WHERE updated >= ? GROUP BY question_norm HAVING down > 0 "
                "ORDER BY down - up DESC, down DESC, max(updated) DESC LIMIT ?", (since, n)
            ).fetchall()
            out = []
            for norm, up, down, _, version in rows:
                (question,) = self._db.execute(
                    "SELECT question FROM votes WHERE question_norm=? ORDER BY updated DESC LIMIT 1", (norm,)
                ).fetchone()
                out.append(QuestionScore(question, int(up), int(down), version))
        return out

    def confirmed(self) -> list[Confirmed]:
        """Per question (normalised) and first-quoted article: those with more 👍 than 👎, oldest first."""
        with self._lock:
            groups = self._db.execute(
                "SELECT question_norm, article_id, sum(vote = 1), sum(vote = -1), min(created) FROM votes "
                "WHERE article_id IS NOT NULL GROUP BY question_norm, article_id HAVING sum(vote) > 0 "
                "ORDER BY min(created), question_norm, article_id"
            ).fetchall()
            out = []
            for norm, article_id, up, down, _ in groups:
                question, quote, lang, version = self._db.execute(
                    "SELECT question, quote, lang, index_version FROM votes WHERE question_norm=? AND article_id=? "
                    "AND vote = 1 ORDER BY updated DESC LIMIT 1", (norm, article_id)
                ).fetchone()
                out.append(Confirmed(question, article_id, quote, lang, int(up), int(down), version))
        return out

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()


def export_eval_questions(store: FeedbackStore, path: Path) -> int:
    """Write the confirmed questions as a `newsqa eval` questions file (JSONL, written whole or not at all)."""
    rows = [c.eval_row() for c in store.confirmed()]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise FeedbackError(f"cannot write {path}: {exc.strerror or exc}") from None
    return len(rows)


def report_html(store: FeedbackStore, now: float | None = None, n: int = 5) -> str:
    """/feedback: counts all time and this week, then the week's worst questions (HTML, escaped)."""
    now = time.time() if now is None else now
    week = now - WEEK

    def line(label: str, t: Tally) -> str:
        return (f"<b>{label}</b> {t.votes} votes (👍 {t.up}, 👎 {t.down}) on {t.answers} answers "
                f"from {t.users} users")

    body = [line("All time", store.tally()), line("Last 7 days", store.tally(week))]
    worst = store.worst(week, n)
    if worst:
        body.append("<b>Worst questions of the week</b>")
        for i, q in enumerate(worst, 1):
            shown = q.question if len(q.question) <= 300 else q.question[:300] + "…"
            body.append(f"{i}. {html.escape(shown, quote=False)} — 👎 {q.down}, 👍 {q.up}"
                        + (f" ({html.escape(q.version, quote=False)})" if q.version else ""))
    else:
        body.append("No 👎 this week.")
    return "\n".join(body)


class Votes:
    """The bot's side of voting: answer keys from the CallbackStore, votes into the FeedbackStore (sync, in threads)."""

    def __init__(self, keys: CallbackStore, store: FeedbackStore) -> None:
        self.keys = keys
        self.store = store

    def cast(self, key: str, user_id: int, value: int) -> str | None:
        """Record a vote on the answer behind a button key; None when the key is unknown (expired)."""
        raw = self.keys.get(VOTE, key)
        if raw is None:
            return None
        return self.store.vote(key, user_id, value, AnswerRecord.from_json(raw))
