"""Index build throughput against raw model.encode of the very same chunk texts, in the same run.

The corpus is real: the bundled sample article, the test articles and XQuAD-ar passages written
as JSONL news articles. First the raw baseline: model.encode of every chunk's embed_text with the
passage prompt, batch size and normalisation the build uses, in one call. Then a full
`update_index` (load, chunk, embed, BM25, FAISS, SQLite, fsync, switch) into a fresh folder.
ratio = raw seconds ÷ build seconds (1.0 = no overhead; target ≥ 0.95).

    python bench/build_throughput.py               # 240 XQuAD-ar passages + sample (~10 min on 2 cores)
    python bench/build_throughput.py --passages 60
    python bench/build_throughput.py --smoke       # the short test articles only
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Timer, embedder, header, make_corpus, quiet  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--passages", type=int, default=240, help="XQuAD-ar passages added as articles")
    ap.add_argument("--backend", default="torch", help="embedding backend (as NEWSQA_EMBEDDING_BACKEND)")
    ap.add_argument("--repeats", type=int, default=2, help="alternating raw/build runs; the fastest of each counts")
    ap.add_argument("--smoke", action="store_true", help="the short test articles only, one run each")
    ap.add_argument("--sentence-vectors", action="store_true",
                    help="build with sentence vectors (NEWSQA_SENTENCE_VECTORS); the raw baseline then encodes the same sentence texts too")
    args = ap.parse_args()
    if args.smoke:
        args.repeats = 1
    quiet()
    header("index build throughput vs raw model.encode", args.smoke)
    from index.articles import load_corpus
    from index.build import BuildOptions, update_index
    from index.chunking import chunk_article, chunk_sentences

    opts = BuildOptions(sentence_vectors=args.sentence_vectors)
    emb = embedder(args.backend)
    with tempfile.TemporaryDirectory(prefix="newsqa-build-bench-") as tmp:
        corpus, index_dir = Path(tmp) / "corpus", Path(tmp) / "index"
        make_corpus(corpus, 0 if args.smoke else args.passages, sample=not args.smoke)
        loaded = load_corpus(corpus, opts.max_article_bytes)
        chunks = [(a, c) for a in loaded.articles for c in chunk_article(a, opts.max_chars, opts.min_chars)]
        texts = [c.embed_text for _, c in chunks]
        # Everything the build encodes: chunk texts, plus each chunk's sentences when they are stored too.
        encoded = texts + ([a.body[s:e] for a, c in chunks for s, e in chunk_sentences(a.body, c.start, c.end)]
                           if args.sentence_vectors else [])
        print(f"corpus: {len(loaded.articles)} real articles, {len(texts)} chunks, "
              f"{sum(map(len, texts)) / max(1, len(texts)):.0f} chars/chunk; batch size {opts.batch_size}; backend {args.backend}")
        emb.encode_passages(texts[:8], opts.batch_size)  # warm both paths alike
        raw_times, build_times = [], []
        for i in range(args.repeats):  # alternate, keep the fastest of each: other processes only ever slow a run down
            with Timer() as raw:
                if args.backend == "torch":
                    emb.model.encode(encoded, prompt=emb._prompts.get("passage"), batch_size=opts.batch_size,
                                     normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
                else:
                    emb.encode_passages(encoded, opts.batch_size)
            raw_times.append(raw.seconds)
            with Timer() as build:
                report = update_index(corpus, index_dir / str(i), emb, opts)
            build_times.append(build.seconds)
            assert report.total_chunks == len(texts), (report.total_chunks, len(texts))
    raw_s, build_s = min(raw_times), min(build_times)
    raw_speed, build_speed = len(texts) / raw_s, len(texts) / build_s
    runs = lambda ts: ", ".join(f"{t:.1f}" for t in ts)  # noqa: E731
    print(f"raw model.encode : {raw_s:8.1f}s  {raw_speed:7.2f} chunks/s  (baseline: {len(encoded)} texts; runs {runs(raw_times)} s)")
    print(f"index build      : {build_s:8.1f}s  {build_speed:7.2f} chunks/s  ({report.embedded_chunks} embedded; runs {runs(build_times)} s)")
    print(f"pipeline ratio (raw s / build s): {raw_s / build_s:.3f}  (target >= 0.95; overhead {100 * (build_s / raw_s - 1):+.1f}%; fastest of {args.repeats} alternating runs each)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
