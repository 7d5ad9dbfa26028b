"""On-disk layout of the index: versions, the CURRENT pointer, and loading a version.

    index_dir/
      CURRENT                 name of the live version, replaced by one atomic rename
      build.lock              flock(2)ed by the process building; holds its pid (see build.py)
      versions/v000001/       one complete build
        meta.sqlite           articles (with original bodies) and chunks (offsets, sections, analysed evidence)
        vectors.npy           float32 [n_chunks, dim], row i = chunk row i (reused by updates)
        dense.faiss           FAISS index over the same rows
        lexical/              bm25s index over the same rows
        chunk_article.npy     article row of each chunk (filters, grouping)
        sentences.npy         (when built with sentence vectors) float16 vectors of every chunk's sentences
        sentence_offsets.npy  first sentence row of each chunk (n_chunks + 1)
        second.npy            float16 [n_chunks, 512]: each chunk's vector from the second encoder (index/second_encoder.py)
        manifest.json         written last, after every file is fsync'd: a version without it is incomplete;
                              it records the size and BLAKE2b digest of every other file (index/integrity.py)

Opening a version always checks sizes and cheap invariants (counts across FAISS, vectors, SQLite,
bm25s and sentence offsets; a sample of vector norms; no NaN), and the checksums of every file
while the version is small enough for that to stay cheap (VERIFY_ON_OPEN_MAX_BYTES).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Protocol, TypeVar

import numpy as np

from index.articles import Article, Paragraph, format_date
from index.chunking import Chunk
from index.evidence import EVIDENCE_VERSION, SpanEvidence, unpack
from index.errors import (
    AnalyserMismatchError,
    IndexCorruptError,
    IndexDamagedError,
    IndexNotFoundError,
    ModelMismatchError,
)
from index.lexicon import LEXICON_FILE, Lexicon, LexiconReader, load_lexicon
from index.integrity import check_files, raise_first, read_manifest, total_bytes
from index.second_encoder import FILE as SECOND_FILE

FORMAT_VERSION = 1
CURRENT = "CURRENT"
VERSIONS = "versions"
MANIFEST = "manifest.json"
# Opening a version hashes all its files up to this size (10^5 chunks with sentence vectors take
# ~740 MiB, hashed in ~0.6 s: bench/verify_cost.py); larger ones get sizes and invariants at open.
VERIFY_ON_OPEN_MAX_BYTES = 1 << 30
NORM_SAMPLE = 64
CHUNK_CACHE = 200_000  # chunk records a loaded version keeps (~150 bytes each)
ARTICLE_CACHE = 512  # article records with their bodies a loaded version keeps (news articles: a few KB each)
# numpy parses .npy headers with ast.literal_eval, which CPython 3.11 can fail on when two threads
# parse at once ("AST constructor recursion depth mismatch"); a reader opening a version while a build
# verifies the new one did. Loading the parts of a version is serialised (each load is a few ms at most).
LOAD_LOCK = threading.Lock()
log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE articles (
    row INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    source TEXT NOT NULL,
    date TEXT NOT NULL,
    url TEXT,
    path TEXT NOT NULL,
    encoding TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    body TEXT NOT NULL,
    paragraphs TEXT NOT NULL
);
CREATE TABLE chunks (
    row INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    article_row INTEGER NOT NULL REFERENCES articles(row),
    ord INTEGER NOT NULL,
    section TEXT,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    evidence TEXT
);
CREATE INDEX chunks_by_article ON chunks(article_row);
CREATE INDEX articles_by_source ON articles(source);
CREATE INDEX articles_by_date ON articles(date);
"""


T = TypeVar("T")


def remember(cache: dict[int, T], limit: int, key: int, load: Callable[[int], T]) -> T:
    """cache[key], loaded on a miss and kept while the cache holds fewer than `limit` (0 = keep nothing).

    For what a loaded version never changes (its rows, their analysis): emptied when full, so bounded and lock-free;
    a question in flight keeps what it already read.
    """
    value = cache.get(key)
    if value is None:
        value = load(key)
        if len(cache) >= limit:
            cache.clear()
        if limit > 0:
            cache[key] = value
    return value


def import_bm25s():  # noqa: ANN201
    """bm25s, with the DEBUG level it sets on its own logger at import put back to WARNING."""
    import logging

    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s


def fsync_dir(path: Path) -> None:
    """Make a rename inside `path` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    """Flush one written file to disk."""
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def write_sqlite(
    path: Path, articles: list[Article], chunks_per_article: list[list[Chunk]], evidence: Sequence[str | None] | None = None
) -> None:
    """Write the metadata store: articles in row order, chunks in global row order (with each one's packed evidence)."""
    db = sqlite3.connect(path)
    try:
        db.executescript(SCHEMA)
        db.executemany(
            "INSERT INTO articles VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                (
                    row, a.id, a.title, a.source, a.date.isoformat(sep=" "), a.url, a.path, a.encoding,
                    a.content_hash, a.body, json.dumps([[p.start, p.end, p.heading] for p in a.paragraphs]),
                )
                for row, a in enumerate(articles)
            ),
        )
        db.executemany(
            'INSERT INTO chunks VALUES (?,?,?,?,?,?,?,?)',
            (
                (row, c.id, article_row, c.ord, c.section, c.start, c.end, evidence[row] if evidence is not None else None)
                for row, (article_row, c) in enumerate(
                    (ar, c) for ar, chunks in enumerate(chunks_per_article) for c in chunks
                )
            ),
        )
        db.commit()
    finally:
        db.close()


@dataclass(frozen=True, slots=True)
class ArticleRecord:
    """An indexed article as read back from the store (body included for quoting)."""

    row: int
    id: str
    title: str
    source: str
    date: datetime
    url: str | None
    path: str
    content_hash: str
    body: str

    @property
    def date_text(self) -> str:
        """The date as people read it in a source line."""
        return format_date(self.date)


@dataclass(frozen=True, slots=True)
class ChunkRecord:
    """An indexed chunk as read back from the store."""

    row: int
    id: str
    article_row: int
    ord: int
    section: str | None
    start: int
    end: int


class IndexReader(Protocol):
    """One loaded, read-only version as the answer pipeline reads it: records by row, whoever stores them.

    IndexVersion (local files) and index/qdrant_store.QdrantVersion (a Qdrant deployment) implement it.
    """

    name: str
    manifest: dict
    n_chunks: int
    n_articles: int
    dim: int

    def chunk(self, row: int) -> ChunkRecord: ...
    def chunk_text(self, row: int) -> str: ...
    def chunk_evidence(self, row: int) -> SpanEvidence | None: ...
    def chunk_rows_within(self, article_row: int, start: int, end: int) -> list[int]: ...
    def article(self, row: int) -> ArticleRecord: ...
    def article_by_id(self, article_id: str) -> ArticleRecord | None: ...
    def paragraphs(self, row: int) -> list[Paragraph]: ...
    def unit_vectors(self, rows: Sequence[int]) -> list[np.ndarray] | None: ...
    def second_rows(self, rows: Sequence[int]) -> np.ndarray | None: ...
    def lexicon(self) -> LexiconReader | None: ...
    def close(self) -> None: ...

    @property
    def model(self) -> str: ...
    @property
    def article_sources(self) -> list[str]: ...
    @property
    def article_dates(self) -> np.ndarray: ...


def current_name(index_dir: Path) -> str | None:
    """Name of the live version, None when nothing was ever built; a damaged pointer raises IndexDamagedError."""
    try:
        raw = (index_dir / CURRENT).read_bytes()
    except FileNotFoundError:
        built = list_versions(index_dir)
        if built:  # versions were completed here, but the pointer to one is gone
            raise IndexDamagedError(None, CURRENT, f"missing, while versions/ holds {built[-1]}", where=str(index_dir)) from None
        return None
    except OSError as exc:
        raise IndexDamagedError(None, CURRENT, f"unreadable ({exc.strerror})", where=str(index_dir)) from None
    try:
        name = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise IndexDamagedError(None, CURRENT, "not valid UTF-8", where=str(index_dir)) from None
    if not name:
        raise IndexDamagedError(None, CURRENT, "empty", where=str(index_dir))
    if not is_version_name(name):
        raise IndexDamagedError(None, CURRENT, f"names {name[:40]!r}, not a version", where=str(index_dir))
    return name


def read_current(index_dir: Path) -> str | None:
    """Name of the live version, or None when nothing was ever built or the pointer is unreadable."""
    try:
        return current_name(index_dir)
    except IndexDamagedError:
        return None


def is_version_name(name: str) -> bool:
    """vNNNNNN (six digits or more)."""
    return len(name) >= 7 and name[0] == "v" and name[1:].isdigit()


def write_current(index_dir: Path, name: str) -> None:
    """Point CURRENT at a version with one atomic rename; readers see old or new, never half."""
    tmp = index_dir / f".{CURRENT}.{os.getpid()}.tmp"
    tmp.write_text(name + "\n", encoding="utf-8")
    fsync_file(tmp)
    os.replace(tmp, index_dir / CURRENT)
    fsync_dir(index_dir)


def list_versions(index_dir: Path) -> list[str]:
    """Complete versions on disk (those with a manifest), oldest first."""
    root = index_dir / VERSIONS
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.name.startswith("v") and (p / MANIFEST).is_file())


class IndexVersion:
    """One loaded, read-only index version: FAISS, bm25s, SQLite and the row arrays."""

    def __init__(self, path: Path, verify: str = "auto") -> None:
        """Load a version. verify: "auto" (checksums when small, invariants always), "full", "cheap"
        (sizes and invariants only) or "none" (nothing beyond loading; benchmarks only)."""
        self.path = path
        self.name = path.name
        self._local = threading.local()
        # Rows read by questions, kept (`remember`): the chunks questions reach repeat a lot (one SQLite query
        # each was ~5% of the bot's CPU per answer).
        self._chunks: dict[int, ChunkRecord] = {}
        self._articles: dict[int, ArticleRecord] = {}
        self.manifest: dict = read_manifest(path)
        if self.manifest.get("format") != FORMAT_VERSION:
            raise IndexCorruptError(f"{path}: index format {self.manifest.get('format')} (this code reads {FORMAT_VERSION})")
        try:
            self.n_chunks = int(self.manifest["counts"]["chunks"])
            self.n_articles = int(self.manifest["counts"]["articles"])
            self.dim = int(self.manifest["model"]["dim"])
        except (KeyError, TypeError, ValueError):
            raise IndexDamagedError(self.name, MANIFEST, "counts or model missing") from None
        hashes = verify == "full" or (verify == "auto" and total_bytes(self.manifest) <= VERIFY_ON_OPEN_MAX_BYTES)
        if verify != "none":
            raise_first(self.name, check_files(path, self.manifest, hashes=hashes))
        #: True when every file's checksum was compared with the manifest on this open.
        self.checksums_verified = hashes and verify != "none" and "files" in self.manifest
        self.chunk_article = self._load("chunk_article.npy", lambda p: np.load(p, mmap_mode="r"))
        if len(self.chunk_article) != self.n_chunks:
            raise IndexDamagedError(self.name, "chunk_article.npy", f"{len(self.chunk_article)} rows, manifest says {self.n_chunks}")
        from index.dense import read_faiss

        self.faiss = self._load("dense.faiss", read_faiss)
        if self.faiss.ntotal != self.n_chunks:
            raise IndexDamagedError(self.name, "dense.faiss", f"holds {self.faiss.ntotal} vectors, manifest says {self.n_chunks}")
        self.bm25 = (
            self._load("lexical", lambda p: import_bm25s().BM25.load(str(p), mmap=True, load_vocab=True)) if self.n_chunks else None
        )
        if verify != "none":
            self._check_invariants()

    def _load(self, file: str, load):  # noqa: ANN001, ANN202
        """load(path of file), any failure reported as that file's damage."""
        try:
            with LOAD_LOCK:
                return load(self.path / file)
        except FileNotFoundError:
            raise IndexDamagedError(self.name, file, "missing") from None
        except Exception as exc:  # numpy, faiss and bm25s raise whatever their parser hits
            raise IndexDamagedError(self.name, file, f"unreadable ({_first_line(exc)})") from None

    def _check_invariants(self) -> None:
        """Counts agree across every part; sampled vectors are finite and of unit norm."""
        n, name = self.n_chunks, self.name
        ca = self.chunk_article
        if ca.ndim != 1 or ca.dtype.kind not in "iu":
            raise IndexDamagedError(name, "chunk_article.npy", f"shape {ca.shape} {ca.dtype}, expected int rows")
        if n and (int(ca.min()) < 0 or int(ca.max()) >= self.n_articles or np.any(np.diff(ca) < 0)):
            raise IndexDamagedError(name, "chunk_article.npy", f"article rows outside 0..{self.n_articles - 1} or out of order")
        if self.faiss.d != self.dim:
            raise IndexDamagedError(name, "dense.faiss", f"dimension {self.faiss.d}, manifest says {self.dim}")
        vectors = self._load("vectors.npy", lambda p: np.load(p, mmap_mode="r"))
        if vectors.shape != (n, self.dim) or vectors.dtype != np.float32:
            raise IndexDamagedError(name, "vectors.npy", f"shape {vectors.shape} {vectors.dtype}, expected ({n}, {self.dim}) float32")
        sample = _sample_rows(n)
        _check_unit_rows(name, "vectors.npy", np.asarray(vectors[sample], dtype=np.float32), 1e-3)
        from index.dense import is_exact

        if len(sample) and is_exact(self.faiss):
            try:
                stored = np.stack([self.faiss.reconstruct(int(r)) for r in sample])
            except RuntimeError:
                stored = None
            if stored is not None and not np.allclose(stored, vectors[sample], atol=1e-6):
                raise IndexDamagedError(name, "dense.faiss", "vectors differ from vectors.npy")
        del vectors
        if self.bm25 is not None:
            docs = getattr(self.bm25, "scores", {}).get("num_docs")
            if docs is not None and int(docs) != n:
                raise IndexDamagedError(name, "lexical", f"holds {docs} documents, manifest says {n}")
        try:
            (articles,) = self.db.execute("SELECT count(*) FROM articles").fetchone()
            (chunks,) = self.db.execute("SELECT count(*) FROM chunks").fetchone()
        except sqlite3.DatabaseError as exc:
            self.close()
            raise IndexDamagedError(name, "meta.sqlite", f"unreadable ({_first_line(exc)})") from None
        if (articles, chunks) != (self.n_articles, n):
            self.close()
            raise IndexDamagedError(
                name, "meta.sqlite", f"holds {articles} articles and {chunks} chunks, manifest says {self.n_articles} and {n}"
            )
        sentences = (self.manifest.get("sentences") or {}).get("count")
        if sentences is not None:
            offsets = self._load("sentence_offsets.npy", np.load)
            if offsets.shape != (n + 1,) or (n and (offsets[0] != 0 or offsets[-1] != sentences or np.any(np.diff(offsets) < 0))):
                raise IndexDamagedError(name, "sentence_offsets.npy", f"does not describe {n} chunks and {sentences} sentences")
            from index.dense import RowReader

            rows = self._load("sentences.npy", RowReader)
            try:
                if rows.shape != (sentences, self.dim) or rows.dtype != np.float16:
                    raise IndexDamagedError(name, "sentences.npy", f"shape {rows.shape} {rows.dtype}, expected ({sentences}, {self.dim}) float16")
                _check_unit_rows(name, "sentences.npy", rows[_sample_rows(int(sentences))].astype(np.float32), 1e-2)
            finally:
                rows.close()
        second = self.manifest.get("second")
        if second:
            from index.dense import RowReader

            rows = self._load(SECOND_FILE, RowReader)
            try:
                if rows.shape != (n, int(second.get("dim", -1))) or rows.dtype != np.float16:
                    raise IndexDamagedError(name, SECOND_FILE, f"shape {rows.shape} {rows.dtype}, expected ({n}, {second.get('dim')}) float16")
                _check_unit_rows(name, SECOND_FILE, rows[_sample_rows(n)].astype(np.float32), 1e-2)
            finally:
                rows.close()

    @property
    def db(self) -> sqlite3.Connection:
        """A read-only SQLite connection for the calling thread."""
        conn = getattr(self._local, "db", None)
        if conn is None:
            conn = sqlite3.connect(f"file:{self.path / 'meta.sqlite'}?mode=ro", uri=True, check_same_thread=False)
            self._local.db = conn
        return conn

    @property
    def model(self) -> str:
        """The embedding model the vectors came from."""
        return str(self.manifest["model"]["name"])

    @cached_property
    def vectors(self) -> np.ndarray:
        """All chunk vectors, memory-mapped (only builds and exact re-scoring read them)."""
        return np.load(self.path / "vectors.npy", mmap_mode="r")

    @cached_property
    def vector_rows(self):  # noqa: ANN201 - index.dense.RowReader
        """Random access to chunk vectors without mapping them (exact re-scoring while serving)."""
        from index.dense import RowReader

        return RowReader(self.path / "vectors.npy")

    def unit_vectors(self, rows: Sequence[int]) -> list[np.ndarray] | None:
        """Each chunk's stored sentence vectors (float32), None when the build stored none."""
        stored = self.sentence_vectors()
        if stored is None:
            return None
        vecs, offsets = stored
        return [vecs.read_range(offsets[r], offsets[r + 1]).astype(np.float32) for r in rows]

    def lexicon(self) -> Lexicon | None:
        """The corpus's words with their vectors (index/lexicon.py), None when the build kept none."""
        if not self.manifest.get("lexicon"):
            return None  # built before lexicons, or with NEWSQA_LEXICON=false
        return self._lexicon

    @cached_property
    def _lexicon(self) -> Lexicon | None:
        expected = (self.manifest.get("lexicon") or {}).get("count")
        try:
            lexicon = load_lexicon(self.path / LEXICON_FILE)
        except (OSError, ValueError, KeyError, EOFError) as exc:
            raise IndexDamagedError(self.name, LEXICON_FILE, f"unreadable ({_first_line(exc)})") from None
        if expected is not None and (len(lexicon) != expected or len(lexicon.words) != expected or lexicon.vectors.shape != (expected, self.dim)):
            raise IndexDamagedError(self.name, LEXICON_FILE, f"holds {len(lexicon)} words, manifest says {expected}")
        return lexicon

    def second_vectors(self):  # noqa: ANN201 - index.dense.RowReader or None
        """Each chunk's second-encoder vector (index/second_encoder.py, float16) when the build stored them."""
        if not self.manifest.get("second"):
            return None
        return self._second

    @cached_property
    def _second(self):  # noqa: ANN202
        from index.dense import RowReader

        return RowReader(self.path / SECOND_FILE)

    def second_rows(self, rows: Sequence[int]) -> np.ndarray | None:
        """The stored second-encoder vectors of these chunk rows (float32), None when the build stored none."""
        stored = self.second_vectors()
        return None if stored is None else np.asarray(stored[list(rows)], dtype=np.float32)

    def sentence_vectors(self):  # noqa: ANN201 - (RowReader, offsets) or None
        """(rows, offsets) of every chunk's sentence vectors when the build stored them.

        Read with pread, not mapped, so serving memory stays flat however many chunks are touched.
        """
        path = self.path / "sentences.npy"
        if not path.is_file():
            return None
        return self._sentences

    @cached_property
    def _sentences(self):  # noqa: ANN202
        from index.dense import RowReader

        return RowReader(self.path / "sentences.npy"), np.load(self.path / "sentence_offsets.npy")

    @cached_property
    def article_dates(self) -> np.ndarray:
        """Article dates as numpy datetime64[m], by article row (for date filters)."""
        rows = self.db.execute("SELECT date FROM articles ORDER BY row").fetchall()
        return np.array([r[0].replace(" ", "T") for r in rows], dtype="datetime64[m]")

    @cached_property
    def article_sources(self) -> list[str]:
        """Outlet of each article row."""
        return [r[0] for r in self.db.execute("SELECT source FROM articles ORDER BY row")]

    def article(self, row: int) -> ArticleRecord:
        """One article by row."""
        return remember(self._articles, ARTICLE_CACHE, row, self._article)

    def _article(self, row: int) -> ArticleRecord:
        """One article read from the version's SQLite file."""
        r = self.db.execute(
            "SELECT row, id, title, source, date, url, path, content_hash, body FROM articles WHERE row=?", (int(row),)
        ).fetchone()
        if r is None:
            raise KeyError(row)
        return ArticleRecord(r[0], r[1], r[2], r[3], datetime.fromisoformat(r[4]), r[5], r[6], r[7], r[8])

    def article_by_id(self, article_id: str) -> ArticleRecord | None:
        """One article by its id, or None."""
        r = self.db.execute("SELECT row FROM articles WHERE id=?", (article_id,)).fetchone()
        return self.article(r[0]) if r else None

    def paragraphs(self, row: int) -> list[Paragraph]:
        """Paragraph spans of an article, for splitting it into messages."""
        (raw,) = self.db.execute("SELECT paragraphs FROM articles WHERE row=?", (int(row),)).fetchone()
        return [Paragraph(s, e, h) for s, e, h in json.loads(raw)]

    def chunk(self, row: int) -> ChunkRecord:
        """One chunk by row (= FAISS id = bm25 document)."""
        return remember(self._chunks, CHUNK_CACHE, row, self._chunk)

    def _chunk(self, row: int) -> ChunkRecord:
        """One chunk read from the version's SQLite file."""
        r = self.db.execute(
            'SELECT row, id, article_row, ord, section, start, "end" FROM chunks WHERE row=?', (int(row),)
        ).fetchone()
        if r is None:
            raise KeyError(row)
        return ChunkRecord(*r)

    def chunk_text(self, row: int) -> str:
        """The original text of one chunk (a slice of its article's body)."""
        chunk = self.chunk(row)
        (text,) = self.db.execute(
            "SELECT substr(body, ?, ?) FROM articles WHERE row=?", (chunk.start + 1, chunk.end - chunk.start, chunk.article_row)
        ).fetchone()
        return str(text)

    def chunk_evidence(self, row: int) -> SpanEvidence | None:
        """The chunk's evidence as the build analysed it, or None when this version stored none of this analyser's."""
        if self.manifest.get("evidence", {}).get("version") != EVIDENCE_VERSION:
            return None
        r = self.db.execute("SELECT evidence FROM chunks WHERE row=?", (int(row),)).fetchone()
        if r is None or r[0] is None:
            return None
        try:
            return unpack(r[0])
        except (ValueError, IndexError, AttributeError):  # damaged past what the checks on open saw: analyse instead
            log.warning("index version %s: chunk %d's stored evidence is unreadable; analysing its text", self.name, row)
            return None

    def stored_evidence(self) -> list[str | None] | None:
        """Every chunk's packed evidence in row order (a build reuses it), None when stored under another version."""
        if self.manifest.get("evidence", {}).get("version") != EVIDENCE_VERSION:
            return None
        out: list[str | None] = [None] * self.n_chunks
        for row, packed in self.db.execute("SELECT row, evidence FROM chunks"):
            out[row] = packed
        return out

    def chunk_rows_within(self, article_row: int, start: int, end: int) -> list[int]:
        """Rows of an article's chunks that lie inside body[start:end], in reading order."""
        rows = self.db.execute(
            'SELECT row FROM chunks WHERE article_row=? AND start>=? AND "end"<=? ORDER BY ord', (int(article_row), start, end)
        ).fetchall()
        return [int(r[0]) for r in rows]

    def close(self) -> None:
        """Close this thread's SQLite connection (and the vector and sentence row readers, if opened)."""
        rows = self.__dict__.pop("vector_rows", None)
        if rows is not None:
            rows.close()
        sentences = self.__dict__.pop("_sentences", None)
        if sentences is not None:
            sentences[0].close()
        second = self.__dict__.pop("_second", None)
        if second is not None:
            second.close()
        conn = getattr(self._local, "db", None)
        if conn is not None:
            conn.close()
            self._local.db = None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0][:200] if text else type(exc).__name__) or type(exc).__name__


def _sample_rows(n: int) -> np.ndarray:
    """Up to NORM_SAMPLE rows spread evenly over 0..n-1 (first and last included)."""
    return np.unique(np.linspace(0, n - 1, min(n, NORM_SAMPLE)).astype(np.int64)) if n else np.zeros(0, dtype=np.int64)


def _check_unit_rows(version: str, file: str, rows: np.ndarray, tolerance: float) -> None:
    if not np.all(np.isfinite(rows)):
        raise IndexDamagedError(version, file, "NaN or infinite values")
    norms = np.linalg.norm(rows, axis=1) if len(rows) else np.ones(0)
    if np.any(np.abs(norms - 1.0) > tolerance):
        raise IndexDamagedError(version, file, "vectors not of unit length")


def open_current(index_dir: Path, verify: str = "auto") -> IndexVersion:
    """Load the live version; a missing index says how to build one.

    If the version vanishes while loading (pruned after CURRENT moved on), the new current one is loaded.
    """
    for _attempt in range(3):
        name = current_name(index_dir)
        if name is None:
            raise IndexNotFoundError(f"no index in {index_dir}: build one with `newsqa index build`")
        path = index_dir / VERSIONS / name
        try:
            if not path.is_dir():
                raise IndexNotFoundError(f"{index_dir}: CURRENT names {name}, which is not on disk")
            return IndexVersion(path, verify)
        except (IndexNotFoundError, IndexCorruptError, OSError, RuntimeError):
            if read_current(index_dir) == name:
                raise
    raise IndexNotFoundError(f"{index_dir}: CURRENT kept moving while loading; try again")


def check_model(version: IndexReader, embedder: object) -> None:
    """Refuse (closing it) a version whose vectors another model made, or whose text another analyser cut.

    Compared: model name and dimension, the weights fingerprint when both sides have one (an index from
    before fingerprints, or a test embedder, has none), and the analyser version when recorded.
    """
    from index.arabic import ANALYSER_VERSION
    from index.embedder import model_fingerprint_of

    built = version.manifest.get("model", {})
    name, dim = getattr(embedder, "name", None), int(getattr(embedder, "dim", -1))
    if built.get("name") != name or int(built.get("dim", -1)) != dim:
        version.close()
        raise ModelMismatchError(
            f"index version {version.name} was built with {built.get('name')} (dim {built.get('dim')}), "
            f"but questions are embedded with {name} (dim {dim}); "
            f"set NEWSQA_EMBEDDING_MODEL to match or rebuild with `newsqa index update`"
        )
    built_fp, fp = built.get("fingerprint"), model_fingerprint_of(embedder)
    if built_fp and fp and built_fp != fp:
        version.close()
        raise ModelMismatchError(
            f"index version {version.name} was built with other weights of {name} ({built_fp[:19]}, "
            f"this model is {fp[:19]}); rebuild with `newsqa index update` or point NEWSQA_EMBEDDING_MODEL at that copy"
        )
    analyser = version.manifest.get("analyser", {}).get("version")
    if analyser is not None and analyser != ANALYSER_VERSION:
        version.close()
        raise AnalyserMismatchError(
            f"index version {version.name} was analysed with text analyser version {analyser} "
            f"(this code: {ANALYSER_VERSION}); rebuild with `newsqa index update`"
        )


class VersionStore(Protocol):
    """Where versions live and which is current: a local folder (LocalStore) or Qdrant (index/qdrant_store.py)."""

    @property
    def where(self) -> str: ...
    def current_name(self) -> str | None: ...
    def open_current(self) -> IndexReader: ...


class LocalStore:
    """The versions in one local index folder."""

    def __init__(self, index_dir: Path) -> None:
        self.index_dir = index_dir

    @property
    def where(self) -> str:
        """How messages name this index."""
        return str(self.index_dir)

    def current_name(self) -> str | None:
        """The live version's name; None when nothing was built or the pointer is unreadable."""
        return read_current(self.index_dir)

    def open_current(self) -> IndexVersion:
        """Load the live version (see open_current)."""
        return open_current(self.index_dir)
