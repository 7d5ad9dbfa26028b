"""Full and incremental (re)index: one build at a time, a new version beside the old, atomic switch."""

from __future__ import annotations

import json
import os
import platform
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import numpy as np

from index.arabic import terms
from index.articles import DEFAULT_MAX_ARTICLE_BYTES, Article, CorpusLoad, load_corpus
from index.chunking import DEFAULT_MAX_CHARS, DEFAULT_MIN_CHARS, Chunk, chunk_article
from index.dense import build_faiss, choose_kind, write_faiss
from index.embedder import Embedder
from index.errors import ArticleError, IndexLockedError
from index.store import (
    FORMAT_VERSION,
    MANIFEST,
    VERSIONS,
    IndexVersion,
    fsync_dir,
    fsync_file,
    list_versions,
    open_current,
    read_current,
    write_current,
    write_sqlite,
)

LOCK = "build.lock"
BUILDING_PREFIX = ".building-"


@dataclass(slots=True)
class BuildProgress:
    """A progress tick: how far the embedding has got."""

    stage: str
    chunks_done: int
    chunks_total: int
    articles_done: int
    articles_total: int
    elapsed: float


@dataclass(slots=True)
class BuildReport:
    """What an index build or update did."""

    version: str | None
    switched: bool
    added: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    rejected: list[ArticleError] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    embedded_chunks: int = 0
    total_chunks: int = 0
    total_articles: int = 0
    seconds: float = 0.0
    full_rebuild_reason: str | None = None

    def summary(self) -> str:
        """One line of counts, as printed after a build."""
        return (
            f"added {self.added}, changed {self.changed}, removed {self.removed}, "
            f"unchanged {self.unchanged}, rejected {len(self.rejected)}"
        )


@dataclass(frozen=True, slots=True)
class BuildOptions:
    """Knobs of a build (from Settings)."""

    max_chars: int = DEFAULT_MAX_CHARS
    min_chars: int = DEFAULT_MIN_CHARS
    faiss_kind: str = "auto"
    keep_versions: int = 3
    batch_size: int = 32
    max_article_bytes: int = DEFAULT_MAX_ARTICLE_BYTES
    full: bool = False
    lock_wait_seconds: float = 0.0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class IndexLock:
    """`build.lock` holding the builder's pid; a lock left by a dead process is cleared."""

    def __init__(self, index_dir: Path, wait_seconds: float = 0.0) -> None:
        self.path = index_dir / LOCK
        self.wait_seconds = wait_seconds

    def __enter__(self) -> IndexLock:
        deadline = time.monotonic() + self.wait_seconds
        while True:
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._holder()
                if holder is None or not _pid_alive(holder):
                    self._clear_stale(holder)
                    continue
                if time.monotonic() >= deadline:
                    raise IndexLockedError(
                        f"another index build (pid {holder}) is running on {self.path.parent}; "
                        f"wait for it to finish (lock file {self.path})"
                    ) from None
                time.sleep(0.2)
                continue
            with os.fdopen(fd, "w") as handle:
                handle.write(f"{os.getpid()}\n")
            return self

    def _holder(self) -> int | None:
        try:
            text = self.path.read_text().strip()
        except FileNotFoundError:
            return -1  # vanished between our attempts: try again
        if not text:
            # A writer may be between create and write: only an old empty lock is stale.
            try:
                age = time.time() - self.path.stat().st_mtime
            except FileNotFoundError:
                return -1
            return None if age > 5 else -1
        try:
            return int(text)
        except ValueError:
            return None

    def _clear_stale(self, holder: int | None) -> None:
        if holder == -1:
            time.sleep(0.05)
            return
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass

    def __exit__(self, *exc: object) -> None:
        try:
            if self.path.read_text().strip() == str(os.getpid()):
                self.path.unlink()
        except FileNotFoundError:
            pass


def _library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("faiss-cpu", "sentence-transformers", "bm25s", "torch", "numpy", "transformers"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def _next_version_name(index_dir: Path) -> str:
    root = index_dir / VERSIONS
    numbers = [int(p.name[1:]) for p in root.iterdir() if p.name.startswith("v") and p.name[1:].isdigit()] if root.is_dir() else []
    return f"v{max(numbers, default=0) + 1:06d}"


def clean_abandoned_builds(index_dir: Path) -> list[str]:
    """Remove half-written build folders left by killed builds (their pid is gone)."""
    removed = []
    root = index_dir / VERSIONS
    if not root.is_dir():
        return removed
    for p in root.iterdir():
        if p.name.startswith(BUILDING_PREFIX):
            try:
                pid = int(p.name[len(BUILDING_PREFIX) :].split("-")[0])
            except ValueError:
                pid = -1
            if pid != os.getpid() and not (pid > 0 and _pid_alive(pid)):
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p.name)
        elif p.name.startswith("v") and not (p / MANIFEST).is_file():
            shutil.rmtree(p, ignore_errors=True)  # renamed but never completed: cannot happen, but be safe
            removed.append(p.name)
    return removed


def prune_versions(index_dir: Path, keep: int) -> list[str]:
    """Delete the oldest complete versions beyond `keep`, never the current one."""
    current = read_current(index_dir)
    versions = list_versions(index_dir)
    doomed = [v for v in versions[: max(0, len(versions) - keep)] if v != current]
    for name in doomed:
        shutil.rmtree(index_dir / VERSIONS / name, ignore_errors=True)
    return doomed


def _reusable(prev: IndexVersion | None, embedder: Embedder, dim: int, opts: BuildOptions) -> tuple[bool, str | None]:
    if prev is None:
        return False, "no previous index"
    if opts.full:
        return False, "full rebuild requested"
    model = prev.manifest.get("model", {})
    if model.get("name") != embedder.name or int(model.get("dim", -1)) != dim:
        return False, f"embedding model changed ({model.get('name')}/{model.get('dim')} → {embedder.name}/{dim})"
    chunking = prev.manifest.get("chunking", {})
    if chunking != {"max_chars": opts.max_chars, "min_chars": opts.min_chars}:
        return False, "chunking settings changed"
    return True, None


def update_index(
    corpus_dir: Path,
    index_dir: Path,
    embedder: Embedder,
    opts: BuildOptions = BuildOptions(),
    progress: Callable[[BuildProgress], None] | None = None,
    corpus: CorpusLoad | None = None,
) -> BuildReport:
    """Bring the index in line with the corpus; unchanged articles reuse their stored vectors."""
    started = time.perf_counter()
    index_dir.mkdir(parents=True, exist_ok=True)
    with IndexLock(index_dir, opts.lock_wait_seconds):
        clean_abandoned_builds(index_dir)
        loaded = corpus if corpus is not None else load_corpus(corpus_dir, opts.max_article_bytes)
        report = BuildReport(version=read_current(index_dir), switched=False, rejected=loaded.rejected, notices=loaded.notices)
        prev: IndexVersion | None = None
        if report.version is not None:
            try:
                prev = open_current(index_dir)
            except Exception as exc:  # an unreadable previous version only costs a full rebuild
                report.notices.append(f"previous index unreadable ({exc}); rebuilding in full")
        dim = embedder.dim
        reuse, reason = _reusable(prev, embedder, dim, opts)
        report.full_rebuild_reason = None if reuse else reason

        prev_articles: dict[str, tuple[int, str]] = {}
        prev_chunk_rows: dict[int, list[int]] = {}
        if prev is not None:
            for row, aid, digest in prev.db.execute("SELECT row, id, content_hash FROM articles"):
                prev_articles[aid] = (row, digest)
        if reuse and prev is not None:
            for row, article_row in prev.db.execute("SELECT row, article_row FROM chunks ORDER BY article_row, ord"):
                prev_chunk_rows.setdefault(article_row, []).append(row)

        articles = loaded.articles
        current_ids = {a.id for a in articles}
        chunks_per_article: list[list[Chunk]] = []
        sources: list[tuple[str, int]] = []  # per chunk: ("prev", row) or ("new", index into to_embed)
        to_embed: list[Chunk] = []
        for article in articles:
            chunks = chunk_article(article, opts.max_chars, opts.min_chars)
            chunks_per_article.append(chunks)
            known = prev_articles.get(article.id)
            if known is None:
                report.added += 1
            elif known[1] != article.content_hash:
                report.changed += 1
            else:
                report.unchanged += 1
            old_rows = prev_chunk_rows.get(known[0], []) if (known and known[1] == article.content_hash) else []
            if reuse and len(old_rows) == len(chunks):
                sources.extend(("prev", r) for r in old_rows)
            else:
                for c in chunks:
                    sources.append(("new", len(to_embed)))
                    to_embed.append(c)
        report.removed = sum(1 for aid in prev_articles if aid not in current_ids)
        report.total_articles = len(articles)
        report.total_chunks = len(sources)

        if reuse and not to_embed and report.removed == 0 and report.changed == 0 and report.added == 0:
            report.seconds = time.perf_counter() - started
            return report  # nothing changed: the current version stays, nothing is written

        name = _next_version_name(index_dir)
        tmp = index_dir / VERSIONS / f"{BUILDING_PREFIX}{os.getpid()}-{name}"
        tmp.mkdir(parents=True)
        try:
            _write_version(tmp, articles, chunks_per_article, sources, to_embed, prev, embedder, dim, opts, report, progress, started)
            final = index_dir / VERSIONS / name
            os.rename(tmp, final)
            fsync_dir(index_dir / VERSIONS)
            IndexVersion(final).close()  # verify it loads before it becomes current
            write_current(index_dir, name)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        report.version = name
        report.switched = True
        prune_versions(index_dir, opts.keep_versions)
        report.seconds = time.perf_counter() - started
        return report


def _embed_by_length(
    to_embed: list[Chunk],
    chunks_per_article: list[list[Chunk]],
    embedder: Embedder,
    opts: BuildOptions,
    report: BuildReport,
    progress: Callable[[BuildProgress], None] | None,
    started: float,
) -> np.ndarray:
    """Vectors of to_embed (in its order), encoded in batches of similar length.

    Batching in corpus order pads every short chunk to its batch's longest; sorting by length
    first (as model.encode does within one call) keeps the build at raw encoding speed.
    """
    dim = embedder.dim
    new_vectors = np.zeros((len(to_embed), dim), dtype=np.float32)
    order = sorted(range(len(to_embed)), key=lambda i: len(to_embed[i].embed_text))
    article_of = {c.id: i for i, cs in enumerate(chunks_per_article) for c in cs} if progress else {}
    pending: dict[int, int] = {}
    for c in to_embed if progress else ():
        pending[article_of[c.id]] = pending.get(article_of[c.id], 0) + 1
    n_articles = len(chunks_per_article)
    for start in range(0, len(order), opts.batch_size):
        rows = order[start : start + opts.batch_size]
        new_vectors[rows] = embedder.encode_passages([to_embed[i].embed_text for i in rows], opts.batch_size)
        report.embedded_chunks += len(rows)
        if progress:
            for i in rows:
                a = article_of[to_embed[i].id]
                pending[a] -= 1
                if not pending[a]:
                    del pending[a]
            progress(  # articles_done: articles whose every chunk has its vector
                BuildProgress("embedding", report.embedded_chunks, len(to_embed), n_articles - len(pending), n_articles, time.perf_counter() - started)
            )
    return new_vectors


def _write_version(
    tmp: Path,
    articles: list[Article],
    chunks_per_article: list[list[Chunk]],
    sources: list[tuple[str, int]],
    to_embed: list[Chunk],
    prev: IndexVersion | None,
    embedder: Embedder,
    dim: int,
    opts: BuildOptions,
    report: BuildReport,
    progress: Callable[[BuildProgress], None] | None,
    started: float,
) -> None:
    import bm25s

    n = len(sources)
    vectors = np.lib.format.open_memmap(tmp / "vectors.npy", mode="w+", dtype=np.float32, shape=(n, dim))
    new_vectors = _embed_by_length(to_embed, chunks_per_article, embedder, opts, report, progress, started)
    prev_vectors = prev.vectors if prev is not None else None
    for row, (kind, ref) in enumerate(sources):
        vectors[row] = prev_vectors[ref] if kind == "prev" else new_vectors[ref]
    vectors.flush()
    del vectors
    vectors = np.load(tmp / "vectors.npy", mmap_mode="r")

    if progress:
        progress(BuildProgress("writing", report.embedded_chunks, len(to_embed), len(articles), len(articles), time.perf_counter() - started))
    all_chunks = [c for cs in chunks_per_article for c in cs]
    chunk_article = np.array([i for i, cs in enumerate(chunks_per_article) for _ in cs], dtype=np.int32)
    np.save(tmp / "chunk_article.npy", chunk_article)

    if all_chunks:
        retriever = bm25s.BM25()
        retriever.index([terms(c.embed_text) for c in all_chunks], show_progress=False)
        retriever.save(str(tmp / "lexical"), show_progress=False)
    else:
        (tmp / "lexical").mkdir()

    kind = choose_kind(n, opts.faiss_kind)
    write_faiss(build_faiss(np.asarray(vectors), kind), tmp / "dense.faiss")
    write_sqlite(tmp / "meta.sqlite", articles, chunks_per_article)

    dates = [a.date for a in articles]
    manifest = {
        "format": FORMAT_VERSION,
        "version": tmp.name.split("-")[-1],
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": {"name": embedder.name, "dim": dim, "backend": getattr(embedder, "backend", "torch")},
        "chunking": {"max_chars": opts.max_chars, "min_chars": opts.min_chars},
        "faiss": {"kind": kind},
        "counts": {"articles": len(articles), "chunks": n},
        "dates": {
            "min": min(dates).isoformat(sep=" ") if dates else None,
            "max": max(dates).isoformat(sep=" ") if dates else None,
        },
        "sources": sorted({a.source for a in articles}),
        "libraries": _library_versions(),
        "build": {
            "added": report.added, "changed": report.changed, "removed": report.removed,
            "unchanged": report.unchanged, "rejected": len(report.rejected),
            "embedded_chunks": report.embedded_chunks,
            "full_rebuild_reason": report.full_rebuild_reason,
        },
    }
    for f in tmp.rglob("*"):
        if f.is_file():
            fsync_file(f)
    manifest_path = tmp / MANIFEST
    manifest_path.write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
    fsync_file(manifest_path)
    fsync_dir(tmp)
