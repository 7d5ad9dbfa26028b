"""Index build throughput: today's default, the new default, and the raw encode of the same chunks, same run.

The corpus is news-length: N articles (default 2,000) of 3–6 paragraphs of real sentences (the bundled
articles, plus the Arabic Wikinews and XQuAD-ar passages when ../shared has them), ~1,500 characters each.
Figures, all in chunks per second of the same corpus:
  raw encode      the chunk texts through the new default backend in one call (the floor of any build)
  new default     a full `update_index` with the default settings: backend auto (onnx-int8, the
                  activation-smoothed int8 copy in ONNX Runtime) and every sentence's vector encoded on its own;
                  ratio raw s / build s
then, on the first --baseline-articles articles (today's default is slow):
  today's default torch, sentences encoded on their own (the settings before this change)
  new default     the same articles, for the speed-up
  onnx float      NEWSQA_EMBEDDING_BACKEND=onnx (the float copy: the default before int8; torch's vectors)
  late chunking   NEWSQA_LATE_CHUNKING=true (opt-in: sentence vectors from the chunk's own pass)
and the projected time for 100,000 articles on this machine.

    python bench/build_throughput.py                                  # 2,000 articles (~25 min on 2 cores)
    python bench/build_throughput.py --articles 500 --baseline-articles 100
    python bench/build_throughput.py --smoke                          # 3 articles
"""

from __future__ import annotations

import argparse
import json
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
    ap.add_argument("--smoke", action="store_true", help="3 articles (today's default builds 1)")
    args = ap.parse_args()
    if args.smoke:
        args.articles, args.baseline_articles = 3, 1
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
    float_ = SentenceTransformerEmbedder(DEFAULT_MODEL, models_dir=models_dir(), backend="onnx")
    opts = BuildOptions(sentence_vectors=True)  # the defaults: sentences encoded on their own
    late_opts = replace(opts, late_chunking=True)
    for e in (new, old, float_):
        e.load()
        e.encode_passages(["تحميل النموذج قبل القياس"])
    print(f"new default: backend {new.backend} on {new.device}, sentence vectors {sentence_method(new, opts)}; "
          f"today's default: backend {old.backend}, sentence vectors {sentence_method(old, opts)}")
    with tempfile.TemporaryDirectory(prefix="newsqa-build-bench-") as tmp:
        corpus, subset = Path(tmp) / "corpus", Path(tmp) / "subset"
        paths = write_news_corpus(corpus, args.articles, sentences)
        subset.mkdir()
        for p in paths[: args.baseline_articles]:
            (subset / p.name).write_bytes(p.read_bytes())
        loaded = load_corpus(corpus, opts.max_article_bytes)
        chunks = [c for a in loaded.articles for c in chunk_article(a, opts.max_chars, opts.min_chars)]
        texts = [c.embed_text for c in chunks]
        chars = sum(len(a.body) for a in loaded.articles) / max(1, len(loaded.articles))
        per_article = len(chunks) / max(1, len(loaded.articles))
        print(f"corpus: {len(loaded.articles)} articles from {len(sentences)} real sentences"
              f" (bundled{''.join(', ' + p.parent.name for p in extra)}); {chars:.0f} chars/article, "
              f"{len(texts)} chunks ({per_article:.1f}/article, {sum(map(len, texts)) / max(1, len(texts)):.0f} chars/chunk)")

        with Timer() as raw:
            new.encode_passages(texts, opts.batch_size)
        with Timer() as build:
            report = update_index(corpus, Path(tmp) / "index-new", new, opts)
        assert report.total_chunks == len(texts), (report.total_chunks, len(texts))
        manifest = json.loads((Path(tmp) / "index-new" / "versions" / report.version / "manifest.json").read_text(encoding="utf-8"))
        lexicon, second = manifest.get("lexicon"), manifest.get("second")
        sub_chunks = sum(len(chunk_article(a, opts.max_chars, opts.min_chars)) for a in loaded.articles[: args.baseline_articles])
        sub: dict[str, float] = {}
        for name, emb, o in (("today", old, opts), ("new", new, opts), ("float", float_, opts), ("late", new, late_opts)):
            with Timer() as t:
                update_index(subset, Path(tmp) / f"index-subset-{name}", emb, o)
            sub[name] = sub_chunks / t.seconds

    raw_speed, build_speed = len(texts) / raw.seconds, len(texts) / build.seconds
    print(f"raw model.encode : {raw.seconds:8.1f}s  {raw_speed:7.2f} chunks/s  (backend {new.backend}, chunk texts only)")
    print(f"index build      : {build.seconds:8.1f}s  {build_speed:7.2f} chunks/s  (new default, {report.embedded_chunks} chunks, sentence vectors included)")
    print(f"pipeline ratio (raw s / build s): {raw.seconds / build.seconds:.3f}  (target >= 0.9; the sentence pass costs about a chunk pass)")
    if lexicon:
        print(f"  of which lexicon: {lexicon['seconds']:8.1f}s  ({lexicon['count']} words embedded for English questions; "
              f"x{lexicon['seconds'] / build.seconds:.3f} of the build)")
    if second:
        print(f"  of which the second encoder: {second['seconds']:8.1f}s  ({second['embedded']} chunks, {second['embedded'] / max(second['seconds'], 1e-9):.1f} chunks/s; "
              f"x{second['seconds'] / build.seconds:.3f} of the build)")
    n = args.baseline_articles
    print(f"on the first {n} articles ({sub_chunks} chunks), chunks/s with sentence vectors:")
    print(f"  today's default (torch)  {sub['today']:7.2f}")
    print(f"  new default ({new.backend})     {sub['new']:7.2f}")
    print(f"  onnx float (before int8) {sub['float']:7.2f}")
    print(f"late chunking    : {sub['late']:7.2f} chunks/s  (opt-in, the new default's backend; x{sub['late'] / sub['new']:.2f} the new default)")
    print(f"speed-up new / today's default: {sub['new'] / sub['today']:.2f}x on the same articles  (target >= 4; "
          f"onnx float {sub['float'] / sub['today']:.2f}x, late chunking {sub['late'] / sub['today']:.2f}x)")
    total = PROJECT_ARTICLES * per_article
    # From the same-articles runs, back to back: the full-corpus runs above are minutes apart, under other load.
    print(f"projected for {PROJECT_ARTICLES:,} articles (~{total:,.0f} chunks at {per_article:.1f}/article) on this machine: "
          f"new default {total / sub['new'] / 3600:.1f} h, today's default {total / sub['today'] / 3600:.1f} h, "
          f"onnx float {total / sub['float'] / 3600:.1f} h, late chunking {total / sub['late'] / 3600:.1f} h")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
