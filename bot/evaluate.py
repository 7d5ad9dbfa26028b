"""`newsqa eval DATASET`: build or reuse the dataset's index, then print quality per retriever."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.settings import Settings
    from retrieval.evaluate import Dataset
    from retrieval.search import Searcher


def eval_index_dir(settings: Settings, dataset: Dataset, embedder: object) -> Path:
    """The dataset's cached index for these settings: one per model, chunking, backend and sentence-vector method."""
    from index.build import sentence_method
    from retrieval.evaluate import cache_dir_for

    chunking = (settings.chunk_max_chars, settings.chunk_min_chars)
    method = sentence_method(embedder, settings.build_options())  # type: ignore[arg-type]
    variant = f"{getattr(embedder, 'backend', 'torch')}-{method or 'nosentences'}"
    return cache_dir_for(settings.index_dir.parent / "eval-cache", dataset, settings.embedding_model, chunking, variant)


def prepare(settings: Settings, root: Path, questions: Path | None = None, index_dir: Path | None = None) -> tuple[Dataset, Searcher]:
    """Load a dataset and a searcher over its index (built once, then reused from the eval cache)."""
    from index.build import update_index
    from index.store import open_current
    from retrieval.evaluate import load_dataset
    from retrieval.search import Searcher

    dataset = load_dataset(root, questions)
    embedder = settings.embedder()
    index_dir = index_dir or eval_index_dir(settings, dataset, embedder)
    opts = replace(settings.build_options(), lock_wait_seconds=60.0)
    report = update_index(dataset.root, index_dir, embedder, opts, corpus=dataset.corpus)
    for err in report.rejected:
        print(f"rejected: {err}", file=sys.stderr)
    if report.switched:
        print(f"indexed {report.total_articles} articles, {report.total_chunks} chunks into {index_dir} in {report.seconds:.1f}s", file=sys.stderr)
    searcher = Searcher(open_current(index_dir), embedder, settings.search_config())
    return dataset, searcher


def cmd_eval(settings: Settings, args: argparse.Namespace) -> int:
    """Evaluate lexical, dense and fused retrieval on a dataset folder (text table or --json)."""
    from functools import partial
    from index.embedder import encode_questions
    from retrieval.evaluate import evaluate, failures_table, format_table, query_vectors, select
    from retrieval.search import MODES

    dataset, searcher = prepare(settings, args.dataset, args.questions, args.index_dir)
    index_dir = args.index_dir or eval_index_dir(settings, dataset, searcher.embedder)
    split = getattr(args, "split", None)
    questions = select(dataset.questions, split, args.limit, getattr(args, "lang", None))
    modes = getattr(args, "mode", None) or list(MODES)
    modes = [m for m in ("lexical", "dense", "fused") if m in modes]
    if any(m != "lexical" for m in modes):
        searcher.warm_units(index_dir / "units.npz")  # every sentence vector once, reused by all questions
    qvecs = None
    if any(m != "lexical" for m in modes):
        qvecs = query_vectors(questions, partial(encode_questions, searcher.embedder), index_dir, getattr(searcher.embedder, "cache_key", searcher.embedder.name))
    n_fail = getattr(args, "failures", None)
    results, rows = evaluate(searcher, questions, modes, qvecs, dataset.passage_level, per_question=True)
    if args.json:
        out: dict = dict(results)
        if n_fail is not None:
            out["questions"] = rows
        print(json.dumps(out, ensure_ascii=False))
    else:
        qname = (args.questions or dataset.root / "questions.jsonl").name
        half = f", split {split}" if split else ""
        lang = f", lang {args.lang}" if getattr(args, "lang", None) else ""
        print(format_table(results, f"{dataset.name}: {len(questions)} questions ({qname}{half}{lang}), {len(dataset.corpus.articles)} passages"))
        if n_fail is not None:
            print()
            print(failures_table(rows, n_fail))
    return 0
