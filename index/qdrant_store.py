"""The index kept in Qdrant: one set of collections per version, an alias as CURRENT, manifests beside them.

    <prefix>_<version>_chunks     one point per chunk row: named vectors `dense` (the chunk), `sentences`
                                  (a multivector of its quotable sentences, not indexed) and `bm25` (sparse,
                                  IDF computed by the engine); payload: offsets, section, article row/id,
                                  outlet and date (filters)
    <prefix>_<version>_articles   one point per article row, no vectors: the original text and its metadata
    <prefix>_<version>_terms      one point per hashed term: its document frequency (questions' term weights)
    <prefix>_<version>_lexicon    one point per BM25 term that has a corpus word, by row of the terms' sorted order:
                                  the word's unit vector `word` and payload term and word (index/lexicon.py);
                                  searched for the Arabic terms an English question's words mean
    <prefix>_manifests            one point per complete version: its manifest, written after every point
    alias <prefix>_current        → the current version's chunks collection, moved in one atomic request

A version without its manifest is a build cut short: it is never made the alias target, and the next
build (holding the build lock) deletes its collections. Readers hold a loaded version until they look
at the alias again; pruning keeps at least two versions so a question in flight keeps its collections.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from datetime import datetime
from functools import cached_property
from typing import Any

import numpy as np

from index.articles import Paragraph
from index.errors import IndexCorruptError, IndexNotFoundError, NewsqaError
from index.lexicon import TIE_MARGIN, Lexicon
from index.sparse import idf, term_id
from index.store import FORMAT_VERSION, ArticleRecord, ChunkRecord, is_version_name

MIN_KEEP_VERSIONS = 2
CACHE_ITEMS = 2_048  # chunk and article records kept per loaded version (LRU)
SCROLL_PAGE = 1_024


class QdrantUnavailableError(NewsqaError):
    """qdrant-client is not installed, or the server cannot be reached."""


def connect(url: str | None = None, path: str | None = None, api_key: str | None = None, timeout: float = 30.0) -> Any:
    """A QdrantClient: a server at `url`, or local mode (in-process, no network) in folder `path` or ":memory:"."""
    try:
        from qdrant_client import QdrantClient
    except ImportError:
        raise QdrantUnavailableError(
            "NEWSQA_BACKEND=qdrant needs qdrant-client: pip install 'newsqa[qdrant]' "
            "(or NEWSQA_EXTRAS=dev,qdrant bash scripts/install.sh)"
        ) from None
    if url:
        client = QdrantClient(url=url, api_key=api_key or None, timeout=int(timeout), check_compatibility=False)
        try:
            client.get_collections()  # one cheap request: an unreachable server or a wrong key is said here, once
        except Exception as exc:  # httpx/grpc errors, or an unexpected answer (401 for a wrong API key)
            reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise QdrantUnavailableError(f"Qdrant at {url} cannot be used: {reason} (NEWSQA_QDRANT_URL, NEWSQA_QDRANT_API_KEY)") from None
        return client
    if path and path != ":memory:":
        return QdrantClient(path=path)
    return QdrantClient(location=":memory:")


def epoch_minutes(when: datetime) -> int:
    """A date as whole minutes since 1970 (naive dates read as UTC): what date filters compare."""
    return int(np.datetime64(when.replace(tzinfo=None), "m").astype(np.int64))


class QdrantStore:
    """The versions of one index (one prefix) on one Qdrant deployment."""

    def __init__(self, client: Any, prefix: str = "newsqa", shards: int = 1, replicas: int = 1, write_consistency: int = 1) -> None:
        self.client = client
        self.prefix = prefix
        self.shards = shards  # collection layout on a cluster (docs/scale-out.md); local mode has one of everything
        self.replicas = replicas
        self.write_consistency = write_consistency

    @property
    def remote(self) -> bool:
        """Whether the client talks to a server (local mode runs in this process, for tests and trials)."""
        from qdrant_client.local.qdrant_local import QdrantLocal

        return not isinstance(getattr(self.client, "_client", None), QdrantLocal)

    # --- names ---------------------------------------------------------------------------
    def collection(self, version: str, part: str) -> str:
        """The collection holding `part` (chunks, articles, terms, lexicon) of a version."""
        return f"{self.prefix}_{version}_{part}"

    @property
    def alias(self) -> str:
        """The alias readers follow: CURRENT."""
        return f"{self.prefix}_current"

    @property
    def manifests(self) -> str:
        """The collection of manifests (one point per complete version)."""
        return f"{self.prefix}_manifests"

    @property
    def where(self) -> str:
        """How messages name this index."""
        return f"Qdrant collections {self.prefix}_*"

    def _version_of(self, collection: str) -> str | None:
        head = f"{self.prefix}_"
        if not collection.startswith(head):
            return None
        name = collection[len(head) :].split("_")[0]
        return name if is_version_name(name) else None

    # --- state ---------------------------------------------------------------------------
    def current_name(self) -> str | None:
        """The version the alias points at, or None when nothing was ever switched to."""
        for a in self.client.get_aliases().aliases:
            if a.alias_name == self.alias:
                return self._version_of(a.collection_name)
        return None

    def version_collections(self) -> dict[str, list[str]]:
        """Collections of this prefix by version name (complete or not)."""
        out: dict[str, list[str]] = {}
        for c in self.client.get_collections().collections:
            v = self._version_of(c.name)
            if v is not None:
                out.setdefault(v, []).append(c.name)
        return out

    def manifest(self, version: str) -> dict | None:
        """A version's manifest, None when that version was never completed."""
        if not self.client.collection_exists(self.manifests):
            return None
        got = self.client.retrieve(self.manifests, [int(version[1:])], with_payload=True)
        return json.loads(got[0].payload["manifest"]) if got else None

    def list_versions(self) -> list[str]:
        """Complete versions (a manifest written), oldest first."""
        if not self.client.collection_exists(self.manifests):
            return []
        names = [f"v{int(p.id):06d}" for p in self.scroll_all(self.manifests, with_payload=False) if int(p.id) > 0]
        return sorted(names)

    def next_version_name(self) -> str:
        """A name above every version this prefix ever used (collections, manifests and the counter)."""
        used = [0]
        used.extend(int(v[1:]) for v in self.version_collections())
        used.extend(int(v[1:]) for v in self.list_versions())
        current = self.current_name()
        if current:
            used.append(int(current[1:]))
        if self.client.collection_exists(self.manifests):
            got = self.client.retrieve(self.manifests, [0], with_payload=True)
            if got:
                used.append(int(got[0].payload.get("last", 0)))
        return f"v{max(used) + 1:06d}"

    def claim(self, version: str) -> None:
        """Record a version name as used, before writing any of its collections."""
        from qdrant_client import models

        self._ensure_manifests()
        self.client.upsert(self.manifests, [models.PointStruct(id=0, vector={}, payload={"last": int(version[1:])})], wait=True)

    def _ensure_manifests(self) -> None:
        if not self.client.collection_exists(self.manifests):
            self.client.create_collection(self.manifests, vectors_config={})

    def write_manifest(self, version: str, manifest: dict) -> None:
        """Mark a version complete: written only after every point of it is stored (wait=True)."""
        from qdrant_client import models

        self._ensure_manifests()
        point = models.PointStruct(id=int(version[1:]), vector={}, payload={"manifest": json.dumps(manifest, ensure_ascii=False)})
        self.client.upsert(self.manifests, [point], wait=True)

    def switch(self, version: str) -> None:
        """Point the alias at a complete version, in one request (readers see the old or the new, never none)."""
        from qdrant_client import models

        if self.manifest(version) is None:
            raise IndexCorruptError(f"{self.where}: version {version} has no manifest (an interrupted build); not switching to it")
        ops: list[Any] = []
        if self.current_name() is not None:
            ops.append(models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=self.alias)))
        ops.append(
            models.CreateAliasOperation(
                create_alias=models.CreateAlias(collection_name=self.collection(version, "chunks"), alias_name=self.alias)
            )
        )
        self.client.update_collection_aliases(ops)

    def drop(self, version: str) -> None:
        """Delete a version's collections and manifest."""
        for name in self.version_collections().get(version, []):
            self.client.delete_collection(name)
        if self.client.collection_exists(self.manifests):
            from qdrant_client import models

            self.client.delete(self.manifests, models.PointIdsList(points=[int(version[1:])]), wait=True)

    def clean_abandoned(self) -> list[str]:
        """Delete the collections of builds cut short (no manifest, not current); only under the build lock."""
        current = self.current_name()
        complete = set(self.list_versions())
        doomed = [v for v in self.version_collections() if v not in complete and v != current]
        for v in doomed:
            self.drop(v)
        return sorted(doomed)

    def prune(self, keep: int) -> list[str]:
        """Delete the oldest complete versions beyond `keep` (at least two stay), never the current one."""
        keep = max(keep, MIN_KEEP_VERSIONS)
        current = self.current_name()
        versions = self.list_versions()
        doomed = [v for v in versions[: max(0, len(versions) - keep)] if v != current]
        for v in doomed:
            self.drop(v)
        return doomed

    def open_current(self) -> QdrantVersion:
        """The version the alias points at; a missing index says how to build one."""
        name = self.current_name()
        if name is None:
            raise IndexNotFoundError(f"no index in {self.where}: build one with `newsqa index build`")
        return QdrantVersion(self, name)

    def scroll_all(self, collection: str, **kwargs: Any) -> Iterator[Any]:
        """Every point of a collection, a page at a time (kwargs as for QdrantClient.scroll)."""
        offset = None
        while True:
            points, offset = self.client.scroll(collection, limit=SCROLL_PAGE, offset=offset, **kwargs)
            yield from points
            if offset is None:
                return


class _Lru(OrderedDict):
    """A small least-recently-used cache."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def put(self, key: Any, value: Any) -> None:
        """Store a value as the most recently used, dropping the least recently used beyond `size`."""
        self[key] = value
        self.move_to_end(key)
        if len(self) > self.size:
            self.popitem(last=False)


CHUNK_FIELDS = ["chunk_id", "article_row", "ord", "section", "start", "end"]


def _chunk_record(row: int, payload: dict) -> ChunkRecord:
    return ChunkRecord(int(row), payload["chunk_id"], int(payload["article_row"]), int(payload["ord"]), payload.get("section"),
                       int(payload["start"]), int(payload["end"]))


class QdrantVersion:
    """One complete version read from Qdrant: what the answer pipeline asks of a version, by row."""

    def __init__(self, store: QdrantStore, name: str) -> None:
        manifest = store.manifest(name)
        if manifest is None:
            raise IndexNotFoundError(f"{store.where}: version {name} has no manifest (an interrupted build)")
        if manifest.get("format") != FORMAT_VERSION:
            raise IndexCorruptError(f"{store.where} {name}: index format {manifest.get('format')} (this code reads {FORMAT_VERSION})")
        self.store = store
        self.client = store.client
        self.name = name
        self.manifest = manifest
        self.n_chunks = int(manifest["counts"]["chunks"])
        self.n_articles = int(manifest["counts"]["articles"])
        self.dim = int(manifest["model"]["dim"])
        self.chunks = store.collection(name, "chunks")
        self.articles = store.collection(name, "articles")
        self.terms = store.collection(name, "terms")
        self.path = None  # not on this machine's disk
        self.checksums_verified = False  # the engine keeps its own checks (see docs/scale-out.md)
        self._lock = threading.Lock()
        self._chunks: _Lru = _Lru(CACHE_ITEMS)
        self._articles: _Lru = _Lru(CACHE_ITEMS // 8)

    @property
    def model(self) -> str:
        """The embedding model the vectors came from."""
        return str(self.manifest["model"]["name"])

    # --- records -------------------------------------------------------------------------
    def remember_chunk(self, row: int, payload: dict) -> ChunkRecord:
        """Keep a chunk's record from a search hit's payload (saves fetching it again)."""
        rec = _chunk_record(row, payload)
        with self._lock:
            self._chunks.put(int(row), rec)
        return rec

    def _cached(self, cache: _Lru, collection: str, row: int, fields: Any, make: Any) -> Any:
        """A record by row: from `cache`, else fetched from `collection` (payload `fields`), made and kept."""
        with self._lock:
            found = cache.get(int(row))
        if found is not None:
            return found
        got = self.client.retrieve(collection, [int(row)], with_payload=fields)
        if not got:
            raise KeyError(row)
        value = make(got[0].payload)
        with self._lock:
            cache.put(int(row), value)
        return value

    def chunk(self, row: int) -> ChunkRecord:
        """One chunk by row (= point id)."""
        return self._cached(self._chunks, self.chunks, row, CHUNK_FIELDS, lambda p: _chunk_record(row, p))

    def _article_payload(self, row: int) -> dict:
        return self._cached(self._articles, self.articles, row, True, dict)

    def article(self, row: int) -> ArticleRecord:
        """One article by row, its original text included."""
        p = self._article_payload(row)
        return ArticleRecord(int(row), p["id"], p["title"], p["source"], datetime.fromisoformat(p["date"]), p.get("url"),
                             p["path"], p["content_hash"], p["body"])

    def article_by_id(self, article_id: str) -> ArticleRecord | None:
        """One article by its id, or None."""
        from qdrant_client import models

        flt = models.Filter(must=[models.FieldCondition(key="id", match=models.MatchValue(value=article_id))])
        points, _ = self.client.scroll(self.articles, scroll_filter=flt, limit=1, with_payload=False)
        return self.article(int(points[0].id)) if points else None

    def paragraphs(self, row: int) -> list[Paragraph]:
        """Paragraph spans of an article, for splitting it into messages."""
        return [Paragraph(s, e, h) for s, e, h in self._article_payload(row)["paragraphs"]]

    def chunk_text(self, row: int) -> str:
        """The original text of one chunk (a slice of its article's body)."""
        c = self.chunk(row)
        return str(self._article_payload(c.article_row)["body"][c.start : c.end])

    def chunk_evidence(self, row: int) -> None:
        """Qdrant payloads carry no analysed evidence (the searcher analyses the chunk's text and keeps it)."""
        return None

    def chunk_rows_within(self, article_row: int, start: int, end: int) -> list[int]:
        """Rows of an article's chunks that lie inside body[start:end], in reading order."""
        return [int(r) for r, s, e in self._article_payload(article_row)["chunks"] if s >= start and e <= end]

    def unit_vectors(self, rows: Sequence[int]) -> list[np.ndarray] | None:
        """Each chunk's stored sentence vectors (a multivector per point), None when the build stored none."""
        if not self.manifest.get("sentences"):
            return None
        got = {int(p.id): p.vector for p in self.client.retrieve(self.chunks, [int(r) for r in dict.fromkeys(rows)], with_vectors=["sentences"])}
        empty = np.zeros((0, self.dim), np.float32)
        out = []
        for r in rows:
            vec = (got.get(int(r)) or {}).get("sentences")
            out.append(np.asarray(vec, dtype=np.float32) if vec else empty)
        return out

    def second_rows(self, rows: Sequence[int]) -> np.ndarray | None:
        """The stored second-encoder vectors of these chunk rows (index/second_encoder.py), None when the build stored none."""
        if not self.manifest.get("second"):
            return None
        got = {int(p.id): (p.vector or {}).get("second") for p in self.client.retrieve(self.chunks, [int(r) for r in dict.fromkeys(rows)], with_vectors=["second"])}
        missing = [int(r) for r in rows if got.get(int(r)) is None]
        if missing:
            raise IndexCorruptError(f"{self.store.where} {self.name}: chunk {missing[0]} has no second-encoder vector ({len(missing)} of {len(rows)})")
        return np.array([got[int(r)] for r in rows], dtype=np.float32).reshape(len(rows), int(self.manifest["second"]["dim"]))

    def lexicon(self) -> QdrantLexicon | None:
        """The corpus's words with their vectors (index/lexicon.py) in the version's lexicon collection, None when the
        build kept none."""
        found = self.manifest.get("lexicon")
        if not found:
            return None  # built before lexicons, or with NEWSQA_LEXICON=false
        return QdrantLexicon(self.store, self.name, int(found["count"]), self.dim)

    def document_frequencies(self, terms: Sequence[str]) -> dict[str, int]:
        """How many chunks use each term (absent terms are left out)."""
        ids = {term_id(t): t for t in terms}
        if not ids:
            return {}
        got = self.client.retrieve(self.terms, list(ids), with_payload=True)
        by_id = {int(p.id): int(p.payload["df"]) for p in got}
        return {t: by_id[i] for i, t in ids.items() if i in by_id}

    def idf(self, df: int) -> float:
        """The idf a term used by `df` chunks has here."""
        return idf(df, max(1, self.n_chunks))

    def _article_column(self, field: str) -> list[Any]:
        values: list[Any] = [None] * self.n_articles
        for p in self.store.scroll_all(self.articles, with_payload=[field]):
            values[int(p.id)] = p.payload[field]
        return values

    @cached_property
    def article_sources(self) -> list[str]:
        """Outlet of each article row (read once per version; /sources uses outlet_summary instead)."""
        return [str(s) for s in self._article_column("source")]

    @cached_property
    def article_dates(self) -> np.ndarray:
        """Article dates as numpy datetime64[m], by article row (read once per version)."""
        return np.array([str(d).replace(" ", "T") for d in self._article_column("date")], dtype="datetime64[m]")

    def outlet_summary(self) -> list[tuple[str, int, datetime, datetime]]:
        """(outlet, articles, first date, last date) of each outlet, asked of the engine (facet counts, then the first
        and last article by date), so /sources never reads every article of a large archive."""
        from qdrant_client import models

        out = []
        for hit in self.client.facet(self.articles, key="source", limit=10_000, exact=True).hits:
            flt = models.Filter(must=[models.FieldCondition(key="source", match=models.MatchValue(value=hit.value))])
            ends = []
            for direction in (models.Direction.ASC, models.Direction.DESC):
                points, _ = self.client.scroll(self.articles, scroll_filter=flt, limit=1, with_payload=["date"],
                                               order_by=models.OrderBy(key="minutes", direction=direction))
                ends.append(datetime.fromisoformat(points[0].payload["date"]))
            out.append((str(hit.value), int(hit.count), ends[0], ends[1]))
        return out

    def close(self) -> None:
        """Nothing to release: the client belongs to the store."""


LEXICON_VECTOR = "word"


class QdrantLexicon:
    """A version's lexicon kept in Qdrant: the nearest words of each question word asked of the engine, in one request.

    Ranks as index/lexicon.Lexicon.nearest does over the same float16 vectors: exhaustively (no graph), by inner
    product, similarity ≥ min_similarity compared in float32, best first, ties by term (the local rows' order).
    """

    def __init__(self, store: QdrantStore, version: str, count: int, dim: int) -> None:
        self.store = store
        self.client = store.client
        self.collection = store.collection(version, "lexicon")
        self.count = count
        self.dim = dim

    def __len__(self) -> int:
        return self.count

    def nearest(self, queries: np.ndarray, k: int, min_similarity: float) -> list[list[tuple[str, float]]]:
        """For each query vector, up to k terms whose word's cosine reaches min_similarity, best first."""
        from qdrant_client import models

        out: list[list[tuple[str, float]]] = [[] for _ in range(len(queries))]
        if not self.count or not len(queries) or k <= 0:
            return out
        floor = np.float32(min_similarity)
        exhaustive = models.SearchParams(exact=True) if self.store.remote else None  # local mode is always exhaustive
        requests = [
            models.QueryRequest(
                query=np.asarray(q, dtype=np.float32).tolist(), using=LEXICON_VECTOR, limit=k + TIE_MARGIN,
                score_threshold=float(floor) - 1e-4,  # the engine's threshold may be exclusive: the bound is applied below
                params=exhaustive, with_payload=["term"],
            )
            for q in queries
        ]
        for i, response in enumerate(self.client.query_batch_points(self.collection, requests)):
            found = [(str(p.payload["term"]), float(p.score)) for p in response.points if np.float32(p.score) >= floor]
            found.sort(key=lambda x: (-x[1], x[0]))
            out[i] = found[:k]
        return out

    def read(self) -> Lexicon:
        """The whole lexicon (terms, words, float16 vectors by row), for an update to reuse the words it already has."""
        terms: list[str] = [""] * self.count
        words: list[str] = [""] * self.count
        vectors = np.zeros((self.count, self.dim), dtype=np.float16)
        seen = 0
        for p in self.store.scroll_all(self.collection, with_payload=["term", "word"], with_vectors=[LEXICON_VECTOR]):
            row = int(p.id)
            if not 0 <= row < self.count:
                raise IndexCorruptError(f"{self.collection}: point {row} beyond the {self.count} words of the manifest")
            terms[row], words[row] = p.payload["term"], p.payload["word"]
            vectors[row] = np.asarray(p.vector[LEXICON_VECTOR], dtype=np.float32)
            seen += 1
        if seen != self.count:
            raise IndexCorruptError(f"{self.collection}: holds {seen} words, manifest says {self.count}")
        return Lexicon(np.array(terms, dtype=str), np.array(words, dtype=str), vectors)
