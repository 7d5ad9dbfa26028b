"""Scale: index kind, recall@10 against exact search, query latency and serving memory at 10^3..10^6 chunks.

Only a few hundred real chunks can be embedded here in reasonable time, so above that the
index is SYNTHETIC (said in the output): the first rows are real e5 vectors of XQuAD-ar passage
chunks with their real text; every other row is a real vector plus Gaussian noise with the
covariance of the real vectors (re-normalised), and its text is words drawn from the real
vocabulary by their real frequencies. Questions are real XQuAD-ar questions, embedded by the
real model in the serving process, so query latency includes query embedding.

    python bench/scale.py                 # 10^3, 10^4, 10^5, 10^6 (minutes; run it in the background)
    python bench/scale.py --sizes 1000 100000
    python bench/scale.py --smoke         # 10^3 chunks (16 real), 6 questions
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    OUT,
    ROOT,
    Timer,
    embedder,
    header,
    ms_stats,
    peak_rss_mb,
    percentile,
    quiet,
    real_chunks,
    rss_mb,
    xquad,
)

STAGES = ("analyse", "embed", "lexical", "dense", "fusion", "score", "decide", "quote", "total")
CHUNKS_PER_ARTICLE = 10
WORDS_PER_CHUNK = 60
NOISE = 0.6  # scale of the synthetic offsets, relative to the real vectors' own spread


# --- real material -------------------------------------------------------------------------
def base_vectors(emb, texts: list[str]) -> np.ndarray:  # noqa: ANN001
    """Real e5 passage vectors of the texts, cached in bench/out/cache (embedding them takes minutes)."""
    cache = OUT / "cache" / f"xquad-chunks-{len(texts)}-{emb.backend}.npy"
    if cache.is_file():
        return np.load(cache)
    with Timer() as t:
        vecs = emb.encode_passages(texts)
    print(f"embedded {len(texts)} real chunks in {t.seconds:.1f}s ({len(texts) / t.seconds:.1f} chunks/s)")
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, vecs)
    return vecs


class Vocabulary:
    """Real surface words with their frequencies and BM25 terms, to draw synthetic texts from."""

    def __init__(self, texts: list[str]) -> None:
        from index.arabic import terms

        counts = Counter(w for t in texts for w in t.split())
        self.words = [w for w, _ in counts.most_common()]
        freq = np.array([c for _, c in counts.most_common()], dtype=np.float64)
        self.p = freq / freq.sum()
        self.term_ids: dict[str, int] = {}
        word_term = []
        for w in self.words:
            ts = terms(w)
            word_term.append(self.term_id(ts[0]) if ts else -1)
        self.word_term = np.array(word_term, dtype=np.int64)
        self.words_arr = np.array(self.words, dtype=object)

    def term_id(self, term: str) -> int:
        """Id of a term, added when new."""
        return self.term_ids.setdefault(term, len(self.term_ids))


# --- writing a synthetic index version ----------------------------------------------------------
CLAUSE_WORDS = 20  # a synthetic chunk is cut into clauses like news text: `،` every 20 words, a full stop at the end


def punctuated(words: list[str]) -> str:
    """Synthetic words as news-like text: clauses chained with `،`, one full stop (so quotes have clauses to pick)."""
    parts = [" ".join(words[i : i + CLAUSE_WORDS]) for i in range(0, len(words), CLAUSE_WORDS)]
    return "، ".join(parts) + "."


def write_sentence_vectors(vdir: Path, chunk_texts: list[str], rng: np.random.Generator) -> int:
    """sentences.npy + sentence_offsets.npy as a build stores them: per chunk, one vector per quotable clause.

    SYNTHETIC: each clause's vector is its chunk's vector plus noise (only the cost of reading and scoring
    them matters here); the clauses are the ones the searcher cuts (index.chunking.chunk_sentences).
    """
    from index.chunking import chunk_sentences

    counts = np.array([len(chunk_sentences(t, 0, len(t))) for t in chunk_texts], dtype=np.int64)
    offsets = np.zeros(len(chunk_texts) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum(counts)
    vectors = np.load(vdir / "vectors.npy", mmap_mode="r")
    dim = vectors.shape[1]
    out = np.lib.format.open_memmap(vdir / "sentences.npy", mode="w+", dtype=np.float16, shape=(int(offsets[-1]), dim))
    for start in range(0, len(chunk_texts), 50_000):
        end = min(len(chunk_texts), start + 50_000)
        owner = np.repeat(np.arange(start, end), counts[start:end])
        v = np.asarray(vectors[owner], dtype=np.float32) + 0.02 * rng.standard_normal((len(owner), dim), dtype=np.float32)
        out[offsets[start] : offsets[end]] = (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float16)
    out.flush()
    del out
    np.save(vdir / "sentence_offsets.npy", offsets)
    return int(offsets[-1])


def write_version(index_dir: Path, n: int, base: np.ndarray, texts: list[str], vocab: Vocabulary, kind: str, seed: int = 0) -> dict:
    """A complete index version of n chunks in the store's layout; returns build timings."""
    import bm25s
    from bm25s.tokenization import Tokenized

    from index.arabic import terms
    from index.dense import build_faiss, choose_kind, write_faiss
    from index.evidence import EVIDENCE_VERSION, analyse_span, pack
    from index.store import FORMAT_VERSION, SCHEMA, write_current

    rng = np.random.default_rng(seed)
    if index_dir.exists():
        shutil.rmtree(index_dir)
    vdir = index_dir / "versions" / "v000001"
    vdir.mkdir(parents=True)
    dim = base.shape[1]
    n_real = min(n, len(base))
    times: dict[str, float] = {}

    with Timer() as t:
        vectors = np.lib.format.open_memmap(vdir / "vectors.npy", mode="w+", dtype=np.float32, shape=(n, dim))
        vectors[:n_real] = base[:n_real]
        centered = base - base.mean(axis=0)
        cov_root = np.linalg.cholesky(np.cov(centered, rowvar=False) + 1e-6 * np.eye(dim)).astype(np.float32)
        for start in range(n_real, n, 100_000):
            m = min(100_000, n - start)
            v = base[rng.integers(0, len(base), m)] + NOISE * (rng.standard_normal((m, dim), dtype=np.float32) @ cov_root.T)
            vectors[start : start + m] = v / np.linalg.norm(v, axis=1, keepdims=True)
        vectors.flush()
        del vectors
    times["vectors"] = t.seconds

    with Timer() as t:
        chunk_texts: list[str] = []
        ids: list[list[int]] = []
        for text in texts[:n_real]:
            chunk_texts.append(text)
            ids.append([vocab.term_id(x) for x in terms(text)])
        for start in range(n_real, n, 50_000):
            m = min(50_000, n - start)
            words = rng.choice(len(vocab.words), size=(m, WORDS_PER_CHUNK), p=vocab.p)
            term_rows = vocab.word_term[words]
            chunk_texts.extend(punctuated(row) for row in vocab.words_arr[words].tolist())
            ids.extend(r[r >= 0].tolist() for r in term_rows)
    times["texts"] = t.seconds

    with Timer() as t:
        retriever = bm25s.BM25()
        retriever.index(Tokenized(ids=ids, vocab=dict(vocab.term_ids)), show_progress=False)
        retriever.save(str(vdir / "lexical"), show_progress=False)
        del retriever, ids
    times["bm25"] = t.seconds

    with Timer() as t:
        chosen = choose_kind(n, kind)
        write_faiss(build_faiss(np.load(vdir / "vectors.npy", mmap_mode="r"), chosen), vdir / "dense.faiss")
    times["faiss"] = t.seconds

    with Timer() as t:
        n_articles = (n + CHUNKS_PER_ARTICLE - 1) // CHUNKS_PER_ARTICLE
        np.save(vdir / "chunk_article.npy", (np.arange(n) // CHUNKS_PER_ARTICLE).astype(np.int32))
        db = sqlite3.connect(vdir / "meta.sqlite")
        db.executescript(SCHEMA)
        day0 = datetime(2010, 1, 1)

        def article_rows():  # noqa: ANN202
            for a in range(n_articles):
                parts = chunk_texts[a * CHUNKS_PER_ARTICLE : (a + 1) * CHUNKS_PER_ARTICLE]
                body = "\n\n".join(parts)
                spans, pos = [], 0
                for part in parts:
                    spans.append([pos, pos + len(part), None])
                    pos += len(part) + 2
                date = (day0 + timedelta(days=int(a % 5000))).isoformat(sep=" ")
                yield (a, f"syn-{a}", f"مقال {a}", "synthetic" if a * CHUNKS_PER_ARTICLE >= n_real else "xquad-ar",
                       date, None, f"synthetic/{a}.txt", "utf-8", f"{a:064x}", body, json.dumps(spans))

        def chunk_rows():  # noqa: ANN202
            pos_in_article = 0
            for row, text in enumerate(chunk_texts):
                if row % CHUNKS_PER_ARTICLE == 0:
                    pos_in_article = 0
                a = row // CHUNKS_PER_ARTICLE
                # each chunk's analysed evidence, as a real build stores it (~0.3 ms a chunk)
                yield (row, f"syn-{a}:{row % CHUNKS_PER_ARTICLE}", a, row % CHUNKS_PER_ARTICLE, None, pos_in_article,
                       pos_in_article + len(text), pack(analyse_span(text)))
                pos_in_article += len(text) + 2

        db.executemany("INSERT INTO articles VALUES (?,?,?,?,?,?,?,?,?,?,?)", article_rows())
        db.executemany("INSERT INTO chunks VALUES (?,?,?,?,?,?,?,?)", chunk_rows())
        db.commit()
        db.close()
    times["sqlite"] = t.seconds

    with Timer() as t:
        n_sentences = write_sentence_vectors(vdir, chunk_texts, rng)
    times["sentences"] = t.seconds

    manifest = {
        "format": FORMAT_VERSION, "version": "v000001", "created": datetime.now().isoformat(timespec="seconds"),
        "model": {"name": "intfloat/multilingual-e5-small", "dim": dim, "backend": "torch"},
        "chunking": {"max_chars": 600, "min_chars": 150}, "faiss": {"kind": chosen}, "evidence": {"version": EVIDENCE_VERSION},
        "counts": {"articles": n_articles, "chunks": n},
        "sentences": {"count": n_sentences, "method": "synthetic"},
        "synthetic": {"real_chunks": n_real, "noise": NOISE, "words_per_chunk": WORDS_PER_CHUNK},
    }
    (vdir / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
    write_current(index_dir, "v000001")
    times["kind"] = chosen  # type: ignore[assignment]
    times["disk_mb"] = sum(f.stat().st_size for f in vdir.rglob("*") if f.is_file()) / 2**20
    return times


def unaccounted(stages: dict[str, list[float]]) -> list[float]:
    """Per question: total minus every timed stage (what no stage accounts for)."""
    parts = [stages[s] for s in STAGES if s != "total" and s in stages]
    return [t - sum(p[i] for p in parts) for i, t in enumerate(stages["total"])]


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int = 10) -> np.ndarray:
    """Exact top-k rows per query by inner product, over memory-mapped vectors in slices."""
    best_s = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_i = np.zeros((len(queries), k), dtype=np.int64)
    for start in range(0, len(vectors), 200_000):
        s = queries @ np.asarray(vectors[start : start + 200_000], dtype=np.float32).T
        top = np.argpartition(-s, min(k, s.shape[1] - 1), axis=1)[:, :k]
        cand_s = np.concatenate([best_s, np.take_along_axis(s, top, 1)], axis=1)
        cand_i = np.concatenate([best_i, top + start], axis=1)
        order = np.argsort(-cand_s, axis=1, kind="stable")[:, :k]
        best_s, best_i = np.take_along_axis(cand_s, order, 1), np.take_along_axis(cand_i, order, 1)
    return best_i


def flat_latency(vectors: np.ndarray, queries: np.ndarray, reps: int) -> list[float]:
    """Per-query seconds of exact FAISS search (IndexFlatIP in RAM): the baseline of the approximate index."""
    import faiss

    index = faiss.IndexFlatIP(vectors.shape[1])
    for start in range(0, len(vectors), 200_000):
        index.add(np.ascontiguousarray(vectors[start : start + 200_000], dtype=np.float32))
    out = []
    for q in queries[:reps]:
        t = time.perf_counter()
        index.search(q.reshape(1, -1), 100)
        out.append(time.perf_counter() - t)
    return out


# --- the serving process ----------------------------------------------------------------------
def serve(index_dir: Path, questions_file: Path, exact_file: Path, backend: str, threads: int) -> None:
    """Run as a fresh process: load as the bot would, answer every question, report JSON."""
    quiet()
    from index.dense import DenseParams
    from index.dense import search as dense_search
    from index.store import open_current
    from retrieval.search import SearchConfig, Searcher

    rss0 = rss_mb()
    emb = embedder(backend, threads)
    from index.dense import set_search_threads

    set_search_threads(1)  # as serving does (NEWSQA_FAISS_THREADS)
    rss_model = rss_mb()
    t = time.perf_counter()
    version = open_current(index_dir)
    searcher = Searcher(version, emb, SearchConfig())
    startup = time.perf_counter() - t
    rss_loaded = rss_mb()
    data = json.loads(questions_file.read_text(encoding="utf-8"))
    questions, qvecs = data["questions"], np.array(data["vectors"], dtype=np.float32)
    exact = np.load(exact_file)
    for q in questions[:3]:
        searcher.answer(q)
    from retrieval.candidates import dense_candidates
    from retrieval.query import analyse

    stages: dict[str, list[float]] = {}
    worded: list[float] = []  # totals of questions whose words the corpus knows (no semantic quote pass)
    for q in questions:
        a = searcher.answer(q)
        for name in STAGES:  # a declined question skips the later stages: 0 there, so every list lines up
            stages.setdefault(name, []).append(a.timings.get(name, 0.0))
        if "total" in a.timings and searcher.backend.weigh(analyse(q)).known_share >= 0.5:
            worded.append(a.timings["total"])
    recall, recall_raw = [], []
    raw = DenseParams(exact_rerank=False)
    for qv, ex in zip(qvecs, exact):
        got = [r for r, _ in dense_candidates(version, qv, searcher.config.candidates, DenseParams())[:10]]
        recall.append(len(set(got) & set(ex.tolist())) / 10)
        got_raw = [r for r, _ in dense_search(version.faiss, qv, 10, raw)]
        recall_raw.append(len(set(got_raw) & set(ex.tolist())) / 10)
    from index.dense import index_kind

    print(json.dumps({
        "faiss": index_kind(version.faiss), "startup_s": startup,
        "rss_start_mb": rss0, "rss_model_mb": rss_model, "rss_loaded_mb": rss_loaded, "rss_end_mb": rss_mb(),
        "peak_rss_mb": peak_rss_mb(), "stages": stages, "worded_totals": worded,
        "recall10": float(np.mean(recall)), "recall10_no_rerank": float(np.mean(recall_raw)),
    }))


# --- driver -----------------------------------------------------------------------------------
def main() -> int:
    from index.embedder import encode_questions
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=float, nargs="+", default=[1e3, 1e4, 1e5, 1e6])
    ap.add_argument("--queries", type=int, default=200, help="real XQuAD-ar questions asked per size")
    ap.add_argument("--kind", default="auto", help="FAISS kind (as NEWSQA_FAISS_INDEX)")
    ap.add_argument("--work", type=Path, default=OUT / "scale", help="where the synthetic indexes are written")
    ap.add_argument("--keep", action="store_true", help="keep the synthetic indexes")
    ap.add_argument("--reuse", action="store_true", help="serve an index kept by an earlier --keep run of the same size")
    ap.add_argument("--backend", default="auto", help="query embedding backend when serving (auto, torch, onnx, onnx-int8)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads when serving (0 = torch's default)")
    ap.add_argument("--smoke", action="store_true", help="10^3 chunks (16 real), 6 questions")
    ap.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--serve-questions", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--serve-exact", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.serve, args.serve_questions, args.serve_exact, args.backend, args.threads)
        return 0
    quiet()
    if args.smoke:
        args.sizes, args.queries = [1e3], 6
    header("scale: FAISS kind, recall@10 vs exact, ask latency, serving RSS", args.smoke)
    passages, questions = xquad()
    emb = embedder()
    n_real = 16 if args.smoke else 800
    texts = real_chunks(passages, n_real)
    base = base_vectors(emb, texts)
    vocab = Vocabulary([p["text"] for p in passages])
    asked = [q["question"] for q in questions[: args.queries]]
    qvecs = encode_questions(emb, asked)
    del emb
    print(f"data: {len(base)} REAL e5 chunk vectors+texts (XQuAD-ar); rows beyond them are SYNTHETIC "
          f"(real vector + {NOISE}x Gaussian noise with the real covariance; texts drawn from the real vocabulary of "
          f"{len(vocab.words)} words); {len(asked)} real questions, embedded live")
    rows = []
    for size in [int(s) for s in args.sizes]:
        index_dir = args.work / f"n{size}"
        print(f"\n-- {size:,} chunks ({'all real' if size <= len(base) else f'{size - min(size, len(base)):,} synthetic'}) --")
        manifest = index_dir / "versions" / "v000001" / "manifest.json"
        if args.reuse and manifest.is_file() and json.loads(manifest.read_text())["counts"]["chunks"] == size:
            kind = json.loads(manifest.read_text())["faiss"]["kind"]
            build = {"kind": kind, "disk_mb": sum(f.stat().st_size for f in manifest.parent.rglob("*") if f.is_file()) / 2**20}
            print(f"reusing the index kept in {index_dir} (FAISS kind {kind})")
        else:
            with Timer() as t:
                build = write_version(index_dir, size, base, texts, vocab, args.kind)
            print(f"build {t.seconds:.1f}s: " + ", ".join(f"{k} {v:.1f}s" for k, v in build.items() if isinstance(v, float) and k != "disk_mb")
                  + f"; FAISS kind {build['kind']}; on disk {build['disk_mb']:.0f} MB")
        vectors = np.load(index_dir / "versions" / "v000001" / "vectors.npy", mmap_mode="r")
        exact = exact_top(vectors, qvecs)
        flat = flat_latency(vectors, qvecs, min(50, len(qvecs))) if size <= 2_000_000 else [float("nan")]
        del vectors
        qfile, efile = index_dir / "questions.json", index_dir / "exact.npy"
        qfile.write_text(json.dumps({"questions": asked, "vectors": qvecs.tolist()}, ensure_ascii=False), encoding="utf-8")
        np.save(efile, exact)
        proc = subprocess.run(
            [sys.executable, __file__, "--serve", str(index_dir), "--serve-questions", str(qfile), "--serve-exact", str(efile),
             "--backend", args.backend, "--threads", str(args.threads)],
            capture_output=True, text=True, cwd=ROOT,
        )
        if proc.returncode != 0:
            print(proc.stderr[-3000:])
            return 1
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        st = r["stages"]
        dense_p95 = percentile(st["dense"], 95) * 1000
        flat_p95 = percentile(flat, 95) * 1000
        print(f"FAISS {r['faiss']}: recall@10 vs exact {r['recall10']:.3f} (as served, approximate candidates re-scored exactly; "
              f"raw index {r['recall10_no_rerank']:.3f}); exact baseline recall 1.000")
        print(f"dense search p95 {dense_p95:.2f} ms vs exact IndexFlatIP in RAM (FAISS default threads) p95 {flat_p95:.2f} ms (ratio {dense_p95 / flat_p95:.2f})")
        for stage in STAGES:
            if stage in st:
                print(f"  ask {stage:8s} {ms_stats(st[stage])}")
        print(f"  ask {'other':8s} {ms_stats(unaccounted(st))}  (total minus the stages above)")
        total_p95 = percentile(st["total"], 95) * 1000
        print(f"ask end-to-end p95 {total_p95:.1f} ms = {total_p95 / (percentile(st['embed'], 95) * 1000):.2f}x query embedding alone")
        worded = r.get("worded_totals", [])
        print(f"  of which {len(worded)}/{len(st['total'])} questions share most words with the corpus: ask p95 "
              f"{percentile(worded, 95) * 1000:.1f} ms; the others share few words (meaning alone ranks and quotes them)")
        print(f"serving RSS: peak {r['peak_rss_mb']:.0f} MB (model only {r['rss_model_mb']:.0f} MB, ratio {r['peak_rss_mb'] / r['rss_model_mb']:.2f}); "
              f"index opened in {r['startup_s']:.2f}s")
        rows.append((size, build["kind"], r["faiss"], r["recall10"], r["recall10_no_rerank"], percentile(st["embed"], 95) * 1000,
                     total_p95, dense_p95, flat_p95, r["peak_rss_mb"], r["rss_model_mb"], r["startup_s"]))
        if not (args.keep or args.reuse):
            shutil.rmtree(index_dir, ignore_errors=True)
    print(f"\nsummary (synthetic above the first {len(base)} real rows; query embedding backend {args.backend}, threads {args.threads or 'default'}):")
    print("chunks     kind     recall@10 (raw)   embed p95  ask p95   dense p95 / flat p95   peak RSS / model-only   open")
    for size, kind, _, rec, raw, emb95, tot95, d95, f95, peak, model, start in rows:
        print(f"{size:>9,}  {kind:8s} {rec:.3f} ({raw:.3f})   {emb95:6.1f} ms  {tot95:6.1f} ms  {d95:6.2f} / {f95:6.2f} ms"
              f"      {peak:6.0f} / {model:4.0f} MB       {start:.2f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
