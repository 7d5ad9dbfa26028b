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
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, Timer, embedder, header, make_corpus, ms_stats, percentile, quiet, xquad  # noqa: E402

STAGES = ("embed", "lexical", "dense", "fusion", "quote", "total")


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
    with ThreadPoolExecutor(threads) as pool, Timer() as t:
        list(pool.map(lambda q: emb.encode_queries([q]), questions))
    return len(questions) / t.seconds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index-dir", type=Path, help="use this index instead of building one")
    ap.add_argument("--passages", type=int, default=60, help="XQuAD-ar passages indexed (when building)")
    ap.add_argument("--questions", type=int, default=200)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--backend", default="torch")
    ap.add_argument("--smoke", action="store_true", help="test articles + 4 passages (or --index-dir), 4 questions, 2 threads")
    args = ap.parse_args()
    quiet()
    if args.smoke:
        args.passages, args.questions, args.threads = 4, 4, 2
    header("warm ask latency per stage; concurrent questions/s with micro-batching", args.smoke)
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
            emb.encode_queries([q])
            embed_alone.append(time.perf_counter() - t0)
        stages: dict[str, list[float]] = {s: [] for s in STAGES}
        found = 0
        for q in questions:
            a = searcher.answer(q)
            found += a.found
            for s in STAGES:
                if s in a.timings:
                    stages[s].append(a.timings[s])
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
