"""Vectors of common English words, encoded once per model: an English question's words are looked up, not encoded.

An English question is translated into the corpus's terms word by word (retrieval/translate.py): each of its
~9 content words was a model call, ~26 ms of CPU, twice the question's own encoding and seven times an Arabic
question's. The words people ask with are mostly common ones, so `newsqa model provision` (or `newsqa model
words`) encodes the most frequent English words once, exactly as a question's words are encoded (the float model,
the query prompt), and keeps them beside the model. A word it lacks is encoded as before.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from index.errors import NewsqaError

log = logging.getLogger(__name__)

WORDS_VERSION = 2  # bump when the words' encoding changes (prompt, case forms): older tables are then ignored
# (2: the table also keeps the Arabic words' mean vector)
COMMON_WORDS = 20_000  # most frequent English words, as wordfreq lists them (lower case)
CAPITALISED = 20_000  # of these, the most frequent also Capitalised: names ("Tunisia", "Rahman") are written so
ACRONYMS = 5_000  # of these, the most frequent of 2-4 letters also in capitals ("UN", "EU", "NASA")
# Together they hold 89.5% of the content words of XQuAD-ar's English questions and 88.1% of Wikinews-ar's, as written
# (case matters: the model's vocabulary is cased).
# The most frequent Arabic words, of which only the mean vector is kept: with the English words' mean it tells
# where an English question sits apart from Arabic text (retrieval/centring.py). XQuAD-ar English half A, dense
# MRR@10 with centring: the means of 1,000 / 5,000 / 20,000 words .859 / .861 / .861.
ARABIC_WORDS = 5_000
FALLBACK_WORDS = 1_000  # without a table: the most frequent English and Arabic words encoded once, for their means
BATCH = 128  # words per model call when building (all short: batching costs no padding)
_WORD_RE = re.compile(r"[^\W\d_]+")  # what retrieval/translate.py takes for a word


class WordTableError(NewsqaError):
    """A word table that cannot be read or was made by another model."""


def common_words(n: int = COMMON_WORDS, capitalised: int = CAPITALISED, acronyms: int = ACRONYMS) -> list[str]:
    """The n most frequent English words (letters only), the first `capitalised` of them Capitalised, and the short
    ones among the first `acronyms` in capitals."""
    from wordfreq import top_n_list

    top = [w for w in top_n_list("en", n) if len(w) >= 2 and _WORD_RE.fullmatch(w)]
    caps = [w.capitalize() for w in top[:capitalised]]
    upper = [w.upper() for w in top[:acronyms] if len(w) <= 4]
    return list(dict.fromkeys(top + caps + upper))


def _mean(vectors: np.ndarray) -> np.ndarray:
    """The mean row, summed in float64 (40,000 float16 rows), as float32."""
    return vectors.mean(axis=0, dtype=np.float64).astype(np.float32)


def arabic_words_for(english: int) -> int:
    """How many Arabic words a table of this many English words takes: a small table (tests, `--words 2000`) is quick
    to make, and its Arabic mean stays as good (1,000 words did as well as 5,000)."""
    return min(ARABIC_WORDS, max(english, FALLBACK_WORDS))


def common_arabic_words(n: int = ARABIC_WORDS) -> list[str]:
    """The n most frequent Arabic words, as wordfreq lists them (letters only)."""
    from wordfreq import top_n_list

    return [w for w in top_n_list("ar", n) if len(w) >= 2 and _WORD_RE.fullmatch(w)]


def table_path(model_dir: Path) -> Path:
    """Where a model's word table lives: beside its folder, like its ONNX copy."""
    return model_dir.with_name(model_dir.name + "-words.npz")


def identity(embedder: Any) -> dict[str, Any]:
    """What must match for a table to stand for live encoding: the model, its weights and tokenizer, the version."""
    return {
        "version": WORDS_VERSION,
        "model": getattr(embedder, "name", ""),
        "fingerprint": getattr(embedder, "fingerprint", None),
        "tokenizer": getattr(embedder, "tokenizer_fingerprint", None),
    }


@dataclass(frozen=True, slots=True)
class LanguageMeans:
    """The mean query vectors of common English and of common Arabic words, and how many words each rests on."""

    english: np.ndarray  # float32
    english_count: int
    arabic: np.ndarray  # float32
    arabic_count: int


@dataclass(frozen=True, slots=True)
class WordTable:
    """Words and their query vectors (float16), looked up by the word as written."""

    rows: dict[str, int]
    vectors: np.ndarray
    means: LanguageMeans  # of these words, and of the common Arabic words encoded the same way (kept as their mean)

    def __len__(self) -> int:
        return len(self.rows)

    def lookup(self, words: Sequence[str]) -> tuple[np.ndarray, list[int]]:
        """Vectors for the words (float32, zero rows where missing) and the positions of the missing ones."""
        out = np.zeros((len(words), self.vectors.shape[1]), dtype=np.float32)
        missing: list[int] = []
        for i, w in enumerate(words):
            row = self.rows.get(w)
            if row is None:
                missing.append(i)
            else:
                out[i] = self.vectors[row]
        return out, missing


def build_table(
    embedder: Any, path: Path, words: Sequence[str] | None = None, arabic: Sequence[str] | None = None
) -> tuple[int, float]:
    """Encode the words as questions' words are encoded (and the Arabic ones, kept as their mean) and write the
    table atomically; (English words, seconds)."""
    words = list(dict.fromkeys(words if words is not None else common_words()))
    arabic = list(dict.fromkeys(arabic if arabic is not None else common_arabic_words()))
    t = time.perf_counter()
    vectors = embedder.encode_queries(words, batch_size=BATCH).astype(np.float16)
    arabic_mean = np.zeros(vectors.shape[1], dtype=np.float32)
    if arabic:
        arabic_mean = _mean(embedder.encode_queries(arabic, batch_size=BATCH))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        np.savez(handle, words=np.array(words, dtype=str), vectors=vectors, arabic_mean=arabic_mean,
                 arabic_count=np.array(len(arabic)), meta=np.array(json.dumps(identity(embedder))))
    tmp.replace(path)
    return len(words), time.perf_counter() - t


def load_table(path: Path, expected: dict[str, Any]) -> WordTable:
    """Read a table, refusing one made by another model, tokenizer or version (WordTableError says which)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            words = [str(w) for w in data["words"]]
            vectors = np.asarray(data["vectors"], dtype=np.float16)
            has_arabic = "arabic_mean" in data.files and "arabic_count" in data.files  # version 1 had neither
            arabic_mean = np.asarray(data["arabic_mean"], dtype=np.float32) if has_arabic else np.zeros(0, np.float32)
            arabic_count = int(data["arabic_count"]) if has_arabic else 0
    except (OSError, ValueError, KeyError, EOFError) as exc:
        raise WordTableError(f"{path.name}: unreadable ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    differs = [k for k in ("version", "model", "fingerprint", "tokenizer") if meta.get(k) != expected.get(k)]
    if differs:
        raise WordTableError(f"{path.name}: made for another {', '.join(differs)}")
    if vectors.ndim != 2 or len(words) != len(vectors) or arabic_mean.shape != vectors.shape[1:]:
        raise WordTableError(f"{path.name}: incomplete ({len(words)} words, {len(vectors)} vectors, "
                             f"Arabic mean of shape {arabic_mean.shape})")
    means = LanguageMeans(_mean(vectors), len(words), arabic_mean, arabic_count)
    return WordTable({w: i for i, w in enumerate(words)}, vectors, means)


_ENCODED_MEANS: dict[str, LanguageMeans] = {}  # by model identity: what a process without a table encoded once
_ENCODED_LOCK = threading.Lock()


class WordTables:
    """The table of one embedder, loaded on first use; a missing or stale one means live encoding (said once)."""

    def __init__(self, path: Path | None, owner: Any) -> None:
        self.path = path
        self.owner = owner  # the embedder whose identity() a table must match
        self._lock = threading.Lock()
        self._loaded = False
        self._table: WordTable | None = None

    def get(self) -> WordTable | None:
        """The table, or None when there is none to trust."""
        if self._loaded:
            return self._table
        with self._lock:
            if not self._loaded:
                self._table = self._load()
                self._loaded = True
        return self._table

    def means(self) -> LanguageMeans:
        """The two languages' mean word vectors: the table's, else those of FALLBACK_WORDS words of each, encoded now
        (once per process and model, ~3 s) so that English questions are centred alike with or without a table."""
        table = self.get()
        return table.means if table is not None else _encoded_means(self.owner)

    def _load(self) -> WordTable | None:
        if self.path is None or not self.path.is_file():
            log.info("no English word table (%s): English questions' words are encoded one by one; "
                     "`newsqa model words` makes it", self.path)
            return None
        try:
            table = load_table(self.path, identity(self.owner))
        except WordTableError as exc:
            log.warning("%s; English questions' words are encoded one by one until `newsqa model words --force` remakes it", exc)
            return None
        return table


def _encoded_means(owner: Any) -> LanguageMeans:
    """The means of FALLBACK_WORDS English and Arabic words encoded by `owner`, once per model in this process."""
    key = json.dumps(identity(owner), sort_keys=True)  # every embedder of the same model shares them
    with _ENCODED_LOCK:
        known = _ENCODED_MEANS.get(key)
        if known is None:
            english = common_words(FALLBACK_WORDS, 0, 0)
            arabic = common_arabic_words(FALLBACK_WORDS)
            log.info("no word table: encoding %d common English and %d Arabic words once for their means",
                     len(english), len(arabic))
            known = _ENCODED_MEANS[key] = LanguageMeans(
                _mean(owner.encode_queries(english, batch_size=BATCH)), len(english),
                _mean(owner.encode_queries(arabic, batch_size=BATCH)), len(arabic),
            )
        return known


def _word_tables_of(embedder: Any) -> WordTables | None:
    """The WordTables of an embedder or of the one it wraps (batching, serialising), None when it has none."""
    for _ in range(8):  # wrappers keep the model they wrap as `inner`
        attrs = getattr(embedder, "__dict__", {})
        tables = attrs.get("word_tables")
        if isinstance(tables, WordTables):
            return tables
        embedder = attrs.get("inner")
        if embedder is None:
            return None
    return None


def language_means_of(embedder: Any) -> LanguageMeans | None:
    """The English and Arabic mean word vectors of the model behind `embedder`, None for an embedder without word
    lists of its own (the tests' hashing embedder)."""
    tables = _word_tables_of(embedder)
    return tables.means() if tables is not None else None


def word_table_of(embedder: Any) -> WordTable | None:
    """The word table of an embedder or of the one it wraps (batching, serialising), None when it has none."""
    tables = _word_tables_of(embedder)
    return tables.get() if tables is not None else None


def encode_words(embedder: Any, words: Sequence[str]) -> np.ndarray:
    """Query vectors of single words: from the model's word table where it has them, the rest encoded by `embedder`."""
    words = list(words)
    table = word_table_of(embedder)
    if table is None:
        return embedder.encode_queries(words)
    out, missing = table.lookup(words)
    if missing:
        out[missing] = embedder.encode_queries([words[i] for i in missing])
    return out
