"""On-disk layout of the index: versions, the CURRENT pointer, and loading a version.

    index_dir/
      CURRENT                 name of the live version, replaced by one atomic rename
      build.lock              flock(2)ed by the process building; holds its pid (see build.py)
      versions/v000001/       one complete build
        meta.sqlite           articles (with original bodies) and chunks (offsets, sections)
        vectors.npy           float32 [n_chunks, dim], row i = chunk row i (reused by updates)
        dense.faiss           FAISS index over the same rows
        lexical/              bm25s index over the same rows
        chunk_article.npy     article row of each chunk (filters, grouping)
        manifest.json         written last: a version without it is incomplete
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from pathlib import Path

import numpy as np

from index.articles import Article, Paragraph, format_date
from index.chunking import Chunk
from index.errors import AnalyserMismatchError, IndexCorruptError, IndexNotFoundError, ModelMismatchError

FORMAT_VERSION = 1
CURRENT = "CURRENT"
VERSIONS = "versions"
MANIFEST = "manifest.json"

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
    "end" INTEGER NOT NULL
);
CREATE INDEX chunks_by_article ON chunks(article_row);
CREATE INDEX articles_by_source ON articles(source);
CREATE INDEX articles_by_date ON articles(date);
"""


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


def write_sqlite(path: Path, articles: list[Article], chunks_per_article: list[list[Chunk]]) -> None:
    """Write the metadata store: articles in row order, chunks in global row order."""
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
            'INSERT INTO chunks VALUES (?,?,?,?,?,?,?)',
            (
                (row, c.id, article_row, c.ord, c.section, c.start, c.end)
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


def read_current(index_dir: Path) -> str | None:
    """Name of the live version, or None when nothing was ever built."""
    try:
        name = (index_dir / CURRENT).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return name or None


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

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = path.name
        manifest_path = path / MANIFEST
        if not manifest_path.is_file():
            raise IndexCorruptError(f"{path}: no manifest.json, the build did not complete")
        self.manifest: dict = json.loads(manifest_path.read_text(encoding="utf-8"))
        if self.manifest.get("format") != FORMAT_VERSION:
            raise IndexCorruptError(f"{path}: index format {self.manifest.get('format')} (this code reads {FORMAT_VERSION})")
        self._local = threading.local()
        self.n_chunks = int(self.manifest["counts"]["chunks"])
        self.n_articles = int(self.manifest["counts"]["articles"])
        self.chunk_article = np.load(path / "chunk_article.npy", mmap_mode="r")
        if len(self.chunk_article) != self.n_chunks:
            raise IndexCorruptError(f"{path}: chunk_article.npy has {len(self.chunk_article)} rows, manifest {self.n_chunks}")
        from index.dense import read_faiss

        self.faiss = read_faiss(path / "dense.faiss")
        if self.faiss.ntotal != self.n_chunks:
            raise IndexCorruptError(f"{path}: FAISS holds {self.faiss.ntotal} vectors, manifest {self.n_chunks}")
        self.bm25 = import_bm25s().BM25.load(str(path / "lexical"), mmap=True, load_vocab=True) if self.n_chunks else None

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
        conn = getattr(self._local, "db", None)
        if conn is not None:
            conn.close()
            self._local.db = None


def open_current(index_dir: Path) -> IndexVersion:
    """Load the live version; a missing index says how to build one.

    If the version vanishes while loading (pruned after CURRENT moved on), the new current one is loaded.
    """
    for _attempt in range(3):
        name = read_current(index_dir)
        if name is None:
            raise IndexNotFoundError(f"no index in {index_dir}: build one with `newsqa index build`")
        path = index_dir / VERSIONS / name
        try:
            if not path.is_dir():
                raise IndexNotFoundError(f"{index_dir}: CURRENT names {name}, which is not on disk")
            return IndexVersion(path)
        except (IndexNotFoundError, IndexCorruptError, OSError, RuntimeError):
            if read_current(index_dir) == name:
                raise
    raise IndexNotFoundError(f"{index_dir}: CURRENT kept moving while loading; try again")


def check_model(version: IndexVersion, embedder: object) -> None:
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
