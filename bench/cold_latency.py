"""Cold-cache latency of Searcher.answer on XQuAD-ar: the question embedded per call, no sentence
vectors warmed (what a freshly started bot pays), for N Arabic and N English questions.

    python bench/cold_latency.py [N]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import xquad_dir
from bot.settings import Settings
from index.embedder import configure_threads
from index.store import open_current
from bot.evaluate import eval_index_dir  # noqa: E402
from retrieval.evaluate import load_dataset, load_questions, select
from retrieval.search import Searcher

DATA = xquad_dir()  # NEWSQA_XQUAD_DIR, else ../shared/data/xquad-ar beside the checkout, else the shipped slice


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    settings = Settings()
    configure_threads(settings.threads)
    ds = load_dataset(DATA)
    emb = settings.embedder()
    emb.encode_queries(["warm up the model"])
    index_dir = eval_index_dir(settings, ds, emb)
    for lang, fname in (("ar", "questions.jsonl"), ("en", "questions.en.jsonl")):
        s = Searcher(open_current(index_dir), emb, settings.search_config())
        qs = select(load_questions(DATA / fname), "B", n)
        times = []
        for q in qs:
            t = time.perf_counter()
            s.answer(q.question, k=5)
            times.append((time.perf_counter() - t) * 1000)
        print(f"{lang}: {n} questions, cold sentence cache: mean {np.mean(times):.0f} ms, p95 {np.percentile(times, 95):.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
