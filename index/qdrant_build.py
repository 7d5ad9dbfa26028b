"""Full and incremental (re)index into Qdrant: a new set of collections beside the old, then one alias switch.

The same plan as the local build (index/build.py): unchanged articles keep their vectors (copied from
the previous version's points, never re-embedded), new and changed ones are embedded, removed ones are
left out. BM25 document weights use the average chunk length of the last full build, so copied points
keep theirs; a full rebuild (`--full`) computes it afresh. The lexicon (index/lexicon.py) is built by the same
build_lexicon into its own collection; words the previous version's lexicon has keep their vectors.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, UTC
from pathlib import Path
from typing import Any

import numpy as np

from index.arabic import ANALYSER_VERSION, terms
from index.articles import Article, CorpusLoad, load_corpus
from index.build import (
    BuildOptions,
    BuildProgress,
    BuildReport,
    IndexLock,
    PreviousRows,
    _embed_by_length,
    _library_versions,
    _pause_point,
    _Plan,
    _reusable,
    chunk_sentence_texts,
    encode_texts,
    lexicon_wanted,
    plan_changes,
    second_rows_to_encode,
    second_wanted,
    sentence_method,
    split_rows,
    unchanged,
)
from index.chunking import Chunk
from index.embedder import Embedder, int8_recipe_of, model_fingerprint_of, tokenizer_fingerprint_of
from index.errors import IndexCorruptError, NewsqaError
from index.lexicon import Lexicon, build_lexicon
from index.ray_embed import ray_session
from index.qdrant_store import LEXICON_VECTOR, QdrantStore, QdrantVersion, epoch_minutes
from index.second_encoder import shared_encoder
from index.sparse import B, K1, document_vector
from index.store import FORMAT_VERSION

log = logging.getLogger(__name__)

UPSERT_BATCH = 64  # points per request: a chunk with its sentence vectors is ~20-40 KB of JSON
LEXICON_BATCH = 256  # lexicon points per request: one word's vector each (~4-8 KB of JSON)


def update_qdrant(
    corpus_dir: Path,
    store: QdrantStore,
    embedder: Embedder,
    lock_dir: Path,
    opts: BuildOptions | None = None,
    progress: Callable[[BuildProgress], None] | None = None,
    corpus: CorpusLoad | None = None,
) -> BuildReport:
    """Bring the Qdrant index in line with the corpus (one build at a time: the lock lives in lock_dir)."""
    started = time.perf_counter()
    opts = opts or BuildOptions()
    lock_dir.mkdir(parents=True, exist_ok=True)
    with IndexLock(lock_dir, opts.lock_wait_seconds):
        store.clean_abandoned()
        loaded = corpus if corpus is not None else load_corpus(corpus_dir, opts.max_article_bytes)
        report = BuildReport(version=store.current_name(), switched=False, rejected=loaded.rejected, notices=loaded.notices)
        prev, distrust = _previous(store, report.version)
        dim = embedder.dim
        reuse, reason = _reusable(prev, embedder, dim, opts)
        report.full_rebuild_reason = None if reuse else (distrust or reason)
        known = _previous_rows(prev) if prev is not None else PreviousRows()
        articles, plan, moved = plan_changes(corpus_dir, loaded, known, reuse, opts, report)
        if unchanged(plan, reuse, report, moved) and not lexicon_wanted(prev, opts) and not second_wanted(prev):
            report.seconds = time.perf_counter() - started
            return report

        name = store.next_version_name()
        store.claim(name)
        try:
            with ray_session(opts.ray_address) if opts.ray else contextlib.nullcontext():  # one session, both pipelines
                manifest = _write(store, name, articles, plan, prev, embedder, dim, opts, report, progress, lock_dir)
            _pause_point(opts, lock_dir, "switch")
            store.write_manifest(name, manifest)
            _verify(store, name, store.manifest(name) or {})  # as stored, read back
            store.switch(name)
        except BaseException:  # Ctrl-C included: drop what was written, the old version stays current
            if store.current_name() != name:
                store.drop(name)
            raise
        report.version = name
        report.switched = True
        store.prune(opts.keep_versions)
        report.seconds = time.perf_counter() - started
        return report


def _previous(store: QdrantStore, current: str | None) -> tuple[QdrantVersion | None, str | None]:
    """The current version when its collections answer and agree with its manifest, else (None, why not)."""
    if current is None:
        return None, None
    try:
        prev = store.open_current()
        _verify(store, prev.name, prev.manifest)
    except (NewsqaError, KeyError, ValueError) as exc:
        return None, f"previous version {current} cannot be reused ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
    except Exception as exc:  # the engine's own errors (a collection gone): a full rebuild, never a failed update
        log.info("previous Qdrant version unreadable", exc_info=True)
        return None, f"previous version {current} is unreadable ({type(exc).__name__})"
    return prev, None


def _previous_rows(prev: QdrantVersion) -> PreviousRows:
    """Each article's row, digest, path and chunk rows, read from the previous version's articles collection."""
    known = PreviousRows()
    for p in prev.store.scroll_all(prev.articles, with_payload=["id", "content_hash", "path", "chunks"]):
        row = int(p.id)
        known.articles[p.payload["id"]] = (row, p.payload["content_hash"])
        known.paths[p.payload["id"]] = p.payload["path"]
        known.chunk_rows[row] = [int(r) for r, _, _ in p.payload["chunks"]]
    return known


def _create(store: QdrantStore, name: str, dim: int, sentences: bool, lexicon: bool) -> None:
    """The version's collections (chunks, articles, terms; lexicon when kept), with payload indexes for the filters
    (a server uses them; local mode has none)."""
    from qdrant_client import models

    vectors = {"dense": models.VectorParams(size=dim, distance=models.Distance.DOT)}
    # Each chunk's second-encoder vector (index/second_encoder.py): read back by id to score candidates, never searched
    vectors["second"] = models.VectorParams(
        size=shared_encoder().dim, distance=models.Distance.DOT, on_disk=True, datatype=models.Datatype.FLOAT16,
        hnsw_config=models.HnswConfigDiff(m=0),
    )
    if sentences:  # read back by id, never searched: no HNSW graph, stored in half precision on disk
        vectors["sentences"] = models.VectorParams(
            size=dim, distance=models.Distance.DOT, on_disk=True, datatype=models.Datatype.FLOAT16,
            multivector_config=models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM),
            hnsw_config=models.HnswConfigDiff(m=0),
        )
    client = store.client
    layout = {"shard_number": store.shards, "replication_factor": store.replicas,
              "write_consistency_factor": store.write_consistency} if store.remote else {}
    client.create_collection(
        store.collection(name, "chunks"), vectors_config=vectors,
        sparse_vectors_config={"bm25": models.SparseVectorParams(modifier=models.Modifier.IDF)}, **layout,
    )
    client.create_collection(store.collection(name, "articles"), vectors_config={}, **layout)
    client.create_collection(store.collection(name, "terms"), vectors_config={}, **layout)
    if lexicon:  # searched exhaustively, as the local lexicon is (exact=True): no graph to build; float32 as the local
        # search computes (each stored value is the word's float16 vector, exactly)
        word = models.VectorParams(size=dim, distance=models.Distance.DOT, hnsw_config=models.HnswConfigDiff(m=0))
        client.create_collection(store.collection(name, "lexicon"), vectors_config={LEXICON_VECTOR: word}, **layout)
    if store.remote:
        chunks, articles = store.collection(name, "chunks"), store.collection(name, "articles")
        for field, kind in (("source", models.PayloadSchemaType.KEYWORD), ("date", models.PayloadSchemaType.INTEGER),
                            ("article_id", models.PayloadSchemaType.KEYWORD)):
            client.create_payload_index(chunks, field, kind, wait=True)
        for field, kind in (("id", models.PayloadSchemaType.KEYWORD), ("source", models.PayloadSchemaType.KEYWORD),
                            ("minutes", models.PayloadSchemaType.INTEGER)):  # lookups by id; /sources' facets and order_by
            client.create_payload_index(articles, field, kind, wait=True)


def _write(
    store: QdrantStore, name: str, articles: list[Article], plan: _Plan, prev: QdrantVersion | None, embedder: Embedder,
    dim: int, opts: BuildOptions, report: BuildReport, progress: Callable[[BuildProgress], None] | None, lock_dir: Path,
) -> dict:
    """Write every point of a version; returns its manifest (not yet stored)."""
    from qdrant_client import models

    sentences = opts.sentence_vectors
    _create(store, name, dim, sentences, opts.lexicon)
    new_vectors, new_units, _, _ = _embed_by_length(plan, articles, embedder, dim, opts, report, progress, lock_dir)
    chunk_rows = [(i, c) for i, cs in enumerate(plan.chunks_per_article) for c in cs]
    doc_terms = [terms(c.embed_text) if kind == "new" else None for (kind, _), (_, c) in zip(plan.sources, chunk_rows)]
    if prev is not None and not report.full_rebuild_reason and prev.manifest.get("bm25"):
        avg_len = float(prev.manifest["bm25"]["avg_len"])  # copied points keep their weights
    else:
        lengths = [len(t) if t is not None else 0 for t in doc_terms]
        avg_len = float(np.mean(lengths)) if lengths else 1.0
    new_units = _new_sentence_vectors(plan, articles, embedder, dim, opts, new_units) if sentences else None
    second, second_record = _second_vectors(plan, articles, chunk_rows, prev)
    _pause_point(opts, lock_dir, "writing")

    chunks = store.collection(name, "chunks")
    df: Counter[int] = Counter()
    batch: list[Any] = []
    old_points: dict[int, dict[str, Any]] = {}
    for row, ((kind, ref), (article_row, chunk)) in enumerate(zip(plan.sources, chunk_rows)):
        if row % UPSERT_BATCH == 0 and prev is not None:  # the kept points of this batch's rows, one request
            old_points = _old_points(prev, [r for k, r in plan.sources[row : row + UPSERT_BATCH] if k == "prev"])
        article = articles[article_row]
        payload = {
            "chunk_id": chunk.id, "article_row": article_row, "article_id": article.id, "ord": chunk.ord,
            "section": chunk.section, "start": chunk.start, "end": chunk.end,
            "source": article.source, "date": epoch_minutes(article.date),
        }
        vector: dict[str, Any]
        if kind == "prev":
            vector = dict(old_points[ref])
            if row in second:  # a previous version from before second-encoder vectors
                vector["second"] = second[row].tolist()
            sparse = vector["bm25"]
            ids = list(sparse.indices)
        else:
            ids, values = document_vector(doc_terms[row] or [], avg_len)
            vector = {"dense": new_vectors[ref].tolist(), "bm25": models.SparseVector(indices=ids, values=values), "second": second[row].tolist()}
            if new_units is not None and len(new_units[ref]):
                vector["sentences"] = new_units[ref].tolist()
        df.update(ids)
        batch.append(models.PointStruct(id=row, vector=vector, payload=payload))
        if len(batch) >= UPSERT_BATCH:
            store.client.upsert(chunks, batch, wait=True)
            batch = []
    if batch:
        store.client.upsert(chunks, batch, wait=True)
    _write_articles(store, name, articles, plan)
    term_points = [models.PointStruct(id=i, vector={}, payload={"df": n}) for i, n in df.items()]
    for start in range(0, len(term_points), 1024):
        store.client.upsert(store.collection(name, "terms"), term_points[start : start + 1024], wait=True)
    reusable = prev if prev is not None and not report.full_rebuild_reason else None
    lexicon = _write_lexicon(store, name, [c for _, c in chunk_rows], doc_terms, reusable, embedder, opts) if opts.lexicon else None

    dates = [a.date for a in articles]
    return {
        "format": FORMAT_VERSION,
        "version": name,
        "backend": "qdrant",
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": {"name": embedder.name, "dim": dim, "backend": getattr(embedder, "backend", "torch"),
                  "fingerprint": model_fingerprint_of(embedder), "tokenizer": tokenizer_fingerprint_of(embedder),
                  **({"int8_recipe": recipe} if (recipe := int8_recipe_of(embedder)) is not None else {})},  # as build.py
        "analyser": {"version": ANALYSER_VERSION},
        "chunking": {"max_chars": opts.max_chars, "min_chars": opts.min_chars},
        "bm25": {"avg_len": avg_len, "k1": K1, "b": B, "terms": len(df)},
        "sentences": {"count": None, "method": sentence_method(embedder, opts)} if sentences else None,
        "counts": {"articles": len(articles), "chunks": len(plan.sources)},
        "lexicon": lexicon,
        "second": second_record,
        "dates": {"min": min(dates).isoformat(sep=" ") if dates else None, "max": max(dates).isoformat(sep=" ") if dates else None},
        "sources": sorted({a.source for a in articles}),
        "libraries": _library_versions(),
        "build": {"added": report.added, "changed": report.changed, "removed": report.removed, "unchanged": report.unchanged,
                  "rejected": len(report.rejected), "embedded_chunks": report.embedded_chunks,
                  "full_rebuild_reason": report.full_rebuild_reason},
    }


def _write_lexicon(
    store: QdrantStore, name: str, chunks: list[Chunk], doc_terms: list[list[str] | None], prev: QdrantVersion | None,
    embedder: Embedder, opts: BuildOptions,
) -> dict:
    """The version's lexicon collection: every BM25 term's corpus word and its vector, as the local build's lexicon.npz.

    Built by the same build_lexicon from every chunk's terms and text; the words `prev` (a reusable previous version)
    already has keep their vectors, read back from its collection, and only new words are embedded.
    """
    from qdrant_client import models

    vocabulary: set[str] = set()
    for chunk, known in zip(chunks, doc_terms):
        vocabulary.update(known if known is not None else terms(chunk.embed_text))
    started = time.perf_counter()
    stored = prev.lexicon() if prev is not None else None
    previous: Lexicon | None = stored.read() if stored is not None else None
    lexicon, embedded = build_lexicon((c.embed_text for c in chunks), vocabulary, embedder, previous, max(opts.batch_size, 256))
    collection = store.collection(name, "lexicon")
    for start in range(0, len(lexicon), LEXICON_BATCH):
        rows = range(start, min(start + LEXICON_BATCH, len(lexicon)))
        points = [
            models.PointStruct(id=row, vector={LEXICON_VECTOR: lexicon.vectors[row].astype(np.float32).tolist()},
                               payload={"term": str(lexicon.terms[row]), "word": str(lexicon.words[row])})
            for row in rows
        ]
        store.client.upsert(collection, points, wait=True)
    return {"count": len(lexicon), "embedded": embedded, "seconds": round(time.perf_counter() - started, 2)}


def _second_vectors(
    plan: _Plan, articles: list[Article], chunk_rows: list[tuple[int, Chunk]], prev: QdrantVersion | None
) -> tuple[dict[int, np.ndarray], dict]:
    """Second-encoder vectors by row for the chunks that need one: new chunks, and kept ones whose previous version
    stored none; with the manifest's record of them."""
    encoder = shared_encoder()
    rows = second_rows_to_encode(plan, prev)
    started = time.perf_counter()
    texts = [articles[chunk_rows[r][0]].body[chunk_rows[r][1].start : chunk_rows[r][1].end] for r in rows]
    out = dict(zip(rows, encoder.encode(texts)))  # held like the new chunks' e5 vectors until the points are written
    return out, {"encoder": encoder.name, "dim": encoder.dim, "embedded": len(rows), "seconds": round(time.perf_counter() - started, 2)}


def _new_sentence_vectors(
    plan: _Plan, articles: list[Article], embedder: Embedder, dim: int, opts: BuildOptions, late: list[np.ndarray] | None
) -> list[np.ndarray]:
    """Sentence vectors of each chunk to embed: from its own pass (late chunking) or the chunks' Ray pipeline, else
    encoded one by one."""
    if late is not None:
        return late
    texts_of = chunk_sentence_texts(plan, articles)
    flat = [t for ts in texts_of for t in ts]
    return split_rows(encode_texts(embedder, flat, dim, opts), texts_of)  # on Ray with --ray, as the chunks


def _old_points(prev: QdrantVersion, wanted: list[int]) -> dict[int, dict[str, Any]]:
    """Vectors of previous-version points this version keeps, by old row (copied, never re-embedded).

    Asked a batch at a time, so an update holds one batch of copied vectors, never the whole archive's.
    """
    if not wanted:
        return {}
    out = {int(p.id): p.vector for p in prev.client.retrieve(prev.chunks, wanted, with_vectors=True)}
    missing = [r for r in wanted if r not in out]
    if missing:
        raise IndexCorruptError(f"{prev.store.where} {prev.name}: {len(missing)} chunk points missing (row {missing[0]} first)")
    return out


def _write_articles(store: QdrantStore, name: str, articles: list[Article], plan: _Plan) -> None:
    from qdrant_client import models

    rows = _chunk_spans(plan)
    points = [
        models.PointStruct(
            id=row, vector={},
            payload={
                "id": a.id, "title": a.title, "source": a.source, "date": a.date.isoformat(sep=" "), "minutes": epoch_minutes(a.date),
                "url": a.url, "path": a.path,
                "encoding": a.encoding, "content_hash": a.content_hash, "body": a.body,
                "paragraphs": [[p.start, p.end, p.heading] for p in a.paragraphs], "chunks": next(rows),
            },
        )
        for row, a in enumerate(articles)
    ]
    for start in range(0, len(points), UPSERT_BATCH):
        store.client.upsert(store.collection(name, "articles"), points[start : start + UPSERT_BATCH], wait=True)


def _chunk_spans(plan: _Plan) -> Iterator[list[list[int]]]:
    """[[row, start, end], …] of each article's chunks, in article order."""
    row = 0
    for cs in plan.chunks_per_article:
        yield [[row + i, c.start, c.end] for i, c in enumerate(cs)]
        row += len(cs)


def _verify(store: QdrantStore, name: str, manifest: dict) -> None:
    """Counts in the engine agree with the version's manifest (before it may become current, or be reused)."""
    counts = manifest.get("counts", {})
    got = (store.client.count(store.collection(name, "articles"), exact=True).count,
           store.client.count(store.collection(name, "chunks"), exact=True).count)
    if got != (counts.get("articles"), counts.get("chunks")):
        raise IndexCorruptError(
            f"{store.where} {name}: holds {got[0]} articles and {got[1]} chunks, manifest says "
            f"{counts.get('articles')} and {counts.get('chunks')}"
        )
    lexicon = manifest.get("lexicon")
    if lexicon:
        collection = store.collection(name, "lexicon")
        words = store.client.count(collection, exact=True).count if store.client.collection_exists(collection) else None
        if words != lexicon.get("count"):
            raise IndexCorruptError(f"{store.where} {name}: lexicon holds {words} words, manifest says {lexicon.get('count')}")

