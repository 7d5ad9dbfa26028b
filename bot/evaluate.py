"""`newsqa eval DATASET`: build or reuse the dataset's index, then print quality per retriever."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path


def cmd_eval(settings, args: argparse.Namespace) -> int:
    """Evaluate lexical, dense and fused retrieval on a dataset folder (text table or --json)."""
    from index.build import update_index
    from index.store import open_current
    from retrieval.evaluate import cache_dir_for, evaluate, format_table, load_dataset, query_vectors, select
    from retrieval.search import MODES, Searcher

    dataset = load_dataset(args.dataset, args.questions)
    embedder = settings.embedder()
    index_dir: Path = args.index_dir or cache_dir_for(settings.index_dir.parent / "eval-cache", dataset, settings.embedding_model, (settings.chunk_max_chars, settings.chunk_min_chars))
    opts = replace(settings.build_options(), lock_wait_seconds=60.0)
    report = update_index(dataset.root, index_dir, embedder, opts, corpus=dataset.corpus)
    for err in report.rejected:
        print(f"rejected: {err}", file=sys.stderr)
    if report.switched:
        print(f"indexed {report.total_articles} articles, {report.total_chunks} chunks into {index_dir} in {report.seconds:.1f}s", file=sys.stderr)
    split = getattr(args, "split", None)
    questions = select(dataset.questions, split, args.limit)
    modes = getattr(args, "mode", None) or list(MODES)
    modes = [m for m in ("lexical", "dense", "fused") if m in modes]
    searcher = Searcher(open_current(index_dir), embedder, settings.search_config())
    if any(m != "lexical" for m in modes):
        searcher.warm_units(index_dir / "units.npz")  # every sentence vector once, reused by all questions
    qvecs = None
    if any(m != "lexical" for m in modes):
        qvecs = query_vectors(questions, embedder.encode_queries, index_dir, embedder.name)
    results = evaluate(searcher, questions, modes, qvecs, dataset.passage_level)
    if args.json:
        print(json.dumps(results, ensure_ascii=False))
    else:
        qname = (args.questions or dataset.root / "questions.jsonl").name
        half = f", split {split}" if split else ""
        print(format_table(results, f"{dataset.name}: {len(questions)} questions ({qname}{half}), {report.total_articles} passages"))
    return 0
