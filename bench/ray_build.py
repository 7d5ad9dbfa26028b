"""Index build with its embedding on Ray vs the plain build: chunks per second of the same corpus, same run.

The corpus is N news-length articles (bench/corpusgen.py, as bench/build_throughput.py makes them), built
with the default options (sentence vectors encoded on their own). Figures, all in chunks per second:
  plain           `update_index` in this process (the model's own threads over all --cpus cores)
  ray             the same with BuildOptions(ray=True), as `newsqa index build --ray` runs it: a local Ray
                  instance over all cores (loopback only), started and stopped by the build itself
  ray, warm       the same on an instance of --cpus CPUs already up (what a build joining a running cluster pays)
and the ratios ray / plain, plus the largest difference between the two builds' vectors.

    python bench/ray_build.py                    # 200 articles
    python bench/ray_build.py --articles 1000 --cpus 2
    python bench/ray_build.py --smoke            # 1 article
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Timer, header, models_dir, quiet  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--articles", type=int, default=200, help="news-length articles generated for the run")
    ap.add_argument("--cpus", type=int, default=2, help="CPUs of the warm Ray instance (one worker, one thread each)")
    ap.add_argument("--smoke", action="store_true", help="1 article")
    args = ap.parse_args()
    if args.smoke:
        args.articles = 1
    quiet()
    header("index build: plain vs embedding on a local Ray instance", args.smoke)
    import numpy as np
    from corpusgen import news_sentences, write_news_corpus

    from index.build import BuildOptions, update_index
    from index.embedder import DEFAULT_MODEL, SentenceTransformerEmbedder
    from index.ray_embed import import_ray, ray_session
    from index.store import open_current

    import_ray()
    os.environ.pop("RAY_ADDRESS", None)  # a local instance, never a configured cluster
    embedder = SentenceTransformerEmbedder(DEFAULT_MODEL, models_dir=models_dir())
    embedder.load()
    embedder.encode_passages(["تحميل النموذج قبل القياس"])
    opts = BuildOptions(sentence_vectors=True)
    with tempfile.TemporaryDirectory(prefix="newsqa-ray-bench-") as tmp:
        corpus = Path(tmp) / "corpus"
        write_news_corpus(corpus, args.articles, news_sentences([]))
        with Timer() as plain:
            report = update_index(corpus, Path(tmp) / "plain", embedder, opts)
        chunks = report.total_chunks
        print(f"corpus: {report.total_articles} articles, {chunks} chunks; backend {embedder.backend}, "
              f"{os.cpu_count()} cores here; on Ray one worker and one thread per CPU (warm instance: {args.cpus} CPUs)")
        with Timer() as cold:
            update_index(corpus, Path(tmp) / "ray", embedder, replace(opts, ray=True))
        with contextlib.ExitStack() as stack:
            with Timer() as start:
                stack.enter_context(ray_session(num_cpus=args.cpus))
            with Timer() as warm:
                update_index(corpus, Path(tmp) / "ray-warm", embedder, replace(opts, ray=True))
        versions = [open_current(Path(tmp) / name) for name in ("plain", "ray", "ray-warm")]
        a, b, c = (np.asarray(v.vectors) for v in versions)
        diff = max(float(np.abs(a - b).max()), float(np.abs(a - c).max()))
        for v in versions:
            v.close()
    rate = {name: chunks / t.seconds for name, t in (("plain", plain), ("ray", cold), ("warm", warm))}
    print(f"plain            : {plain.seconds:8.1f}s  {rate['plain']:7.2f} chunks/s")
    print(f"ray              : {cold.seconds:8.1f}s  {rate['ray']:7.2f} chunks/s  (starts and stops its own instance)")
    print(f"ray, warm        : {warm.seconds:8.1f}s  {rate['warm']:7.2f} chunks/s  (instance already up; it took {start.seconds:.1f}s to start)")
    print(f"ratio ray / plain: {rate['ray'] / rate['plain']:.2f}x  (warm {rate['warm'] / rate['plain']:.2f}x; same corpus, same run)")
    print(f"largest vector difference ray vs plain: {diff:.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
