"""Compact, restart-safe button data: short keys for questions and articles kept in a small SQLite file.

Telegram allows 64 bytes of callback data. A button carries `m:<key>:<offset>` (more results) or
`a:<key>` (full article) or `v:<key>:1` / `v:<key>:-1` (👍 / 👎 on an answer), where key is a
12-character hash of the question, article id or answer record; the SQLite table maps it back, so
buttons keep working after the bot restarts.
"""

from __future__ import annotations

import base64
import hashlib
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

MAX_CALLBACK_BYTES = 64
QUESTION, ARTICLE, VOTE = "m", "a", "v"
UP, DOWN = 1, -1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS callback_keys (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    created REAL NOT NULL
);
"""


def short_key(kind: str, value: str) -> str:
    """A deterministic 12-character URL-safe key for a question or an article id."""
    digest = hashlib.sha256(f"{kind}\n{value}".encode()).digest()
    return base64.urlsafe_b64encode(digest[:9]).decode("ascii")


@dataclass(frozen=True, slots=True)
class Callback:
    """Decoded button data (for a vote, offset holds UP or DOWN)."""

    kind: str
    key: str
    offset: int = 0


def encode(kind: str, key: str, offset: int = 0) -> str:
    """Button data for a key; always within Telegram's 64 bytes."""
    data = f"{kind}:{key}:{offset}" if kind in (QUESTION, VOTE) else f"{kind}:{key}"
    assert len(data.encode()) <= MAX_CALLBACK_BYTES, data
    return data


def decode(data: str | None) -> Callback | None:
    """Parse button data; None for anything this bot did not make."""
    if not data:
        return None
    parts = data.split(":")
    if parts[0] == QUESTION and len(parts) == 3 and len(parts[1]) == 12 and parts[2].isdigit():
        return Callback(QUESTION, parts[1], int(parts[2]))
    if parts[0] == ARTICLE and len(parts) == 2 and len(parts[1]) == 12:
        return Callback(ARTICLE, parts[1])
    if parts[0] == VOTE and len(parts) == 3 and len(parts[1]) == 12 and parts[2] in (str(UP), str(DOWN)):
        return Callback(VOTE, parts[1], int(parts[2]))
    return None


class CallbackStore:
    """The key → question/article-id table, shared by all handler threads."""

    def __init__(self, path: Path, keep_days: float = 90.0) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # a lost key after a power cut only expires a button
        self._db.executescript(_SCHEMA)
        # Buttons older than keep_days answer "expired"; the table does not grow forever.
        self._db.execute("DELETE FROM callback_keys WHERE created < ?", (time.time() - keep_days * 86400,))

    def put(self, kind: str, value: str) -> str:
        """Remember a question or article id; returns its key."""
        return self.put_many([(kind, value)])[0]

    def put_many(self, items: list[tuple[str, str]]) -> list[str]:
        """Remember several (kind, value) pairs in one transaction; returns their keys."""
        keys = [short_key(kind, value) for kind, value in items]
        now = time.time()
        with self._lock, self._db:  # one transaction
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT INTO callback_keys (key, kind, value, created) VALUES (?,?,?,?) "
                "ON CONFLICT(key) DO UPDATE SET created=excluded.created",
                [(key, kind, value, now) for key, (kind, value) in zip(keys, items, strict=True)],
            )
        return keys

    def get(self, kind: str, key: str) -> str | None:
        """The question or article id behind a key, or None when unknown."""
        with self._lock:
            row = self._db.execute("SELECT value FROM callback_keys WHERE key=? AND kind=?", (key, kind)).fetchone()
        return row[0] if row else None

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()
