"""What each change did: fused-mode figures on both halves, ar and en, adding one change at a time.

    NEWSQA_THREADS=1 python bench/ablation.py
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import xquad_dir
from bot.settings import Settings
from index.embedder import configure_threads
from index.store import open_current
from retrieval import quote, search
from retrieval.evaluate import cache_dir_for, evaluate, load_dataset, load_questions, query_vectors, select
from retrieval.search import Searcher

DATA = xquad_dir()  # NEWSQA_XQUAD_DIR, else ../shared/data/xquad-ar beside the checkout, else the shipped slice

# (label, SearchConfig changes, quote module settings, search module settings)
STEPS = [
    ("RRF(k=60)×coverage, clause quotes", {"fusion": "rrf", "unit_weight": 0.0, "quote_dense_weight": 0.0},
     {"FILL_CHARS": 0, "GROW": "next", "NUMERIC_BONUS": 0.0}, {"QUOTE_WHOLE_PARAGRAPH": False}),
    ("+ convex score fusion (0.5×coverage)", {"unit_weight": 0.0, "quote_dense_weight": 0.0},
     {"FILL_CHARS": 0, "GROW": "next", "NUMERIC_BONUS": 0.0}, {"QUOTE_WHOLE_PARAGRAPH": False}),
    ("+ best-sentence dense re-scoring (top 10)", {"quote_dense_weight": 0.0},
     {"FILL_CHARS": 0, "GROW": "next", "NUMERIC_BONUS": 0.0}, {"QUOTE_WHOLE_PARAGRAPH": False}),
    ("+ quotes weigh sentence meaning, numbers", {},
     {"FILL_CHARS": 0, "GROW": "next"}, {"QUOTE_WHOLE_PARAGRAPH": False}),
    ("+ quotes grow to 400 chars (next first)", {}, {"GROW": "next"}, {"QUOTE_WHOLE_PARAGRAPH": False}),
    ("+ paragraph-wide quotes, alternate growth (final)", {}, {}, {}),
]


def main() -> int:
    settings = Settings()
    configure_threads(settings.threads)
    ds = load_dataset(DATA)
    emb = settings.embedder()
    index_dir = cache_dir_for(settings.index_dir.parent / "eval-cache", ds, settings.embedding_model, (settings.chunk_max_chars, settings.chunk_min_chars))
    version = open_current(index_dir)
    warm = Searcher(version, emb, settings.search_config())
    warm.warm_units(index_dir / "units.npz")
    sets = {}
    for lang, fname in (("ar", "questions.jsonl"), ("en", "questions.en.jsonl")):
        for split in ("A", "B"):
            qs = select(load_questions(DATA / fname), split)
            sets[f"{lang}-{split}"] = (qs, query_vectors(qs, emb.encode_queries, index_dir, emb.name))
    defaults_q = {k: getattr(quote, k) for k in ("FILL_CHARS", "GROW", "NUMERIC_BONUS")}
    defaults_s = {"QUOTE_WHOLE_PARAGRAPH": search.QUOTE_WHOLE_PARAGRAPH}
    print("| change | " + " | ".join(f"{k} MRR / ansR@5 / quoteR@3" for k in sets) + " |")
    print("|---|" + "---|" * len(sets))
    for label, cfg, qset, sset in STEPS:
        for k, v in {**defaults_q, **qset}.items():
            setattr(quote, k, v)
        for k, v in {**defaults_s, **sset}.items():
            setattr(search, k, v)
        s = Searcher(version, emb, replace(settings.search_config(), **cfg))
        s._unit_cache = warm._unit_cache
        cells = []
        for qs, qv in sets.values():
            m = evaluate(s, qs, ["fused"], qv, ds.passage_level)["fused"]
            cells.append(f"{m['MRR@10']:.3f} / {m['ansR@5']:.3f} / {m['quoteR@3']:.3f}")
        print(f"| {label} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
