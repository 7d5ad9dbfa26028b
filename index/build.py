"""Full and incremental (re)index: one build at a time, a new version beside the old, atomic switch."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import platform
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, UTC
from importlib import metadata
from pathlib import Path
from typing import Protocol

import numpy as np

from index.arabic import ANALYSER_VERSION, terms
from index.evidence import EVIDENCE_VERSION, analyse_span, pack
from index.articles import DEFAULT_MAX_ARTICLE_BYTES, Article, CorpusLoad, load_corpus
from index.chunking import DEFAULT_MAX_CHARS, DEFAULT_MIN_CHARS, Chunk, chunk_article, chunk_sentences
from index.dense import build_faiss, choose_kind, write_faiss
from index.embedder import Embedder, int8_recipe_of, model_fingerprint_of, tokenizer_fingerprint_of
from index.errors import (
    ArticleError,
    EmptyCorpusError,
    IndexCorruptError,
    IndexDamagedError,
    IndexLockedError,
    IndexReadOnlyError,
    ModelMismatchError,
    RayBuildError,
)
from index.lexicon import LEXICON_FILE, build_lexicon, save_lexicon
from index.integrity import Problem, check_files, checksum_files, fsync_tree, seal_manifest
from index.ray_embed import encode_passages_on_ray, ray_session
from index.second_encoder import BATCH as SECOND_BATCH, FILE as SECOND_FILE, NAME as SECOND_NAME, shared_encoder
from index.store import (
    CURRENT,
    FORMAT_VERSION,
    LOAD_LOCK,
    MANIFEST,
    VERSIONS,
    IndexVersion,
    fsync_dir,
    fsync_file,
    current_name,
    import_bm25s,
    is_version_name,
    list_versions,
    open_current,
    read_current,
    write_current,
    write_sqlite,
)

log = logging.getLogger(__name__)

LOCK = "build.lock"
BUILDING_PREFIX = ".building-"


PAUSE_POINTS = ("embedding", "writing", "switch")


@dataclass(slots=True)
class BuildProgress:
    """A progress tick: how far the embedding has got, how fast, and how long is left."""

    stage: str
    chunks_done: int
    chunks_total: int
    articles_done: int
    articles_total: int
    elapsed: float

    @property
    def chunks_per_second(self) -> float:
        """Embedding speed so far."""
        return self.chunks_done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def articles_per_second(self) -> float:
        """Articles fully embedded per second so far."""
        return self.articles_done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def seconds_left(self) -> float | None:
        """Estimated time to finish the embedding, None before the first batch."""
        rate = self.chunks_per_second
        return (self.chunks_total - self.chunks_done) / rate if rate > 0 else None

    def line(self) -> str:
        """One human line: counts, rates and time left."""
        left = self.seconds_left
        eta = "?" if left is None else _duration(left)
        return (
            f"{self.stage}: {self.chunks_done}/{self.chunks_total} chunks, "
            f"{self.articles_done}/{self.articles_total} articles; "
            f"{self.chunks_per_second:.1f} chunks/s, {self.articles_per_second:.1f} articles/s; {eta} left"
        )


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


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
    # Test-only: stop at this point (embedding|writing|switch), leave a marker file and sleep,
    # so crash-safety tests can kill the build there deterministically (NEWSQA_TEST_PAUSE_AT).
    pause_at: str | None = None
    # Also store a vector per sentence/clause of each chunk, so answering never encodes them
    # (NEWSQA_SENTENCE_VECTORS).
    sentence_vectors: bool = False
    # Sentence vectors pooled from the chunk's own forward pass instead of a second encoding of every
    # sentence (NEWSQA_LATE_CHUNKING; where the model is mean-pooled, index/late_chunking.py). Off by
    # default: it costs English questions over Arabic news quote recall (bench/RESULTS.md).
    late_chunking: bool = False
    # Embed on Ray (index/ray_embed.py): the cluster at ray_address (NEWSQA_RAY_ADDRESS, RAY_ADDRESS), else a local instance.
    ray: bool = False
    ray_address: str | None = None
    # Keep the corpus's words with their vectors (index/lexicon.py) so questions in another language
    # reach the Arabic terms they mean (NEWSQA_LEXICON).
    lexicon: bool = True


def sentence_method(embedder: Embedder, opts: BuildOptions) -> str | None:
    """How this build makes sentence vectors: `late-chunking`, `separate` (encoded one by one), or None."""
    if not opts.sentence_vectors:
        return None
    late = opts.late_chunking and getattr(embedder, "late_chunking", False) is True
    return "late-chunking" if late else "separate"


def _pause_point(opts: BuildOptions, index_dir: Path, stage: str) -> None:
    """Test hook: write `pause-<stage>.marker` (our pid) into index_dir and sleep until killed."""
    if opts.pause_at != stage:
        return
    log.warning("NEWSQA_TEST_PAUSE_AT=%s: build %d paused for a crash test", stage, os.getpid())
    marker = index_dir / f"pause-{stage}.marker"
    tmp = marker.with_name(f".{marker.name}.{os.getpid()}")
    tmp.write_text(f"{os.getpid()}\n")
    os.replace(tmp, marker)  # a watcher never sees the marker without the pid in it
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        time.sleep(0.05)


class IndexLock:
    """`build.lock` held with flock(2): the kernel releases it when the holder exits or is killed.

    The holder's pid is written into the file only so a refused build can name it. The file is
    removed on release; a waiter that locked the removed file notices (inode changed) and retries.
    """

    def __init__(self, index_dir: Path, wait_seconds: float = 0.0) -> None:
        self.path = index_dir / LOCK
        self.wait_seconds = wait_seconds
        self._fd: int | None = None

    def __enter__(self) -> IndexLock:
        deadline = time.monotonic() + self.wait_seconds
        while True:
            fd = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = self._holder(fd)
                os.close(fd)
                if time.monotonic() >= deadline:
                    raise IndexLockedError(
                        f"another index build (pid {holder}) is running on {self.path.parent}; "
                        f"wait for it to finish or pass --wait SECONDS (lock file {self.path})"
                    ) from None
                time.sleep(0.1)
                continue
            if not self._still_linked(fd):  # released and removed between our open and our lock
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            self._fd = fd
            return self

    def _open(self) -> int:
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise IndexReadOnlyError(
                f"cannot write to {self.path.parent}: {(exc.strerror or str(exc)).lower()} "
                f"(an update writes its lock and a new version there; set NEWSQA_INDEX_DIR or --index-dir to a writable folder)"
            ) from None

    def _still_linked(self, fd: int) -> bool:
        try:
            on_disk = os.stat(self.path)
        except FileNotFoundError:
            return False
        mine = os.fstat(fd)
        return (on_disk.st_dev, on_disk.st_ino) == (mine.st_dev, mine.st_ino)

    @staticmethod
    def _holder(fd: int) -> str:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return text if text.isdigit() else "?"

    def __exit__(self, *exc: object) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)  # while still holding it: waiters re-check the inode
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def _library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("faiss-cpu", "sentence-transformers", "bm25s", "torch", "numpy", "transformers"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


VERSION_COUNTER = ".last-version"


def _next_version_name(index_dir: Path) -> str:
    """A name above every one used here: version folders on disk (damaged ones included), CURRENT and the counter.

    The counter (.last-version beside CURRENT, see _claim_version_name) remembers names whose folders
    were removed since, so a name is never given to two versions, even when a damaged one is swept away.
    """
    root = index_dir / VERSIONS
    used = [0]
    if root.is_dir():
        used.extend(int(p.name[1:]) for p in root.iterdir() if is_version_name(p.name))
    current = read_current(index_dir)
    if current:
        used.append(int(current[1:]))
    try:
        used.append(int((index_dir / VERSION_COUNTER).read_text(encoding="ascii").strip()))
    except (OSError, ValueError, UnicodeDecodeError):
        pass
    return f"v{max(used) + 1:06d}"


def _claim_version_name(index_dir: Path, name: str) -> None:
    """Record `name` as used (durably) before its folder is renamed into place."""
    tmp = index_dir / f"{VERSION_COUNTER}.{os.getpid()}.tmp"
    tmp.write_text(f"{int(name[1:])}\n", encoding="ascii")
    fsync_file(tmp)
    os.replace(tmp, index_dir / VERSION_COUNTER)
    fsync_dir(index_dir)


def clean_abandoned_builds(index_dir: Path) -> list[str]:
    """Remove half-written build folders and pointer files left by killed builds.

    Called only while holding the build lock, before this build writes anything: whatever is in
    progress on disk then belongs to a build that is gone.
    """
    removed = []
    root = index_dir / VERSIONS
    current = read_current(index_dir)
    if root.is_dir():
        for p in root.iterdir():
            # A version folder without its manifest is damage (folders are renamed into place after it
            # is written); its name stays used (see _next_version_name). The current one is left to
            # the next update, which makes a new current version first.
            if p.name.startswith(BUILDING_PREFIX) or (
                p.name.startswith("v") and p.name != current and not (p / MANIFEST).is_file()
            ):
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p.name)
    for p in [*index_dir.glob(".CURRENT.*.tmp"), *index_dir.glob(f"{VERSION_COUNTER}.*.tmp")]:  # writes cut short
        p.unlink(missing_ok=True)
        removed.append(p.name)
    return removed


MIN_KEEP_VERSIONS = 2


def prune_versions(index_dir: Path, keep: int) -> list[str]:
    """Delete the oldest complete versions beyond `keep`, never the current one.

    At least two are kept: the one a searcher may still be answering from stays on disk.
    """
    keep = max(keep, MIN_KEEP_VERSIONS)
    current = read_current(index_dir)
    versions = list_versions(index_dir)
    doomed = [v for v in versions[: max(0, len(versions) - keep)] if v != current]
    for name in doomed:
        shutil.rmtree(index_dir / VERSIONS / name, ignore_errors=True)
    return doomed


class _Versioned(Protocol):
    manifest: dict


def _reusable(prev: _Versioned | None, embedder: Embedder, dim: int, opts: BuildOptions) -> tuple[bool, str | None]:
    """Whether stored vectors may be reused: same model, same dimension, same chunking."""
    if prev is None:
        return False, "no previous index"
    if opts.full:
        return False, "full rebuild requested"
    model = prev.manifest.get("model", {})
    if model.get("name") != embedder.name:
        return False, f"embedding model changed ({model.get('name')} → {embedder.name})"
    if int(model.get("dim", -1)) != dim:
        return False, f"embedding dimension changed ({model.get('dim')} → {dim})"
    built_fp, fp = model.get("fingerprint"), model_fingerprint_of(embedder)
    if built_fp != fp:
        return False, f"embedding model weights changed ({_short(built_fp)} → {_short(fp)})"
    tokenizer = tokenizer_fingerprint_of(embedder)
    if tokenizer is not None and model.get("tokenizer") != tokenizer:
        if model.get("tokenizer") is None:
            return False, "the tokenizer was not recorded (an index from before tokenizer fingerprints)"
        return False, f"the tokenizer changed ({_short(model.get('tokenizer'))} → {_short(tokenizer)})"
    built_backend, backend = model.get("backend", "torch"), getattr(embedder, "backend", "torch")
    if built_backend != backend:
        return False, f"embedding backend changed ({built_backend} → {backend})"
    if (built_recipe := model.get("int8_recipe")) != (recipe := int8_recipe_of(embedder)):
        return False, f"int8 quantisation recipe changed ({built_recipe} → {recipe})"
    method = sentence_method(embedder, opts)
    built_method = (prev.manifest.get("sentences") or {}).get("method", "separate")
    if method is not None and prev.manifest.get("sentences") and built_method != method:
        return False, f"sentence vectors made another way ({built_method} → {method})"
    analyser = prev.manifest.get("analyser", {}).get("version")
    if analyser != ANALYSER_VERSION:
        return False, f"text analyser changed (version {analyser} → {ANALYSER_VERSION})"
    chunking = prev.manifest.get("chunking", {})
    if chunking != {"max_chars": opts.max_chars, "min_chars": opts.min_chars}:
        return False, "chunking settings changed"
    return True, None


def _short(fingerprint: str | None) -> str:
    return fingerprint[:19] if fingerprint else "none recorded"


@dataclass(slots=True)
class _Plan:
    """Which chunk rows of the new version come from the old one and which need embedding."""

    chunks_per_article: list[list[Chunk]]
    sources: list[tuple[str, int]]  # per chunk row: ("prev", old row) or ("new", index into to_embed)
    to_embed: list[Chunk]
    embed_article: list[int]  # per to_embed item: index of its article


def _plan(
    articles: list[Article],
    chunks_per_article: list[list[Chunk]],
    prev_articles: dict[str, tuple[int, str]],
    prev_chunk_rows: dict[int, list[int]],
    reuse: bool,
) -> _Plan:
    sources: list[tuple[str, int]] = []
    to_embed: list[Chunk] = []
    embed_article: list[int] = []
    for i, (article, chunks) in enumerate(zip(articles, chunks_per_article)):
        known = prev_articles.get(article.id)
        old_rows = prev_chunk_rows.get(known[0], []) if (reuse and known and known[1] == article.content_hash) else []
        if old_rows and len(old_rows) == len(chunks):
            sources.extend(("prev", r) for r in old_rows)
        else:
            for c in chunks:
                sources.append(("new", len(to_embed)))
                to_embed.append(c)
                embed_article.append(i)
    return _Plan(chunks_per_article, sources, to_embed, embed_article)


@dataclass(slots=True)
class PreviousRows:
    """What an update needs of the version it replaces: each article's row, digest and path, each article's chunk rows."""

    articles: dict[str, tuple[int, str]] = field(default_factory=dict)  # id → (row, content hash)
    paths: dict[str, str] = field(default_factory=dict)
    chunk_rows: dict[int, list[int]] = field(default_factory=dict)  # article row → chunk rows in order


def previous_rows(prev: IndexVersion) -> PreviousRows:
    """The rows of a local version, from its SQLite store."""
    known = PreviousRows()
    for row, aid, digest, path in prev.db.execute("SELECT row, id, content_hash, path FROM articles"):
        known.articles[aid] = (row, digest)
        known.paths[aid] = path
    for row, article_row in prev.db.execute("SELECT row, article_row FROM chunks ORDER BY article_row, ord"):
        known.chunk_rows.setdefault(article_row, []).append(row)
    return known


def plan_changes(
    corpus_dir: Path, loaded: CorpusLoad, known: PreviousRows, reuse: bool, opts: BuildOptions, report: BuildReport
) -> tuple[list[Article], _Plan, int]:
    """Count what changed since the previous version and plan which rows to reuse and which to embed.

    Returns the articles, the plan and how many unchanged articles moved to another file.
    """
    articles = loaded.articles
    if not articles and known.articles:
        raise EmptyCorpusError(
            f"{corpus_dir} yields no articles ({len(loaded.rejected)} rejected) while the index holds "
            f"{len(known.articles)}; refusing to replace it with an empty index (is the folder mounted?)"
        )
    current_ids = {a.id for a in articles}
    for article in articles:
        seen = known.articles.get(article.id)
        if seen is None:
            report.added += 1
        elif seen[1] != article.content_hash:
            report.changed += 1
        else:
            report.unchanged += 1
    report.removed = sum(1 for aid in known.articles if aid not in current_ids)
    moved = sum(1 for a in articles if a.id in known.paths and known.paths[a.id] != a.path)
    if moved:
        report.notices.append(f"{moved} unchanged article(s) now in another file; their paths are updated")
    report.total_articles = len(articles)
    chunks_per_article = [chunk_article(a, opts.max_chars, opts.min_chars) for a in articles]
    plan = _plan(articles, chunks_per_article, known.articles, known.chunk_rows, reuse)
    report.total_chunks = len(plan.sources)
    return articles, plan, moved


def unchanged(plan: _Plan, reuse: bool, report: BuildReport, moved: int) -> bool:
    """Whether the corpus matches the current version exactly: then nothing is written or embedded."""
    return reuse and not plan.to_embed and report.removed == report.changed == report.added == moved == 0


def evidence_wanted(prev: _Versioned | None) -> bool:
    """Whether the current version lacks this code's stored chunk evidence (built before it was stored, or
    analysed under another EVIDENCE_VERSION): then an update writes a new version, re-embedding nothing."""
    return prev is not None and prev.manifest.get("evidence", {}).get("version") != EVIDENCE_VERSION


def lexicon_wanted(prev: _Versioned | None, opts: BuildOptions) -> bool:
    """Whether the current version lacks the lexicon the options ask for (built before lexicons, or with
    NEWSQA_LEXICON=false): then an update writes a new version even when no article changed."""
    return opts.lexicon and prev is not None and not prev.manifest.get("lexicon")


def update_index(
    corpus_dir: Path,
    index_dir: Path,
    embedder: Embedder,
    opts: BuildOptions = BuildOptions(),
    progress: Callable[[BuildProgress], None] | None = None,
    corpus: CorpusLoad | None = None,
) -> BuildReport:
    """Bring the index in line with the corpus; unchanged articles reuse their stored vectors.

    When nothing changed the embedding model is neither loaded nor called.
    """
    started = time.perf_counter()
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise IndexReadOnlyError(f"cannot write to {index_dir}: {(exc.strerror or str(exc)).lower()}") from None
    with IndexLock(index_dir, opts.lock_wait_seconds):
        clean_abandoned_builds(index_dir)
        loaded = corpus if corpus is not None else load_corpus(corpus_dir, opts.max_article_bytes)
        report = BuildReport(version=read_current(index_dir), switched=False, rejected=loaded.rejected, notices=loaded.notices)
        prev, distrust = _trusted_previous(index_dir)
        dim = embedder.dim  # read from the model's configs: no model load when nothing changed
        reuse, reason = _reusable(prev, embedder, dim, opts)
        if distrust and prev is None:
            reason = distrust
        report.full_rebuild_reason = None if reuse else reason

        known = previous_rows(prev) if prev is not None else PreviousRows()
        articles, plan, moved = plan_changes(corpus_dir, loaded, known, reuse, opts, report)

        store_evidence = evidence_wanted(prev)
        if unchanged(plan, reuse, report, moved) and not lexicon_wanted(prev, opts) and not store_evidence and not second_wanted(prev):
            report.seconds = time.perf_counter() - started
            return report  # nothing changed: the current version stays, nothing is written or embedded
        if reuse and store_evidence:
            report.notices.append("this version also stores each chunk's analysed evidence (read by questions instead of re-analysing)")
        if reuse and second_wanted(prev):
            report.notices.append("this version also stores each chunk's second-encoder vector (read by questions instead of encoding candidates)")

        name = _next_version_name(index_dir)
        tmp = index_dir / VERSIONS / f"{BUILDING_PREFIX}{os.getpid()}-{name}"
        final = index_dir / VERSIONS / name
        tmp.mkdir(parents=True)
        try:
            with ray_session(opts.ray_address) if opts.ray else contextlib.nullcontext():
                _write_version(tmp, articles, plan, prev, embedder, dim, opts, report, progress, index_dir)
            _claim_version_name(index_dir, name)
            os.rename(tmp, final)
            fsync_dir(index_dir / VERSIONS)
            verify_version(final)
            _pause_point(opts, index_dir, "switch")
            write_current(index_dir, name)
        except BaseException:  # Ctrl-C included: drop what was written, the old version stays current
            shutil.rmtree(tmp, ignore_errors=True)
            if final.exists() and read_current(index_dir) != name:
                shutil.rmtree(final, ignore_errors=True)
            raise
        report.version = name
        report.switched = True
        prune_versions(index_dir, opts.keep_versions)
        report.seconds = time.perf_counter() - started
        return report


def _trusted_previous(index_dir: Path) -> tuple[IndexVersion | None, str | None]:
    """The current version when every file of it checks out, else (None, why it is not trusted).

    Rows are reused from it only after each file's checksum matched its manifest (or, for a version
    from before checksums, never). Anything wrong with it or with CURRENT costs a full rebuild, never the update.
    """
    try:
        name = current_name(index_dir)
    except IndexDamagedError as exc:
        return None, f"the index pointer {CURRENT} is damaged ({exc.file}: {exc.reason})"
    if name is None:
        return None, None
    try:
        prev = open_current(index_dir)
    except IndexDamagedError as exc:
        return None, f"previous version {exc.version or name} is damaged ({exc.file}: {exc.reason})"
    except Exception as exc:  # an unreadable previous version only costs a full rebuild
        log.info("previous version unreadable", exc_info=True)
        return None, f"previous version {name} is unreadable ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
    if "files" not in prev.manifest:
        prev.close()
        return None, f"previous version {name} has no checksums to verify its rows against"
    problems: list[Problem] = [] if prev.checksums_verified else check_files(prev.path, prev.manifest, hashes=True)
    if problems:
        prev.close()
        return None, f"previous version {name} is damaged ({problems[0].file}: {problems[0].reason})"
    return prev, None


def verify_version(path: Path) -> None:
    """Load a freshly written version and check its parts agree, before it may become current."""
    version = IndexVersion(path)
    try:
        (articles,) = version.db.execute("SELECT count(*) FROM articles").fetchone()
        (chunks,) = version.db.execute("SELECT count(*) FROM chunks").fetchone()
        vectors = version.vectors.shape[0]
        if (articles, chunks, vectors) != (version.n_articles, version.n_chunks, version.n_chunks):
            raise IndexCorruptError(
                f"{path}: store holds {articles} articles, {chunks} chunks and {vectors} vectors; "
                f"manifest says {version.n_articles} and {version.n_chunks}"
            )
    finally:
        version.close()


def _sentence_spans(chunk: Chunk, body: str) -> list[tuple[int, int]]:
    """The chunk's sentences as character spans of its embed_text (heading line first when there is one)."""
    shift = len(chunk.section) + 1 if chunk.section else 0
    return [(a - chunk.start + shift, b - chunk.start + shift) for a, b in chunk_sentences(body, chunk.start, chunk.end)]


def sentence_texts(body: str, chunk: Chunk) -> list[str]:
    """A chunk's sentences as the stored sentence vectors cut them."""
    return [body[s:e] for s, e in chunk_sentences(body, chunk.start, chunk.end)]


def chunk_sentence_texts(plan: _Plan, articles: list[Article]) -> list[list[str]]:
    """The sentences of each chunk to embed, in plan.to_embed order."""
    return [sentence_texts(articles[a].body, c) for c, a in zip(plan.to_embed, plan.embed_article)]


def split_rows(vectors: np.ndarray, groups: list[list[str]]) -> list[np.ndarray]:
    """Consecutive slices of `vectors`, one per group of texts encoded in order, as many rows as it has texts."""
    bounds = np.cumsum([0] + [len(g) for g in groups])
    return [vectors[bounds[i] : bounds[i + 1]] for i in range(len(groups))]


def _embed_by_length(
    plan: _Plan,
    articles: list[Article],
    embedder: Embedder,
    dim: int,
    opts: BuildOptions,
    report: BuildReport,
    progress: Callable[[BuildProgress], None] | None,
    index_dir: Path,
) -> tuple[np.ndarray, list[np.ndarray] | None, int, float]:
    """Vectors of plan.to_embed (in its order), encoded in batches of similar length.

    With late chunking also each chunk's sentence vectors from the same pass; on Ray (with sentence vectors) each
    chunk's sentences encoded in the same pipeline as the chunks, so every worker loads the model once per build,
    not twice; else None. Also returns
    how many articles were embedded and when embedding began (for progress).

    Batching in corpus order pads every short chunk to its batch's longest; sorting by length
    first (as model.encode does within one call) keeps the build at raw encoding speed.
    """
    to_embed = plan.to_embed
    new_vectors = np.zeros((len(to_embed), dim), dtype=np.float32)
    late = sentence_method(embedder, opts) == "late-chunking"
    new_units: list[np.ndarray] = [np.zeros((0, dim), np.float32)] * len(to_embed)
    batch_size = getattr(embedder, "batch_size_for", lambda b: b)(opts.batch_size)
    order = sorted(range(len(to_embed)), key=lambda i: len(to_embed[i].embed_text))
    pending: dict[int, int] = {}
    for a in plan.embed_article:
        pending[a] = pending.get(a, 0) + 1
    articles_to_embed = len(pending)
    if opts.ray and late:
        raise RayBuildError("late chunking (NEWSQA_LATE_CHUNKING) cannot be combined with --ray yet; turn one off")
    if opts.ray and to_embed:  # the workers load their own copies of the model: none is loaded here
        embed_started = time.perf_counter()
        texts = [to_embed[i].embed_text for i in order]
        sentences = chunk_sentence_texts(plan, articles) if opts.sentence_vectors else []
        got = encode_passages_on_ray(embedder, texts + [t for ts in sentences for t in ts], batch_size, address=opts.ray_address)
        new_vectors[order] = got[: len(texts)]
        units = split_rows(got[len(texts) :], sentences) if opts.sentence_vectors else None
        report.embedded_chunks += len(to_embed)
        if progress:
            progress(BuildProgress("embedding", len(to_embed), len(to_embed), articles_to_embed, articles_to_embed,
                                   time.perf_counter() - embed_started))
        _pause_point(opts, index_dir, "embedding")
        return new_vectors, units, articles_to_embed, embed_started
    load = getattr(embedder, "load", None)
    if to_embed and load is not None:
        load()  # a model load is not embedding: keep it out of the rates and the time left
    embed_started = time.perf_counter()
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        texts = [to_embed[i].embed_text for i in rows]
        if late:
            spans = [_sentence_spans(to_embed[i], articles[plan.embed_article[i]].body) for i in rows]
            got, units = embedder.encode_passages_with_spans(texts, spans, batch_size)  # type: ignore[attr-defined]
            for i, u in zip(rows, units):
                new_units[i] = u
        else:
            got = embedder.encode_passages(texts, batch_size)
        if got.shape != (len(rows), dim):
            raise ModelMismatchError(f"{embedder.name} returned vectors of shape {got.shape}, expected {(len(rows), dim)}")
        new_vectors[rows] = got
        report.embedded_chunks += len(rows)
        if progress:
            for i in rows:
                a = plan.embed_article[i]
                pending[a] -= 1
                if not pending[a]:
                    del pending[a]
            progress(  # articles_done: articles whose every chunk has its vector
                BuildProgress(
                    "embedding", report.embedded_chunks, len(to_embed), articles_to_embed - len(pending),
                    articles_to_embed, time.perf_counter() - embed_started,
                )
            )
        if start == 0:
            _pause_point(opts, index_dir, "embedding")
    return new_vectors, (new_units if late else None), articles_to_embed, embed_started


def encode_texts(embedder: Embedder, texts: list[str], dim: int, opts: BuildOptions) -> np.ndarray:
    """Passage vectors of `texts` in their order: on Ray when the build asks for it, else here, by length."""
    if opts.ray and texts:
        return encode_passages_on_ray(embedder, texts, opts.batch_size, address=opts.ray_address)
    return encode_sorted(embedder, texts, dim, opts.batch_size)


def encode_sorted(embedder: Embedder, texts: list[str], dim: int, batch_size: int) -> np.ndarray:
    """Passage vectors of `texts` in their order, encoded in batches of similar length (no padding waste)."""
    out = np.zeros((len(texts), dim), dtype=np.float32)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        out[rows] = embedder.encode_passages([texts[i] for i in rows], batch_size)
    return out


def _write_sentence_vectors(
    tmp: Path, articles: list[Article], plan: _Plan, prev: IndexVersion | None, embedder: Embedder, dim: int,
    opts: BuildOptions, new_units: list[np.ndarray] | None,
) -> int:
    """sentences.npy (float16, all chunks' sentences in row order) and sentence_offsets.npy (n_chunks + 1).

    A reused chunk takes its sentence vectors from the previous version when it has them; a new one from
    the chunk's own forward pass or the chunks' Ray pipeline (new_units), or else by encoding its sentences.
    """
    texts_of = [sentence_texts(article.body, c) for cs, article in zip(plan.chunks_per_article, articles) for c in cs]
    offsets = np.zeros(len(texts_of) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(t) for t in texts_of])
    out = np.lib.format.open_memmap(tmp / "sentences.npy", mode="w+", dtype=np.float16, shape=(int(offsets[-1]), dim))
    prev_units = prev.sentence_vectors() if prev is not None else None
    todo: list[tuple[int, str]] = []  # (global sentence index, text)
    for row, (kind, ref) in enumerate(plan.sources):
        a, b = offsets[row], offsets[row + 1]
        if kind == "prev" and prev_units is not None:
            pv, po = prev_units
            if po[ref + 1] - po[ref] == b - a:
                out[a:b] = pv[po[ref] : po[ref + 1]]
                continue
        if kind == "new" and new_units is not None and len(new_units[ref]) == b - a:
            out[a:b] = new_units[ref].astype(np.float16)
            continue
        todo.extend((a + i, t) for i, t in enumerate(texts_of[row]))
    if todo:  # with Ray the sentences go through the same pipeline as the chunks
        vecs = encode_texts(embedder, [t for _, t in todo], dim, opts)
        for (i, _), v in zip(todo, vecs):
            out[i] = v.astype(np.float16)
    out.flush()
    del out
    np.save(tmp / "sentence_offsets.npy", offsets)
    return int(offsets[-1])


def _write_second_vectors(tmp: Path, articles: list[Article], plan: _Plan, prev: IndexVersion | None) -> dict:
    """second.npy: each chunk's vector from the second encoder (index/second_encoder.py), reused rows copied from the
    previous version when it stored the same encoder's, the others encoded here (~12 ms a chunk)."""
    encoder = shared_encoder()
    texts = [article.body[c.start : c.end] for cs, article in zip(plan.chunks_per_article, articles) for c in cs]
    out = np.lib.format.open_memmap(tmp / SECOND_FILE, mode="w+", dtype=np.float16, shape=(len(texts), encoder.dim))
    todo = second_rows_to_encode(plan, prev)
    if len(todo) < len(texts):  # the rest are kept rows of a previous version that stores this encoder's
        previous = prev.second_vectors() if prev is not None else None
        assert previous is not None, "kept rows without stored second-encoder vectors"
        pending = set(todo)
        for row, (_, ref) in enumerate(plan.sources):
            if row not in pending:
                out[row] = previous[ref : ref + 1][0]
    started = time.perf_counter()
    for start in range(0, len(todo), SECOND_BATCH):
        rows = todo[start : start + SECOND_BATCH]
        out[rows] = encoder.encode([texts[r] for r in rows]).astype(np.float16)
    out.flush()
    del out
    return {"encoder": encoder.name, "dim": encoder.dim, "embedded": len(todo), "seconds": round(time.perf_counter() - started, 2)}


def second_rows_to_encode(plan: _Plan, prev: _Versioned | None) -> list[int]:
    """Rows whose second-encoder vector must be encoded: new chunks, and kept ones when the previous version stored
    none of this encoder's (the local and Qdrant builds alike)."""
    kept_have = second_name(prev) == SECOND_NAME
    return [row for row, (kind, _) in enumerate(plan.sources) if kind == "new" or not kept_have]


def second_name(prev: _Versioned | None) -> str | None:
    """The second encoder whose chunk vectors a version stores, None when it stores none (built before them)."""
    return ((prev.manifest.get("second") or {}).get("encoder")) if prev is not None else None


def second_wanted(prev: _Versioned | None) -> bool:
    """Whether the current version lacks this code's second-encoder vectors: then an update writes a new version,
    encoding only those."""
    return prev is not None and second_name(prev) != SECOND_NAME


def _chunk_evidence(articles: list[Article], plan: _Plan, prev: IndexVersion | None) -> list[str]:
    """Each chunk's packed evidence (index/evidence.py), in row order: a reused chunk's from the previous version
    when it stored this analyser's, any other analysed from its text now (~0.3 ms a chunk)."""
    reused = any(kind == "prev" for kind, _ in plan.sources)
    stored = prev.stored_evidence() if prev is not None and reused else None  # a full rebuild reads none of it
    out: list[str] = []
    chunks = (c for cs in plan.chunks_per_article for c in cs)
    owners = (a for cs, a in zip(plan.chunks_per_article, articles) for _ in cs)
    for (kind, ref), chunk, article in zip(plan.sources, chunks, owners):
        packed = stored[ref] if kind == "prev" and stored is not None else None
        out.append(packed if packed is not None else pack(analyse_span(article.body[chunk.start : chunk.end])))
    return out


def _write_lexicon(
    tmp: Path, chunks: list[Chunk], vocabulary: dict, prev: IndexVersion | None, embedder: Embedder, opts: BuildOptions
) -> dict | None:
    """lexicon.npz: every BM25 term's corpus word and its vector, words the previous version knew reused."""
    if not opts.lexicon:
        return None
    started = time.perf_counter()
    previous = prev.lexicon() if prev is not None else None
    lexicon, embedded = build_lexicon((c.embed_text for c in chunks), set(vocabulary), embedder, previous, max(opts.batch_size, 256))
    save_lexicon(lexicon, tmp / LEXICON_FILE)
    return {"count": len(lexicon), "embedded": embedded, "seconds": round(time.perf_counter() - started, 2)}


def _write_version(
    tmp: Path,
    articles: list[Article],
    plan: _Plan,
    prev: IndexVersion | None,
    embedder: Embedder,
    dim: int,
    opts: BuildOptions,
    report: BuildReport,
    progress: Callable[[BuildProgress], None] | None,
    index_dir: Path,
) -> None:
    bm25s = import_bm25s()
    chunks_per_article, sources, to_embed = plan.chunks_per_article, plan.sources, plan.to_embed
    n = len(sources)
    vectors = np.lib.format.open_memmap(tmp / "vectors.npy", mode="w+", dtype=np.float32, shape=(n, dim))
    new_vectors, new_units, articles_to_embed, embed_started = _embed_by_length(
        plan, articles, embedder, dim, opts, report, progress, index_dir
    )
    prev_vectors = prev.vectors if prev is not None else None
    for row, (kind, ref) in enumerate(sources):
        vectors[row] = prev_vectors[ref] if kind == "prev" else new_vectors[ref]
    vectors.flush()
    del vectors
    with LOAD_LOCK:  # see index/store.py: .npy headers are parsed one thread at a time
        vectors = np.load(tmp / "vectors.npy", mmap_mode="r")

    n_sentences = (
        _write_sentence_vectors(tmp, articles, plan, prev, embedder, dim, opts, new_units) if opts.sentence_vectors else None
    )

    if progress:
        progress(
            BuildProgress(
                "writing", report.embedded_chunks, len(to_embed), articles_to_embed, articles_to_embed,
                time.perf_counter() - embed_started,
            )
        )
    all_chunks = [c for cs in chunks_per_article for c in cs]
    chunk_article = np.array([i for i, cs in enumerate(chunks_per_article) for _ in cs], dtype=np.int32)
    np.save(tmp / "chunk_article.npy", chunk_article)
    second = _write_second_vectors(tmp, articles, plan, prev)

    if all_chunks:
        retriever = bm25s.BM25()
        retriever.index([terms(c.embed_text) for c in all_chunks], show_progress=False)
        retriever.save(str(tmp / "lexical"), show_progress=False)
    else:
        (tmp / "lexical").mkdir()
    reusable = prev if report.full_rebuild_reason is None else None  # another model's word vectors are not these
    lexicon = _write_lexicon(tmp, all_chunks, retriever.vocab_dict if all_chunks else {}, reusable, embedder, opts)

    kind = choose_kind(n, opts.faiss_kind)
    write_faiss(build_faiss(np.asarray(vectors), kind), tmp / "dense.faiss")
    _pause_point(opts, index_dir, "writing")
    write_sqlite(tmp / "meta.sqlite", articles, chunks_per_article, _chunk_evidence(articles, plan, prev))

    dates = [a.date for a in articles]
    manifest = {
        "format": FORMAT_VERSION,
        "version": tmp.name.split("-")[-1],
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": {
            "name": embedder.name, "dim": dim, "backend": getattr(embedder, "backend", "torch"),
            "fingerprint": model_fingerprint_of(embedder), "tokenizer": tokenizer_fingerprint_of(embedder),
            **({"int8_recipe": recipe} if (recipe := int8_recipe_of(embedder)) is not None else {}),  # int8 passages only
        },
        "analyser": {"version": ANALYSER_VERSION},
        "evidence": {"version": EVIDENCE_VERSION},
        "chunking": {"max_chars": opts.max_chars, "min_chars": opts.min_chars},
        "faiss": {"kind": kind},
        "sentences": {"count": n_sentences, "method": sentence_method(embedder, opts)} if n_sentences is not None else None,
        "counts": {"articles": len(articles), "chunks": n},
        "lexicon": lexicon,
        "second": second,
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
    fsync_tree(tmp)  # the files are on disk before the checksums that vouch for them
    manifest["files"] = checksum_files(tmp)
    manifest_path = tmp / MANIFEST
    manifest_path.write_text(json.dumps(seal_manifest(manifest), ensure_ascii=False, indent=1), encoding="utf-8")
    fsync_file(manifest_path)
    fsync_dir(tmp)
