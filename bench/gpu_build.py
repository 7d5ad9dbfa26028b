"""Building on a GPU (NEWSQA_DEVICE=cuda): encode speed, fp16 against fp32 vectors, and a full build, same run.

On a machine whose torch sees a CUDA GPU, with the model provisioned (`newsqa model provision`):
  encode       the chunk texts of N news-length articles (bench/corpusgen.py) on the GPU in fp16, at batch
               sizes 32, 128 (the build's on a GPU) and 512; their sentences; late chunking (sentence vectors
               from the chunk's own pass); and the first --cpu-sample chunks with torch in fp32 on all the
               machine's cores, for the GPU / CPU ratio measured on the same machine in the same run
  agreement    cosine between each chunk's fp16 GPU vector and its fp32 CPU vector
  quality      dense-only gold-passage MRR@10 on XQuAD-ar and Wikinews-ar (Arabic and English questions),
               fp16 GPU vectors against fp32 CPU vectors (the data from ../shared, or NEWSQA_SHARED_DIR)
  build        a full `update_index` on the GPU (chunks, sentence vectors, lexicon, FAISS, BM25, SQLite),
               its chunks/s and its time against the raw encode of the same chunks; and the projection
               for 100,000 articles
Without a GPU it prints the fallback line the build would print and stops.

    python bench/gpu_build.py                    # 2,000 articles
    python bench/gpu_build.py --articles 200     # a quick look
    python bench/gpu_build.py --smoke --device cpu   # every step on the CPU (no figures worth keeping)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Timer, header, models_dir, quiet, shared_dir  # noqa: E402

PROJECT_ARTICLES = 100_000


def _dense_mrr(passage_vecs, passage_ids: list[str], question_vecs, gold: list[str]) -> tuple[float, list[str]]:  # noqa: ANN001
    """Gold-passage MRR@10 of a dense ranking, and each question's top passage."""
    import numpy as np

    scores = question_vecs @ passage_vecs.T
    top = np.argsort(-scores, axis=1)[:, :10]
    rr = 0.0
    for row, want in zip(top, gold):
        ids = [passage_ids[j] for j in row]
        rr += 1.0 / (ids.index(want) + 1) if want in ids else 0.0
    return rr / max(1, len(gold)), [passage_ids[row[0]] for row in top]


def _datasets(data: Path) -> list[tuple[str, list[dict], list[dict]]]:
    """(name, passages, questions) for each development set on disk."""
    def rows(path: Path) -> list[dict]:
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

    out = []
    xq = data / "xquad-ar"
    if (xq / "passages.jsonl").is_file():
        passages = rows(xq / "passages.jsonl")
        out.append(("xquad-ar, Arabic questions", passages, rows(xq / "questions.jsonl")))
        if (xq / "questions.en.jsonl").is_file():
            out.append(("xquad-ar, English questions", passages, rows(xq / "questions.en.jsonl")))
    wn = data / "wikinews-ar"
    if (wn / "passages.jsonl").is_file():
        passages, questions = rows(wn / "passages.jsonl"), rows(wn / "questions.jsonl")
        for lang, name in (("ar", "Arabic"), ("en", "English")):
            out.append((f"wikinews-ar, {name} questions", passages, [q for q in questions if q.get("lang") == lang]))
    return out


def _small_gpu(args: argparse.Namespace, chunks: list[str], vectors) -> None:  # noqa: ANN001
    """A GPU too small for the batch: the encoder halves it until it fits, and the vectors stay the same.

    It has its own model, so the batch size it is left with is not the rest of the run's.
    """
    import numpy as np
    import torch

    from index.embedder import DEFAULT_MODEL, SentenceTransformerEmbedder

    gpu = SentenceTransformerEmbedder(DEFAULT_MODEL, models_dir=models_dir(), device=args.device, backend="auto")
    gpu.load()

    index = torch.device(args.device).index or 0
    torch.cuda.empty_cache()
    total = torch.cuda.get_device_properties(index).total_memory
    room = torch.cuda.memory_allocated(index) + args.small_gpu_gib * 2**30  # the model stays; this much beside it
    torch.cuda.set_per_process_memory_fraction(room / total, index)
    longest = sorted(range(len(chunks)), key=lambda i: -len(chunks[i]))[:2048]
    try:
        with Timer() as t:
            got = gpu.encode_passages([chunks[i] for i in longest], 1024)
        cos = np.sum(got * vectors[longest], axis=1)
        print(f"GPU limited to {args.small_gpu_gib} GiB beside the model, the 2,048 longest chunks asked in batches of "
              f"1,024: encoded in batches of {gpu.batch_size_for(1)} after out-of-memory halving, {t.seconds:.2f}s; "
              f"cosine to the unlimited run min {cos.min():.5f}")
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0, index)
        del gpu
        torch.cuda.empty_cache()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--articles", type=int, default=2000, help="news-length articles generated for the run")
    ap.add_argument("--cpu-sample", type=int, default=600, help="chunks encoded on the CPU for the ratio")
    ap.add_argument("--device", default="cuda", help="the GPU to use (NEWSQA_DEVICE)")
    ap.add_argument("--small-gpu-gib", type=float, default=0.0,
                    help="at the end, limit this process to so many GiB of the GPU and encode the longest chunks in "
                         "batches of 1,024: the out-of-memory fallback on real hardware (0: skip)")
    ap.add_argument("--build-only", action="store_true", help="skip the batch-size sweep and the quality comparison")
    ap.add_argument("--smoke", action="store_true", help="2 articles (with --device cpu: a dry run of every step)")
    args = ap.parse_args()
    if args.smoke:
        args.articles, args.cpu_sample = 2, 8
    quiet()
    header("building on a GPU: encode, fp16 vs fp32, full build", args.smoke)
    import numpy as np
    import torch
    from corpusgen import news_sentences, write_news_corpus

    from index.articles import load_corpus
    from index.build import BuildOptions, encode_sorted, update_index
    from index.chunking import chunk_article, chunk_sentences
    from index.embedder import DEFAULT_MODEL, SentenceTransformerEmbedder, resolve_device

    print(f"torch {torch.__version__}, CUDA available: {torch.cuda.is_available()}")
    if resolve_device(args.device) != args.device:  # logs the one warning line a build would
        print(f"no GPU here: NEWSQA_DEVICE={args.device} falls back to the CPU; nothing to measure")
        return 0
    if args.device.startswith("cuda"):
        print(f"GPU: {torch.cuda.get_device_name(args.device)}")
    # backend auto, as a build asks: torch on a GPU (a CPU dry run, --device cpu, names torch itself)
    backend = "auto" if args.device.startswith("cuda") else "torch"
    gpu = SentenceTransformerEmbedder(DEFAULT_MODEL, models_dir=models_dir(), device=args.device, backend=backend)
    cpu = SentenceTransformerEmbedder(DEFAULT_MODEL, models_dir=models_dir(), device="cpu", backend="torch",
                                      threads=os.cpu_count() or 1)
    for e in (gpu, cpu):
        e.load()
        e.encode_passages(["تحميل النموذج قبل القياس"])
    dim = gpu.dim
    tag = "GPU fp16" if gpu.on_gpu else f"{gpu.device} fp32 (dry run)"
    print(f"GPU embedder: backend {gpu.backend} on {gpu.device}, dtype {next(gpu.model.parameters()).dtype}, "
          f"build batch {gpu.batch_size_for(BuildOptions().batch_size)}; CPU embedder: torch fp32, {torch.get_num_threads()} threads")

    data = shared_dir() / "data"
    extra = [p for p in (data / "wikinews-ar" / "passages.jsonl", data / "xquad-ar" / "passages.jsonl") if p.is_file()]
    opts = BuildOptions(sentence_vectors=True)
    with tempfile.TemporaryDirectory(prefix="newsqa-gpu-bench-") as tmp:
        corpus = Path(tmp) / "corpus"
        write_news_corpus(corpus, args.articles, news_sentences(extra))
        loaded = load_corpus(corpus, opts.max_article_bytes)
        chunks: list[str] = []
        spans: list[list[tuple[int, int]]] = []
        sentences: list[str] = []
        for a in loaded.articles:
            for c in chunk_article(a, opts.max_chars, opts.min_chars):
                chunks.append(c.embed_text)
                shift = len(c.section) + 1 if c.section else 0
                pieces = chunk_sentences(a.body, c.start, c.end)
                spans.append([(s - c.start + shift, e - c.start + shift) for s, e in pieces])
                sentences.extend(a.body[s:e] for s, e in pieces)
        print(f"corpus: {len(loaded.articles)} articles, {len(chunks)} chunks, {len(sentences)} sentences")

        rates: dict[str, float] = {}
        for batch in () if args.build_only else (32, 128, 256, 512, 1024):
            encode_sorted(gpu, chunks[:batch], dim, batch)  # this batch size's kernels, once, outside the timing
            with Timer() as t:
                encode_sorted(gpu, chunks, dim, batch)
            rates[f"gpu{batch}"] = len(chunks) / t.seconds
            print(f"{tag} chunks, batch {batch:3d}: {t.seconds:7.2f}s  {rates[f'gpu{batch}']:8.1f} chunks/s")
        build_batch = gpu.batch_size_for(opts.batch_size)
        with Timer() as raw:
            gpu_vecs = encode_sorted(gpu, chunks, dim, build_batch)
        for batch in [] if args.build_only else sorted({128, build_batch}):
            with Timer() as sent:
                encode_sorted(gpu, sentences, dim, batch)
            print(f"{tag} sentences, batch {batch}: {sent.seconds:7.2f}s  {len(sentences) / sent.seconds:8.1f} sentences/s  "
                  f"(sentence pass / chunk pass at the build's batch: {sent.seconds / raw.seconds:.2f})")
        with Timer() as late:
            gpu.encode_passages_with_spans(chunks, spans, build_batch)
        print(f"{tag} late chunking: {late.seconds:7.2f}s  {len(chunks) / late.seconds:8.1f} chunks/s with their sentence vectors")
        sample = chunks[: args.cpu_sample]
        with Timer() as c:
            cpu_vecs = encode_sorted(cpu, sample, dim, opts.batch_size)
        cpu_rate = len(sample) / c.seconds
        print(f"CPU fp32 torch ({torch.get_num_threads()} threads), first {len(sample)} chunks: {c.seconds:7.2f}s  {cpu_rate:8.1f} chunks/s")
        print(f"GPU / CPU chunk encoding, same machine and run: {len(chunks) / raw.seconds / cpu_rate:.1f}x")
        cos = np.sum(gpu_vecs[: len(sample)] * cpu_vecs, axis=1)
        print(f"fp16 GPU vs fp32 CPU chunk vectors: cosine min {cos.min():.5f}, mean {cos.mean():.5f}")

        for name, passages, questions in [] if args.build_only else _datasets(data):
            ids = [p["id"] for p in passages]
            texts = [p["text"] for p in passages]
            qs, gold = [q["question"] for q in questions], [q["passage_id"] for q in questions]
            got = {}
            for label, e in (("gpu", gpu), ("cpu", cpu)):
                got[label] = _dense_mrr(e.encode_passages(texts, 32), ids, e.encode_queries(qs, 32), gold)
            same = sum(a == b for a, b in zip(got["gpu"][1], got["cpu"][1])) / max(1, len(qs))
            print(f"dense MRR@10, {name} ({len(qs)}): fp32 CPU {got['cpu'][0]:.4f}, fp16 GPU {got['gpu'][0]:.4f} "
                  f"(delta {got['gpu'][0] - got['cpu'][0]:+.4f}); same top passage {same:.3f}")
        if not extra:
            print("quality: no development sets found (set NEWSQA_SHARED_DIR); skipped")

        if gpu.on_gpu and args.small_gpu_gib:
            _small_gpu(args, chunks, gpu_vecs)
        try:
            import bm25s  # noqa: F401
            import faiss  # noqa: F401
        except ImportError as exc:
            print(f"full build skipped: {exc}")
            return 0
        for label, o in (("separate sentences", opts), ("late chunking", BuildOptions(sentence_vectors=True, late_chunking=True))):
            with Timer() as build:
                report = update_index(corpus, Path(tmp) / f"index-{label.split()[0]}", gpu, o)
            rate = report.total_chunks / build.seconds
            print(f"full build on the GPU, {label}: {build.seconds:7.2f}s  {rate:8.1f} chunks/s  "
                  f"(raw encode / build: {raw.seconds / build.seconds:.3f}); projected for {PROJECT_ARTICLES:,} articles: "
                  f"{PROJECT_ARTICLES * report.total_chunks / len(loaded.articles) / rate / 60:.0f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
