"""Index build throughput: today's default, the new default, and the raw encode of the same chunks, same run.

The corpus is news-length: N articles (default 2,000) of 3–6 paragraphs of real sentences (the bundled
articles, plus the Arabic Wikinews and XQuAD-ar passages when ../shared has them), ~1,500 characters each
Figures, all in chunks per second of the same corpus:
  raw encode      the chunk texts through the new default backend in one call (the floor of any build)
  new default     a full `update_index` with the default settings: backend auto (onnx-int8 for passages) and
                  every sentence's vector encoded on its own; ratio raw s / build s
  late chunking   the same with NEWSQA_LATE_CHUNKING=true: sentence vectors pooled from the chunk's own pass
                  (no second pass; opt-in, see bench/RESULTS.md for why it is not the default)
  today's default torch, sentence vectors encoded one by one (the settings before this change), run on the
                  first --baseline-articles articles (it is slow), with the new default on the same articles
and the projected time for 100,000 articles on this machine.

    python bench/build_throughput.py                                  # 2,000 articles (~25 min on 2 cores)
    python bench/build_throughput.py --articles 500 --baseline-articles 100
    python bench/build_throughput.py --smoke                          # 6 articles
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Timer, header, models_dir, quiet, shared_dir, xquad_dir  # noqa: E402

PROJECT_ARTICLES = 100_000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--articles", type=int, default=2000, help="news-length articles generated for the run")
    ap.add_argument("--baseline-articles", type=int, default=200, help="of them, how many today's slow default builds")
    ap.add_argument("--smoke", action="store_true", help="6 articles")
    args = ap.parse_args()
    if args.smoke:
        args.articles, args.baseline_articles = 6, 2
    quiet()
    header("index build throughput: today's default vs the new default vs raw encode", args.smoke)
    from corpusgen import news_sentences, write_news_corpus

    from index.articles import load_corpus
    from index.build import BuildOptions, sentence_method, update_index
    from index.chunking import chunk_article
    from index.embedder import DEFAULT_MODEL, SentenceTransformerEmbedder

    extra = [p for p in (shared_dir() / "data" / "wikinews-ar" / "passages.jsonl", xquad_dir() / "passages.jsonl") if p.is_file()]
    sentences = news_sentences(extra)
    new = SentenceTransformerEmbedder(DEFAULT_MODEL, models_dir=models_dir())  # the default: backend auto
    old = SentenceTransformerEmbedder(DEFAULT_MODEL, models_dir=models_dir(), backend="torch")
    new_opts = BuildOptions(sentence_vectors=True)  # the defaults: sentences encoded on their own
    late_opts = replace(new_opts, late_chunking=True)
    old_opts = new_opts
    for e in (new, old):
        e.load()
        e.encode_passages(["تحميل النموذج قبل القياس"])
    print(f"new default: backend {new.backend} on {new.device}, sentence vectors {sentence_method(new, new_opts)}; "
          f"today's default: backend {old.backend}, sentence vectors {sentence_method(old, old_opts)}")
    with tempfile.TemporaryDirectory(prefix="newsqa-build-bench-") as tmp:
        corpus, subset = Path(tmp) / "corpus", Path(tmp) / "subset"
        paths = write_news_corpus(corpus, args.articles, sentences)
        subset.mkdir()
        for p in paths[: args.baseline_articles]:
            (subset / p.name).write_bytes(p.read_bytes())
        loaded = load_corpus(corpus, new_opts.max_article_bytes)
        chunks = [c for a in loaded.articles for c in chunk_article(a, new_opts.max_chars, new_opts.min_chars)]
        texts = [c.embed_text for c in chunks]
        chars = sum(len(a.body) for a in loaded.articles) / max(1, len(loaded.articles))
        per_article = len(chunks) / max(1, len(loaded.articles))
        print(f"corpus: {len(loaded.articles)} articles from {len(sentences)} real sentences"
              f"{' (bundled, Wikinews-ar, XQuAD-ar)' if extra else ' (bundled only)'}; {chars:.0f} chars/article, "
              f"{len(texts)} chunks ({per_article:.1f}/article, {sum(map(len, texts)) / max(1, len(texts)):.0f} chars/chunk)")

        with Timer() as raw:
            new.encode_passages(texts, new_opts.batch_size)
        with Timer() as build:
            report = update_index(corpus, Path(tmp) / "index-new", new, new_opts)
        assert report.total_chunks == len(texts), (report.total_chunks, len(texts))
        with Timer() as late_build:
            update_index(corpus, Path(tmp) / "index-late", new, late_opts)
        sub_chunks = sum(len(chunk_article(a, new_opts.max_chars, new_opts.min_chars)) for a in loaded.articles[: args.baseline_articles])
        with Timer() as old_build:
            update_index(subset, Path(tmp) / "index-old", old, old_opts)
        with Timer() as new_sub:
            update_index(subset, Path(tmp) / "index-new-subset", new, new_opts)

    raw_speed, build_speed = len(texts) / raw.seconds, len(texts) / build.seconds
    old_speed, new_sub_speed = sub_chunks / old_build.seconds, sub_chunks / new_sub.seconds
    print(f"raw model.encode : {raw.seconds:8.1f}s  {raw_speed:7.2f} chunks/s  (backend {new.backend}, chunk texts only)")
    print(f"index build      : {build.seconds:8.1f}s  {build_speed:7.2f} chunks/s  (new default, {report.embedded_chunks} chunks, sentence vectors included)")
    print(f"pipeline ratio (raw s / build s): {raw.seconds / build.seconds:.3f}  (target >= 0.9; the sentence pass costs about a chunk pass)")
    print(f"late chunking    : {late_build.seconds:8.1f}s  {len(texts) / late_build.seconds:7.2f} chunks/s  "
          f"(opt-in; pipeline ratio {raw.seconds / late_build.seconds:.3f})")
    print(f"today's default  : {old_build.seconds:8.1f}s  {old_speed:7.2f} chunks/s  (first {args.baseline_articles} articles, {sub_chunks} chunks)")
    print(f"new default, same: {new_sub.seconds:8.1f}s  {new_sub_speed:7.2f} chunks/s  (the same {args.baseline_articles} articles)")
    print(f"speed-up new / today's default: {new_sub_speed / old_speed:.2f}x on the same articles  (target >= 4)")
    total = PROJECT_ARTICLES * per_article
    print(f"projected for {PROJECT_ARTICLES:,} articles (~{total:,.0f} chunks at {per_article:.1f}/article) on this machine: "
          f"new default {total / build_speed / 3600:.1f} h, today's default {total / old_speed / 3600:.1f} h")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
