"""Full XQuAD-ar table: each retriever × Arabic/English questions × split halves A and B.

    python bench/xquad_eval.py [--split A] [--lang ar] [--mode fused]

The index and the question vectors are cached under var/eval-cache (same place `newsqa eval` uses),
so only the first run embeds anything.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import xquad_dir
from bot.settings import Settings
from index.build import update_index
from index.embedder import configure_threads
from index.store import open_current
from bot.evaluate import eval_index_dir  # noqa: E402
from retrieval.evaluate import (
    evaluate,
    format_table,
    load_dataset,
    load_questions,
    query_vectors,
    select,
)
from retrieval.search import Searcher

DATA = xquad_dir()  # NEWSQA_XQUAD_DIR, else ../shared/data/xquad-ar beside the checkout, else the shipped slice


def main() -> int:
    from functools import partial
    from index.embedder import encode_questions
    p = argparse.ArgumentParser()
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--split", action="append", choices=("A", "B"))
    p.add_argument("--lang", action="append", choices=("ar", "en"))
    p.add_argument("--mode", action="append", choices=("lexical", "dense", "fused"))
    p.add_argument("--json", type=Path, help="also write all results to this file")
    args = p.parse_args()
    settings = Settings()
    configure_threads(settings.threads)
    dataset = load_dataset(args.data)
    embedder = settings.embedder()
    index_dir = eval_index_dir(settings, dataset, embedder)
    update_index(dataset.root, index_dir, embedder, settings.build_options(), corpus=dataset.corpus)
    searcher = Searcher(open_current(index_dir), embedder, settings.search_config())
    searcher.warm_units(index_dir / "units.npz")  # sentence vectors once, so latency is the warm figure
    modes = args.mode or ["lexical", "dense", "fused"]
    out = {}
    for lang in args.lang or ["ar", "en"]:
        qs = load_questions(args.data / ("questions.jsonl" if lang == "ar" else "questions.en.jsonl"))
        for split in args.split or ["A", "B"]:
            sel = select(qs, split)
            t = time.perf_counter()
            qv = query_vectors(sel, partial(encode_questions, embedder), index_dir, getattr(embedder, "cache_key", embedder.name))
            res = evaluate(searcher, sel, modes, qv, dataset.passage_level)
            out[f"{lang}-{split}"] = res
            print(format_table(res, f"== {lang} questions, split {split} (n={len(sel)}, {time.perf_counter() - t:.0f}s)"), flush=True)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
