"""Both search backends on the same corpus: build throughput, per-question latency, bytes per chunk, quality.

The local backend (FAISS + bm25s + SQLite files) against Qdrant in LOCAL MODE (qdrant-client running
in this process). Local mode is a test double with the server's API: its latency and write speed do
not represent a Qdrant server, and its on-disk size is a pickle of the points. The bytes a server
keeps per chunk are therefore COMPUTED from the points written (vector, multivector, sparse and payload
sizes, plus HNSW links), and labelled so.

Builds: every passage and sentence vector is computed once first (the same model for both), then each
backend builds from those, so the build figures compare the stores, not the encoder (embedding time is
printed apart). Quality: fused MRR@10 / quoteR@3 by language and by fixed half (A/B) on the development
set, plus how far the two backends' lexical top-10 overlap and whether their dense top-10 agree.

    python bench/backends.py                      # Wikinews-ar from ../shared when present, else the shipped XQuAD-ar slice
    python bench/backends.py --dataset DIR        # any dataset folder `newsqa eval` reads
    python bench/backends.py --smoke             # a few questions
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import XQUAD_SLICE, embedder, header, percentile, quiet, shared_dir  # noqa: E402


class Memo:
    """An embedder that computes each text's vector once: both backends then build from the same vectors."""

    def __init__(self, inner) -> None:  # noqa: ANN001
        self.inner = inner
        self.name, self.dim, self.backend = inner.name, inner.dim, getattr(inner, "backend", "torch")
        self.fingerprint = getattr(inner, "fingerprint", None)
        self.cache: dict[str, np.ndarray] = {}
        self.seconds = 0.0

    def encode_passages(self, texts, batch_size: int = 32) -> np.ndarray:  # noqa: ANN001
        missing = [t for t in dict.fromkeys(texts) if t not in self.cache]
        if missing:
            t0 = time.perf_counter()
            for t, v in zip(missing, self.inner.encode_passages(missing, batch_size)):
                self.cache[t] = v
            self.seconds += time.perf_counter() - t0
        return np.stack([self.cache[t] for t in texts]) if texts else np.zeros((0, self.dim), np.float32)

    def encode_queries(self, texts, batch_size: int = 32) -> np.ndarray:  # noqa: ANN001
        return self.inner.encode_queries(texts, batch_size)


def dataset_dir(given: Path | None) -> Path:
    if given is not None:
        return given
    wikinews = shared_dir() / "data" / "wikinews-ar"
    return wikinews if (wikinews / "questions.jsonl").is_file() else XQUAD_SLICE


def folder_bytes(path: Path) -> dict[str, int]:
    """Bytes of each file (folders summed) directly under path."""
    out = {}
    for p in sorted(path.iterdir()):
        out[p.name] = sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else p.stat().st_size
    return out


def qdrant_server_bytes(store, version) -> dict[str, float]:  # noqa: ANN001
    """Per chunk, what a Qdrant server keeps of this version, COMPUTED from the points written (not measured)."""
    dim = version.dim
    dense = sents = sparse_nnz = payload = 0
    n = 0
    for p in store.scroll_all(version.chunks, with_payload=True, with_vectors=True):
        n += 1
        dense += dim * 4
        s = p.vector.get("sentences")
        sents += len(s) * dim * 2 if s else 0  # float16 multivector
        sparse_nnz += len(p.vector["bm25"].indices)
        payload += len(json.dumps(p.payload, ensure_ascii=False).encode())
    articles = sum(len(json.dumps(p.payload, ensure_ascii=False).encode()) for p in store.scroll_all(version.articles, with_payload=True))
    terms = store.client.count(version.terms, exact=True).count
    n = max(1, n)
    hnsw = 16 * 2 * 4 * 1.1  # m=16: ~2m links of 4 bytes on level 0, ~10% more above
    return {
        "dense_f32": dense / n, "hnsw_links": hnsw, "sentences_f16": sents / n, "sparse": sparse_nnz * 8 / n,
        "sparse_index": sparse_nnz * 8 / n, "chunk_payload": payload / n, "article_payload": articles / n,
        "terms": terms * 24 / n, "sentences_per_chunk": (sents / (dim * 2)) / n, "terms_per_chunk": sparse_nnz / n,
    }


def main() -> int:
    from index.embedder import encode_questions
    quiet()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", type=Path, help="dataset folder (default: Wikinews-ar from ../shared, else the shipped slice)")
    ap.add_argument("--qdrant-url", help="a real Qdrant server or cluster instead of local mode (its figures are then a server's)")
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args()
    header("backends: local files vs Qdrant (local mode)", args.smoke)

    from index.build import BuildOptions, update_index
    from index.qdrant_build import update_qdrant
    from index.qdrant_store import QdrantStore, connect
    from index.store import open_current
    from retrieval.evaluate import evaluate, load_dataset, split_of
    from retrieval.search import Searcher

    root = dataset_dir(args.dataset)
    data = load_dataset(root)
    questions = data.questions[:12] if args.smoke else data.questions
    print(f"dataset: {data.name}: {len(data.corpus.articles)} articles, {len(questions)} questions")
    emb = embedder()
    memo = Memo(emb)
    opts = BuildOptions(sentence_vectors=True)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        t0 = time.perf_counter()
        update_index(data.root, base / "warm", memo, opts, corpus=data.corpus)  # every vector computed once
        embed_s = memo.seconds
        print(f"embedding (once, shared by both builds): {embed_s:.1f}s; whole first build {time.perf_counter() - t0:.1f}s")

        builds = {}
        t0 = time.perf_counter()
        local = update_index(data.root, base / "local", memo, opts, corpus=data.corpus)
        builds["local"] = time.perf_counter() - t0
        store = QdrantStore(connect(args.qdrant_url, str(base / "qdrant"), os.environ.get("QDRANT_API_KEY")), prefix=f"bench{os.getpid()}")
        t0 = time.perf_counter()
        update_qdrant(data.root, store, memo, base / "lock", opts, corpus=data.corpus)
        builds["qdrant"] = time.perf_counter() - t0
        n_chunks = local.total_chunks
        print(f"\nbuild from computed vectors, {n_chunks} chunks (stores only; embedding excluded):")
        for k, s in builds.items():
            label = " (LOCAL MODE: not a server)" if k == "qdrant" and not args.qdrant_url else ""
            print(f"  {k:7s} {s:7.2f}s  {n_chunks / s:8.1f} chunks/s{label}")
        print(f"  ratio qdrant-local-mode / local: {builds['local'] / builds['qdrant']:.2f}× the local rate")

        searchers = {"local": Searcher(open_current(base / "local"), emb), "qdrant": Searcher(store.open_current(), emb)}
        qvecs = encode_questions(emb, [q.question for q in questions])

        # the two sides, question by question
        dense_same = lex_overlaps = 0.0
        lex_n = 0
        for q, v in zip(questions, qvecs):
            a, b = searchers["local"].dense(v, 10), searchers["qdrant"].dense(v, 10)
            dense_same += [r for r, _ in a] == [r for r, _ in b]
            query = searchers["local"].rank(q.question, mode="lexical").query
            la, lb = searchers["local"].lexical(query, 10), searchers["qdrant"].lexical(query, 10)
            if la:
                lex_overlaps += len({r for r, _ in la} & {r for r, _ in lb}) / len(la)
                lex_n += 1
        print(f"\ndense top-10 identical (rows, in order): {dense_same / len(questions):.3f} of questions")
        print(f"lexical top-10 overlap: mean {lex_overlaps / max(1, lex_n):.3f} over {lex_n} questions with lexical hits")

        # latency (warm)
        print("\nper-question latency, fused answer, warm (vector given):")
        lat: dict[str, list[float]] = {}
        for k, s in searchers.items():
            s.answer(questions[0].question, qvec=qvecs[0])
            times = []
            for q, v in zip(questions, qvecs):
                t0 = time.perf_counter()
                s.answer(q.question, qvec=v)
                times.append(time.perf_counter() - t0)
            lat[k] = times
            label = " (LOCAL MODE: not a server)" if k == "qdrant" and not args.qdrant_url else ""
            print(f"  {k:7s} p50 {percentile([x * 1000 for x in times], 50):7.1f} ms  p95 {percentile([x * 1000 for x in times], 95):7.1f} ms{label}")
        print(f"  ratio p50 qdrant-local-mode / local: {percentile(lat['qdrant'], 50) / percentile(lat['local'], 50):.1f}×")

        # bytes per chunk
        lb_ = folder_bytes(open_current(base / "local").path)
        print(f"\nbytes per chunk, local version files (measured): {sum(lb_.values()) / n_chunks:,.0f} in all")
        for name, size in lb_.items():
            print(f"  {name:22s} {size / n_chunks:10,.0f}")
        qb = qdrant_server_bytes(store, store.open_current())
        print("bytes per chunk, Qdrant server (COMPUTED from the points written, not measured):")
        total = 0.0
        for name in ("dense_f32", "hnsw_links", "sentences_f16", "sparse", "sparse_index", "chunk_payload", "article_payload", "terms"):
            total += qb[name]
            print(f"  {name:22s} {qb[name]:10,.0f}")
        print(f"  {'total':22s} {total:10,.0f}   ({qb['sentences_per_chunk']:.1f} sentences, {qb['terms_per_chunk']:.0f} distinct terms per chunk)")
        if not args.qdrant_url:
            local_mode = sum(f.stat().st_size for f in (base / "qdrant").rglob("*") if f.is_file())
            print(f"  (local mode's own folder, a pickle of the points: {local_mode / n_chunks:,.0f} per chunk, measured)")

        # quality
        print("\nquality, fused (MRR@10 / quoteR@3):")
        langs = sorted({q.lang or "?" for q in questions})
        for k, s in searchers.items():
            parts = []
            for half in ("A", "B"):
                for lang in langs:
                    sub = [q for q in questions if split_of(q.id) == half and (q.lang or "?") == lang]
                    if not sub:
                        continue
                    vecs = np.stack([qvecs[questions.index(q)] for q in sub])
                    r = evaluate(s, sub, ["fused"], vecs, data.passage_level)["fused"]
                    parts.append(f"{half}/{lang} {r['MRR@10']:.3f}/{r['quoteR@3']:.3f} (n={r['n']})")
            print(f"  {k:7s} " + "  ".join(parts))
        if args.qdrant_url:
            for v in store.list_versions():
                store.drop(v)  # leave the server as it was
            store.client.delete_collection(store.manifests)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
