"""Warm `ask` latency, end to end and per stage, plus concurrent questions/s with and without micro-batching.

A real index is built from real articles (test articles, the sample article and XQuAD-ar
passages as news), or an existing one is used (--index-dir). Questions are real XQuAD-ar
questions about the indexed passages. Baseline measured in the same run: the query embedding
alone (encode_queries of the same question), so `ask p95 / embed p95` is what retrieval, fusion
and quoting add. Concurrency: --threads askers share one Searcher, first with plain one-by-one
query embedding, then through retrieval.batching.BatchingEmbedder.

    python bench/query_latency.py                     # 60 passages, 200 questions, 8 threads
    python bench/query_latency.py --index-dir INDEX_DIR  # an existing index, e.g. the data home's (newsqa index status names it)
    python bench/query_latency.py --smoke
    python bench/query_latency.py --sizes 1e3 1e4 1e5   # p50/p95 per stage as the corpus grows (bench/scale.py's
                                                        # synthetic indexes, with stored sentence vectors)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, Timer, embedder, header, make_corpus, ms_stats, percentile, quiet, real_chunks, xquad  # noqa: E402

STAGES = ("analyse", "embed", "lexical", "dense", "fusion", "score", "decide", "quote", "total")


def bot_answers_per_second(index_dir: Path, questions: list[str], users: int = 8) -> float | None:
    """Answers/s through the loopback Bot API (bench/bot_throughput.py's `measure`)."""
    script = ROOT / "bench" / "bot_throughput.py"
    if not script.is_file():
        return None
    import importlib.util

    spec = importlib.util.spec_from_file_location("bot_throughput", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    measure = getattr(module, "measure", None)
    return float(measure(index_dir, questions, users=users)) if measure else None


def concurrent_rate(searcher, questions: list[str], threads: int) -> float:  # noqa: ANN001
    """Questions answered per second by `threads` askers sharing the searcher."""
    with ThreadPoolExecutor(threads) as pool, Timer() as t:
        list(pool.map(searcher.answer, questions))
    return len(questions) / t.seconds


def concurrent_embed_rate(emb, questions: list[str], threads: int) -> float:  # noqa: ANN001
    """Question embeddings per second by `threads` askers, each embedding one question at a time."""
    from index.embedder import encode_questions

    with ThreadPoolExecutor(threads) as pool, Timer() as t:
        list(pool.map(lambda q: encode_questions(emb, [q]), questions))
    return len(questions) / t.seconds


def lexical_backends(searcher, asked: list[str]) -> None:  # noqa: ANN001
    """BM25 top-k alone with each of bm25s's backends on the same index and questions (the product picks one by size)."""
    import importlib.util

    from retrieval.query import analyse

    side = searcher.backend.lexicon
    chosen, queries = side.backend, [analyse(q) for q in asked]
    for name in ("numpy", "numba"):
        if name == "numba" and importlib.util.find_spec("numba") is None:
            continue
        side.backend = name
        with Timer() as first:
            searcher.lexical(queries[0], searcher.config.candidates)  # numba compiles on its first call
        times = []
        for q in queries:
            with Timer() as t:
                searcher.lexical(q, searcher.config.candidates)
            times.append(t.seconds)
        print(f"    lexical top-k, bm25s {name}: p50 {percentile(times, 50) * 1000:.2f} ms, p95 {percentile(times, 95) * 1000:.2f} ms "
              f"(first call {first.seconds * 1000:.0f} ms)")
    side.backend = chosen


def by_size(sizes: list[int], n_questions: int, backend: str) -> int:
    """p50/p95 of every stage at each corpus size, same questions, same process: how each stage grows."""
    import scale

    from index.dense import set_search_threads
    from index.store import open_current
    from retrieval.search import Searcher

    set_search_threads(1)  # as serving does (NEWSQA_FAISS_THREADS)
    passages, questions = xquad()
    emb = embedder(backend)
    texts = real_chunks(passages, 800)
    base = scale.base_vectors(emb, texts)
    vocab = scale.Vocabulary([p["text"] for p in passages])
    asked = [q["question"] for q in questions[:n_questions]]
    print(f"{len(asked)} real XQuAD-ar questions; query backend {emb.backend}; rows beyond the first {len(base)} real ones "
          f"are SYNTHETIC (bench/scale.py), every chunk with stored sentence vectors as a real build has")
    table: dict[int, dict[str, list[float]]] = {}
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="newsqa-latency-size-") as tmp:
            with Timer() as t:
                scale.write_version(Path(tmp) / "index", size, base, texts, vocab, "auto")
            version = open_current(Path(tmp) / "index")
            searcher = Searcher(version, emb)
            for q in asked[:3]:
                searcher.answer(q)
            stages: dict[str, list[float]] = {s: [] for s in STAGES}
            for q in asked:
                a = searcher.answer(q)
                for s in STAGES:
                    stages[s].append(a.timings.get(s, 0.0))
            stages["other"] = scale.unaccounted(stages)
            table[size] = stages
            print(f"{size:>9,} chunks: FAISS {version.manifest['faiss']['kind']}, written in {t.seconds:.0f}s; "
                  f"ask p50 {percentile(stages['total'], 50) * 1000:.1f} ms, p95 {percentile(stages['total'], 95) * 1000:.1f} ms; "
                  f"BM25 top-k on bm25s's {searcher.backend.lexicon.backend} backend")  # type: ignore[attr-defined]
            lexical_backends(searcher, asked)
            version.close()
    print("\nstage      " + "".join(f"{size:>22,}" for size in sizes) + "   (p50 / p95 ms)")
    for s in (*STAGES, "other"):
        cells = "".join(f"{percentile(table[n][s], 50) * 1000:>13.2f} / {percentile(table[n][s], 95) * 1000:6.2f}" for n in sizes)
        print(f"ask {s:7s}{cells}")
    first, last = sizes[0], sizes[-1]
    for s in ("lexical", "dense", "total"):
        grow = percentile(table[last][s], 50) / max(percentile(table[first][s], 50), 1e-9)
        print(f"{s} p50 grows {grow:.1f}x from {first:,} to {last:,} chunks ({last / first:.0f}x the corpus)")
    return 0


def main() -> int:
    from index.embedder import encode_questions
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index-dir", type=Path, help="use this index instead of building one")
    ap.add_argument("--passages", type=int, default=60, help="XQuAD-ar passages indexed (when building)")
    ap.add_argument("--questions", type=int, default=200)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--sizes", type=float, nargs="+", help="per-stage latency at these corpus sizes (synthetic indexes)")
    ap.add_argument("--smoke", action="store_true", help="test articles + 4 passages (or --index-dir), 4 questions, 2 threads")
    args = ap.parse_args()
    quiet()
    if args.smoke:
        args.passages, args.questions, args.threads = 4, 4, 2
    header("warm ask latency per stage; concurrent questions/s with micro-batching", args.smoke)
    if args.sizes:
        return by_size([int(n) for n in args.sizes], args.questions, args.backend)
    from index.build import BuildOptions, update_index
    from index.store import open_current
    from retrieval.batching import BatchingEmbedder
    from retrieval.search import Searcher

    passages, all_questions = xquad()
    emb = embedder(args.backend)
    from index.dense import set_search_threads

    set_search_threads(1)  # as serving does (NEWSQA_FAISS_THREADS)
    with tempfile.TemporaryDirectory(prefix="newsqa-latency-") as tmp:
        index_dir = args.index_dir
        if index_dir is None:
            index_dir = Path(tmp) / "index"
            make_corpus(Path(tmp) / "corpus", args.passages, sample=not args.smoke)
            with Timer() as t:
                report = update_index(Path(tmp) / "corpus", index_dir, emb, BuildOptions())
            print(f"built a real index: {report.total_articles} articles, {report.total_chunks} chunks in {t.seconds:.0f}s")
        version = open_current(index_dir)
        searcher = Searcher(version, emb)
        kept = {p["id"] for p in passages[: args.passages]} if args.index_dir is None else None
        questions = [q["question"] for q in all_questions if kept is None or q["passage_id"] in kept][: args.questions]
        print(f"index {version.name}: {version.n_chunks} chunks, FAISS {version.manifest.get('faiss', {}).get('kind')}; "
              f"{len(questions)} real questions; backend {args.backend}")
        for q in questions[: 1 if args.smoke else 3]:
            searcher.answer(q)
        embed_alone = []
        for q in questions:
            t0 = time.perf_counter()
            encode_questions(emb, [q])
            embed_alone.append(time.perf_counter() - t0)
        stages: dict[str, list[float]] = {s: [] for s in STAGES}
        found = 0
        for q in questions:
            a = searcher.answer(q)
            found += a.found
            for s in STAGES:
                stages[s].append(a.timings.get(s, 0.0))  # a declined question skips the later stages
        print(f"baseline  query embedding alone  {ms_stats(embed_alone)}")
        for s in STAGES:
            if stages[s]:
                print(f"ask {s:8s} ({len(stages[s]):3d} q)      {ms_stats(stages[s])}")
        ratio = percentile(stages["total"], 95) / percentile(embed_alone, 95)
        print(f"ask p95 / embedding-alone p95: {ratio:.2f}  ({found}/{len(questions)} answered)")

        batching = BatchingEmbedder(emb)
        plain_e, batched_e = concurrent_embed_rate(emb, questions, args.threads), concurrent_embed_rate(batching, questions, args.threads)
        print(f"{args.threads} concurrent askers, query embedding only: one-by-one {plain_e:.1f} q/s (baseline), "
              f"micro-batched {batched_e:.1f} q/s (ratio {batched_e / plain_e:.2f})")
        plain = concurrent_rate(searcher, questions, args.threads)
        batched_searcher = Searcher(version, batching)
        rate = concurrent_rate(batched_searcher, questions, args.threads)
        b = batching.batcher
        print(f"{args.threads} concurrent askers, whole answers: one-by-one embedding {plain:.1f} q/s (baseline), "
              f"micro-batched {rate:.1f} q/s (ratio {rate / plain:.2f}; {b.encoded} questions in {b.batches} encoder calls)")
        batching.close()
        bot = bot_answers_per_second(index_dir, questions, users=2 if args.smoke else 8)
        shown = f"{bot:.1f} (same questions, {2 if args.smoke else 8} users, 2 search workers; whole answers above are the baseline: ratio {bot / plain:.2f})" if bot else "NOT MEASURED"
        print(f"bot answers/s through the loopback Bot API: {shown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
