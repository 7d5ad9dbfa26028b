"""The Arabic analyser's speed on news-length text: BM25 terms of every chunk, with and without the per-word cache.

A GPU build is limited by the CPU work around the encoder, most of it cutting chunks into BM25 terms (BENCH.md,
"Building on a GPU"). `normalize_word` remembers each word's normal form; this script times `terms()` over the
chunks of N generated articles both ways, in the same run (the cache emptied before each pass), and checks that
both give the same terms.

    python bench/analyser_speed.py                 # 2,000 articles
    python bench/analyser_speed.py --smoke         # 20 articles
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Timer, header, shared_dir  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--articles", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3, help="passes of each way; the fastest is reported")
    ap.add_argument("--smoke", action="store_true", help="20 articles, one round")
    args = ap.parse_args()
    if args.smoke:
        args.articles, args.rounds = 20, 1
    header("Arabic analyser: BM25 terms of every chunk, per-word cache on and off", args.smoke)
    from corpusgen import news_sentences, write_news_corpus

    from index import arabic, numbers
    from index.articles import load_corpus
    from index.build import BuildOptions
    from index.chunking import chunk_article

    data = shared_dir() / "data"
    extra = [p for p in (data / "wikinews-ar" / "passages.jsonl", data / "xquad-ar" / "passages.jsonl") if p.is_file()]
    opts = BuildOptions()
    with tempfile.TemporaryDirectory(prefix="newsqa-analyser-bench-") as tmp:
        write_news_corpus(Path(tmp), args.articles, news_sentences(extra))
        articles = load_corpus(Path(tmp), opts.max_article_bytes).articles
    texts = [c.embed_text for a in articles for c in chunk_article(a, opts.max_chars, opts.min_chars)]
    cached = arabic.normalize_word
    best: dict[str, float] = {}
    results: dict[str, list[list[str]]] = {}
    try:
        for _ in range(args.rounds):
            for name, fn in (("uncached", arabic.normalize), ("cached", cached)):
                arabic.normalize_word = numbers.normalize_word = fn  # type: ignore[assignment]
                cached.cache_clear()
                with Timer() as t:
                    results[name] = [arabic.terms(x) for x in texts]
                best[name] = min(best.get(name, t.seconds), t.seconds)
    finally:
        arabic.normalize_word = numbers.normalize_word = cached
    print(f"{len(texts)} chunks of {len(articles)} articles")
    for name in ("uncached", "cached"):
        print(f"terms(), normalize per word {name:8s}: {best[name]:6.2f}s  {len(texts) / best[name]:8.0f} chunks/s")
    print(f"speed-up: {best['uncached'] / best['cached']:.2f}x  (same terms: {results['uncached'] == results['cached']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
