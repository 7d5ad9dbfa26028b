"""Follow-up questions answered with and without the previous exchange, same run.

    python bench/followup_eval.py [--only bundled|wikinews] [--failures]

Pairs (tests/data/followup-dev/pairs.jsonl): a first question, a follow-up, the answers the follow-up
expects. Each first question is answered; then the follow-up is asked (a) bare, (b) as the bot asks it
(read as a follow-up or not by bot/followup.py, with the previous question's words and quoted articles),
(c) with the context forced on every pair. A follow-up is answered correctly when an expected answer is
inside one of its top-3 quotes (retrieval/evaluate.contains_answer). "new" pairs are new topics: the
context must not hurt them.

The bundled pairs run on the sample article plus the short test articles (the tests' index); the
Wikinews pairs on ../shared/data/wikinews-ar (NEWSQA_WIKINEWS_DIR or NEWSQA_SHARED_DIR to move it).
Indexes are cached under eval-cache beside the index folder, like `newsqa eval`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import ROOT, SAMPLE_CORPUS, TEST_CORPUS, quiet, shared_dir
from bot.asking import Ask
from bot.followup import ContextStore, Conversations
from retrieval.evaluate import QUOTE_K, contains_answer
from retrieval.search import Searcher
from retrieval.types import Context

PAIRS = ROOT / "tests" / "data" / "followup-dev" / "pairs.jsonl"
KINDS = ("same", "other", "new")  # answer in the previous article, in another one, a new topic


@dataclass(frozen=True, slots=True)
class Pair:
    """First question → follow-up → answers the follow-up expects."""

    id: str
    corpus: str
    lang: str
    kind: str
    first: str
    followup: str
    answers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one follow-up fared bare, as the bot reads it, and with the context forced."""

    pair: Pair
    read_as_followup: bool
    bare: bool
    bot: bool
    forced: bool
    quotes: tuple[str, ...]  # the bot's top quotes (for --failures)


def load_pairs(path: Path = PAIRS) -> list[Pair]:
    """All pairs of the development set."""
    with open(path, encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    return [Pair(r["id"], r["corpus"], r["lang"], r["kind"], r["first"], r["followup"], tuple(r["answers"])) for r in rows]


def _hit(searcher: Searcher, ask: Ask, answers: Sequence[str]) -> tuple[bool, tuple[str, ...]]:
    answer = searcher.answer(ask.question, k=QUOTE_K, filters=ask.filters, context=ask.context)
    quotes = tuple(h.quote.text for h in answer.hits[:QUOTE_K])
    return any(contains_answer(q, answers) for q in quotes), quotes


def run_pairs(searcher: Searcher, pairs: Sequence[Pair]) -> list[Outcome]:
    """Each pair's first question, then its follow-up three ways, through the bot's own follow-up logic."""
    out = []
    for pair in pairs:
        chat = Conversations(ContextStore(None, ttl_seconds=3600))
        first = Ask(pair.first)
        answer = searcher.answer(first.question, k=QUOTE_K)
        articles = [h.source.article_id for h in answer.hits]
        chat.answered(0, first, articles, bool(answer.hits))
        ask = chat.ask(0, pair.followup)
        turn = chat.store.get(0)
        forced = Ask(pair.followup, context=Context(turn.terms, turn.articles) if turn else None, about=pair.first)
        bare, _ = _hit(searcher, Ask(pair.followup), pair.answers)
        bot, quotes = _hit(searcher, ask, pair.answers)
        with_context, _ = _hit(searcher, forced, pair.answers)
        out.append(Outcome(pair, ask.followup, bare, bot, with_context, quotes))
        chat.store.close()
    return out


def table(outcomes: Sequence[Outcome], title: str) -> str:
    """Correct follow-ups per kind and language: bare, as the bot reads them, context forced; and the reading."""
    lines = [title, f"{'kind':<6} {'lang':<4} {'n':>3}  {'without':>8} {'with (bot)':>11} {'forced':>7}  {'read as follow-up':>17}"]
    groups: list[tuple[str, str]] = [(k, lang) for k in KINDS for lang in ("ar", "en")]
    for kind, lang in [*groups, ("all", "all")]:
        rows = [o for o in outcomes if (kind == "all" or o.pair.kind == kind) and (lang == "all" or o.pair.lang == lang)]
        if not rows:
            continue
        n = len(rows)
        lines.append(
            f"{kind:<6} {lang:<4} {n:>3}  {sum(o.bare for o in rows):>8} {sum(o.bot for o in rows):>11} "
            f"{sum(o.forced for o in rows):>7}  {sum(o.read_as_followup for o in rows):>17}"
        )
    follow = [o for o in outcomes if o.pair.kind != "new"]
    if follow:
        lines.append(
            f"follow-ups (same+other) answered: without context {sum(o.bare for o in follow)}/{len(follow)}, "
            f"with context {sum(o.bot for o in follow)}/{len(follow)}"
        )
    return "\n".join(lines)


def failures(outcomes: Sequence[Outcome]) -> str:
    """The pairs the bot got wrong, with what it quoted."""
    lines = []
    for o in outcomes:
        if o.bot:
            continue
        lines.append(f"- {o.pair.id} [{o.pair.kind}] {o.pair.first} → {o.pair.followup} (read as follow-up: {o.read_as_followup})")
        lines.append(f"  expected: {' | '.join(o.pair.answers)}")
        lines += [f"  quoted: {' '.join(q.split())[:160]}" for q in o.quotes]
    return "\n".join(lines)


def wikinews_dir() -> Path:
    """NEWSQA_WIKINEWS_DIR, else data/wikinews-ar in the shared folder (NEWSQA_SHARED_DIR or ../shared)."""
    explicit = os.environ.get("NEWSQA_WIKINEWS_DIR")
    return Path(explicit) if explicit else shared_dir() / "data" / "wikinews-ar"


def _searcher(settings, embedder, name: str, root: Path, corpus) -> Searcher:  # noqa: ANN001
    from index.build import update_index
    from index.store import open_current
    from retrieval.evaluate import Dataset, cache_dir_for

    dataset = Dataset(name, root, corpus)
    index_dir = cache_dir_for(settings.index_dir.parent / "eval-cache", dataset, settings.embedding_model,
                              (settings.chunk_max_chars, settings.chunk_min_chars))
    update_index(root, index_dir, embedder, settings.build_options(), corpus=corpus)
    return Searcher(open_current(index_dir), embedder, settings.search_config())


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--only", choices=("bundled", "wikinews"), help="one set of pairs only")
    p.add_argument("--failures", action="store_true", help="list the follow-ups the bot got wrong")
    args = p.parse_args()
    quiet()
    from bot.settings import Settings
    from index.articles import CorpusLoad, load_corpus
    from index.embedder import configure_threads
    from retrieval.evaluate import load_passages

    settings = Settings()
    configure_threads(settings.threads)
    embedder = settings.embedder()
    pairs = load_pairs()
    print(f"== follow-up questions, with and without context (top-{QUOTE_K} quotes hold the answer) ==")
    for corpus in ("bundled", "wikinews"):
        if args.only not in (None, corpus):
            continue
        chosen = [p_ for p_ in pairs if p_.corpus == corpus]
        if corpus == "bundled":
            load = CorpusLoad()
            for folder in (SAMPLE_CORPUS, TEST_CORPUS):
                load.articles.extend(load_corpus(folder).articles)
            searcher = _searcher(settings, embedder, "followup-bundled", SAMPLE_CORPUS, load)
        else:
            folder = wikinews_dir()
            if not (folder / "passages.jsonl").is_file():
                print(f"(wikinews pairs skipped: no passages.jsonl in {folder}; set NEWSQA_WIKINEWS_DIR)")
                continue
            searcher = _searcher(settings, embedder, "wikinews-ar", folder, load_passages(folder / "passages.jsonl", "wikinews-ar"))
        started = time.perf_counter()
        outcomes = run_pairs(searcher, chosen)
        print(table(outcomes, f"-- {corpus}: {len(chosen)} pairs, {time.perf_counter() - started:.0f}s"))
        if args.failures:
            print(failures(outcomes))
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
