"""Reindex benchmark: full build vs unchanged re-run vs 1%-changed update, with the real embedding model.

    .venv/bin/python -m bench.reindex [--articles 2000] [--keep DIR]

Generates a corpus from the sample texts (bench/corpusgen.py), builds it, re-runs with nothing
changed, then corrects/adds/removes 1% of the articles and updates. Prints times and ratios.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.corpusgen import correct_article, make_article, sample_sentences, write_corpus
from bot.settings import Settings
from index.articles import load_corpus
from index.build import BuildProgress, update_index
from index.embedder import SentenceTransformerEmbedder, configure_threads
from index.store import open_current

ROOT = Path(__file__).resolve().parent.parent


class TimedEmbedder(SentenceTransformerEmbedder):
    """The real embedder, noting how long its model load took (so it can be told apart from work)."""

    load_seconds = 0.0

    def load(self) -> None:
        """Load and time it."""
        started = time.perf_counter()
        super().load()
        self.load_seconds += time.perf_counter() - started


def run(label: str, corpus: Path, index_dir: Path, settings: Settings, rows: list) -> None:
    """One update with a fresh (not yet loaded) embedder, as a new `newsqa index update` process has."""
    embedder = TimedEmbedder(settings.embedding_model, models_dir=settings.models_dir, backend=settings.embedding_backend)
    last: list[BuildProgress] = []

    def tick(p: BuildProgress) -> None:
        if p.stage == "embedding":
            last[:] = [p]
            if p.chunks_done % (settings.batch_size * 20) == 0:
                print(f"  {p.line()}", flush=True)

    started = time.perf_counter()
    report = update_index(corpus, index_dir, embedder, settings.build_options(), progress=tick)
    seconds = time.perf_counter() - started
    rate = last[0].chunks_per_second if last else 0.0
    rows.append((label, seconds, embedder.load_seconds, report, rate))
    print(
        f"{label}: {seconds:.2f}s (model load {embedder.load_seconds:.2f}s); {report.summary()}; "
        f"{report.embedded_chunks}/{report.total_chunks} chunks embedded"
        + (f" at {rate:.1f} chunks/s" if rate else "")
        + f"; model loaded: {embedder._model is not None}",
        flush=True,
    )


def change_one_percent(corpus: Path, n: int, fraction: float, seed: int) -> tuple[int, int, int]:
    """Correct half of the 1%, add a quarter as new articles, withdraw a quarter."""
    k = max(4, round(n * fraction))
    rng = random.Random(seed)
    paths = sorted(corpus.glob("art-*.txt"))
    picked = rng.sample(paths, k)
    n_add = n_remove = k // 4
    n_correct = k - n_add - n_remove
    for p in picked[:n_correct]:
        correct_article(p)
    for p in picked[n_correct : n_correct + n_remove]:
        p.unlink()
    sentences = sample_sentences()
    for i in range(n_add):
        number = n + 1 + i
        text = make_article(rng, sentences, number, paragraphs=1, per_paragraph=2)
        (corpus / f"art-{number:05d}.txt").write_text(text, encoding="utf-8")
    return n_correct, n_add, n_remove


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--articles", type=int, default=2000)
    ap.add_argument("--paragraphs", type=int, default=1, help="paragraphs per generated article")
    ap.add_argument("--per-paragraph", type=int, default=2, help="sample sentences per paragraph")
    ap.add_argument("--changed", type=float, default=0.01, help="fraction of articles changed for the last run")
    ap.add_argument("--keep", type=Path, help="work in this folder and keep it (default: a temp folder, removed)")
    args = ap.parse_args()

    settings = Settings()
    configure_threads(settings.threads)
    work = args.keep or Path(tempfile.mkdtemp(prefix="newsqa-bench-reindex-"))
    if work.exists() and args.keep:
        shutil.rmtree(work)
    corpus, index_dir = work / "corpus", work / "index"
    try:
        write_corpus(corpus, args.articles, paragraphs=args.paragraphs, per_paragraph=args.per_paragraph)
        size = sum(p.stat().st_size for p in corpus.iterdir())
        print(f"corpus: {args.articles} articles, {size / 1e6:.1f} MB in {corpus}; model {settings.embedding_model}, "
              f"backend {settings.embedding_backend}, batch {settings.batch_size}, torch threads "
              f"{settings.threads or 'default'}; load average {os.getloadavg()[0]:.1f}", flush=True)
        rows: list = []
        run("full build", corpus, index_dir, settings, rows)
        run("no change", corpus, index_dir, settings, rows)

        # The same no-change update as an operator runs it: a new process, the real CLI.
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        started = time.perf_counter()
        cli = subprocess.run(
            [sys.executable, "-m", "bot.cli", "index", "update", "--corpus", str(corpus), "--index-dir", str(index_dir)],
            env=env, capture_output=True, text=True, check=True,
        )
        cli_seconds = time.perf_counter() - started
        print(f"no change (CLI process): {cli_seconds:.2f}s; {cli.stdout.splitlines()[0]}", flush=True)

        n_correct, n_add, n_remove = change_one_percent(corpus, args.articles, args.changed, seed=11)
        run(f"{args.changed:.0%} changed ({n_correct} corrected, {n_add} added, {n_remove} removed)",
            corpus, index_dir, settings, rows)

        expected = {a.id for a in load_corpus(corpus).articles}
        version = open_current(index_dir)
        stored = {r[0] for r in version.db.execute("SELECT id FROM articles")}
        assert stored == expected, "the updated index does not hold exactly the corpus"

        full = rows[0][1]
        print("\nrun                          seconds   model load   vs full build")
        for label, seconds, load_s, _report, _rate in rows:
            print(f"{label[:28]:28s} {seconds:8.2f}   {load_s:10.2f}   {seconds / full:8.2%}")
        print(f"{'no change (CLI process)':28s} {cli_seconds:8.2f}   {0.0:10.2f}   {cli_seconds / full:8.2%}")
        print(f"index holds all {len(stored)} articles of the corpus after the update")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
