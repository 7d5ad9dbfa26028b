"""Throughput of the Telegram bot: concurrent users asking questions through the loopback fake Bot API.

The fake Bot API and the simulated users run in a separate process (bench/bot_load.py); its CPU
is reported apart from the bot's. Closed loop (default): each of --users asks, waits for the
answer (its sendMessage reaching the server), then asks the next. Open loop (--arrival-rate R):
questions arrive at R/s, each from its own chat, whatever the bot's pace. Prints answered/s,
p50/p95 latency (update queued → answer received), Bot API requests per answer, CPU seconds of
both processes, and where the bot's time goes per answer: shared embed (waiting for and running the
question's shared encoder batch; "embed batch size" is that batch's size, not ms), second embed and second
batch size (the same for the second encoder's batches, which run at the same time), worker wait, embed
(inside the search: 0 when the vector came from a shared batch), lexical, dense, fusion, quote,
render, keys (button keys in SQLite), sendMessage (the Bot API call, flood limiter included).

    python bench/bot_throughput.py                            # 50 users, default flood limiter (30/s)
    python bench/bot_throughput.py --rate 0                   # flood limiter off
    python bench/bot_throughput.py --arrival-rate 30          # open loop at the limiter's rate
    NEWSQA_EMBEDDING_BACKEND=onnx-int8 python bench/bot_throughput.py --rate 0

The index (bench/out/bot-throughput/index, built once and then reused) holds the Arabic Wikinews
and XQuAD-ar passages from the shared data folder (NEWSQA_SHARED_DIR, see bench/_common.py) plus
the bundled sample and test articles; the questions are the two sets' own (Arabic and English),
shuffled with a fixed seed, so no question repeats within a run of up to 1,311. Without the shared
folder: the bundled articles, 300 generated ones (bench/corpusgen.py) and the eight test questions.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._common import OUT, SAMPLE_CORPUS, TEST_CORPUS, shared_dir  # noqa: E402
from bench.bot_load import Load, cpu_seconds  # noqa: E402

QUESTIONS = [
    "كم قاربا تضرر في فيضانات الميناء؟",
    "كم سعر الفائدة الذي أعلنه البنك المركزي؟",
    "ما قدرة محطة الطاقة الشمسية؟",
    "كيف يستخدم داعش الانترنت؟",
    "من هو شامي ويتنس؟",
    "ما نسبة التضخم في نيسان؟",
    "ما هي عاصمة منغوليا؟",
    "ما اسم شركة النور والأمل للبرمجيات؟",
]
WARMUP = [("ما هي عاصمة منغوليا؟", "ar"), ("How many boats were damaged?", "en"), ("كيف يستخدم داعش الانترنت؟", "ar")]
STAGES = ("shared embed", "embed batch size", "second embed", "second batch size", "worker wait", "embed", "lexical", "dense", "fusion", "quote", "search total", "render", "keys",
          "sendMessage", "handler total")


# --- corpus and questions ------------------------------------------------------------------


def _read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def write_corpus(folder: Path) -> list[tuple[str, str]]:
    """The bench corpus in `folder`; returns the questions (text, language) that go with it."""
    folder.mkdir(parents=True, exist_ok=True)
    for src in (SAMPLE_CORPUS, TEST_CORPUS):
        for f in src.iterdir():
            shutil.copy(f, folder / f.name)
    data = shared_dir() / "data"
    questions: list[tuple[str, str]] = []
    sets: list[list[tuple[str, str]]] = []
    for name, outlet in (("wikinews-ar", "ويكي الأخبار"), ("xquad-ar", "XQuAD")):
        if not (data / name / "passages.jsonl").is_file():
            continue
        with open(folder / f"{name}.jsonl", "w", encoding="utf-8") as out:
            for rec in _read_jsonl(data / name / "passages.jsonl"):
                # XQuAD's titles name the Wikipedia article, shared by its passages: the id keeps them apart.
                title = f"{str(rec.get('title') or outlet).replace('_', ' ')} ({rec['id']})"
                row = {"title": title, "source": outlet, "date": "2014-01-01", "text": rec["text"]}
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
        asked = [(q["question"], q.get("lang") or "ar") for q in _read_jsonl(data / name / "questions.jsonl")]
        random.Random(12).shuffle(asked)
        sets.append(asked)
    if not sets:
        from bench.corpusgen import write_corpus as generated

        generated(folder / "generated", 300)
        return [(q, "ar") for q in QUESTIONS]
    # News questions first (Wikinews, a third of them English), interleaved with XQuAD's, so a run of a
    # few hundred has both kinds and both languages.
    for i in range(max((len(a) for a in sets), default=0)):
        questions += [a[i] for a in sets if i < len(a)]
    return questions


def bench_index(models_dir: Path, backend: str, index_dir: Path | None) -> tuple[Path, list[tuple[str, str]]]:
    """The index to serve (built or brought up to date) and the questions to ask."""
    from bot.settings import Settings
    from index.build import update_index
    from index.embedder import DEFAULT_MODEL, SentenceTransformerEmbedder

    work = OUT / "bot-throughput"
    corpus = work / "corpus"
    shutil.rmtree(corpus, ignore_errors=True)
    questions = write_corpus(corpus)
    if index_dir is None:
        index_dir = work / "index"
        # Built as `newsqa index` builds it (sentence vectors stored, so answering encodes only the
        # question), always with the torch model: every backend serves the same vector space.
        builder = SentenceTransformerEmbedder(DEFAULT_MODEL, models_dir=models_dir)
        options = Settings(_env_file=None, models_dir=models_dir).build_options()
        report = update_index(corpus, index_dir, builder, options)
        print(f"index: {report.summary()}", file=sys.stderr)
    return index_dir, questions


# --- per-stage timings inside the bot process -------------------------------------------------


class StageClock:
    """Durations per stage, collected by wrapping the bot's calls (works on any version of the bot)."""

    def __init__(self) -> None:
        self.seconds: dict[str, list[float]] = defaultdict(list)
        self.on = False

    def add(self, stage: str, seconds: float) -> None:
        """Record one duration while the measured run is on."""
        if self.on:
            self.seconds[stage].append(seconds)

    def install(self) -> None:
        """Wrap Searcher.answer, render_page, BotSearch.page, NewsBot.run_sync/answer_question, send_message."""
        import bot.searching as searching
        import bot.telegram as telegram_mod
        from retrieval.batching import QueryBatcher
        from retrieval.search import Searcher
        from telegram.ext import ExtBot

        clock = self
        answer, render, page = Searcher.answer, searching.render_page, searching.BotSearch.page
        run_sync, handler, send = telegram_mod.NewsBot.run_sync, telegram_mod.NewsBot.answer_question, ExtBot.send_message

        def timed_answer(self: Any, *a: Any, **kw: Any) -> Any:
            result = answer(self, *a, **kw)
            for stage in ("embed", "lexical", "dense", "fusion", "quote"):
                if stage in result.timings:
                    clock.add(stage, result.timings[stage])
            if "total" in result.timings:
                clock.add("search total", result.timings["total"])
            return result

        def timed(fn: Any, stage: str) -> Any:
            """fn, its every call's duration added to `stage`."""

            def call(*a: Any, **kw: Any) -> Any:
                t = time.perf_counter()
                try:
                    return fn(*a, **kw)
                finally:
                    clock.add(stage, time.perf_counter() - t)

            return call

        def timed_async(fn: Any, stage: str) -> Any:
            """The coroutine function fn, each await's duration added to `stage`."""

            async def call(*a: Any, **kw: Any) -> Any:
                t = time.perf_counter()
                try:
                    return await fn(*a, **kw)
                finally:
                    clock.add(stage, time.perf_counter() - t)

            return call

        async def timed_run_sync(self: Any, fn: Any, *args: Any) -> Any:
            queued = time.perf_counter()

            def started(*a: Any) -> Any:
                clock.add("worker wait", time.perf_counter() - queued)
                return fn(*a)

            return await run_sync(self, started, *args)

        encode_async, encode_batch = QueryBatcher.encode_async, QueryBatcher._encode

        def second(batcher: Any) -> bool:
            """Whether this batcher encodes with the second encoder (its own encode function), not the model."""
            return getattr(batcher, "_encode_texts", None) is not None

        def timed_encode_batch(self: Any, batch: list) -> None:
            # shown in the ms columns as the size itself
            clock.add("second batch size" if second(self) else "embed batch size", len(batch) / 1000)
            encode_batch(self, batch)

        async def timed_encode_async(self: Any, text_: str) -> Any:
            t = time.perf_counter()
            try:
                return await encode_async(self, text_)
            finally:
                clock.add("second embed" if second(self) else "shared embed", time.perf_counter() - t)

        QueryBatcher.encode_async = timed_encode_async  # type: ignore[method-assign]
        QueryBatcher._encode = timed_encode_batch  # type: ignore[method-assign]
        Searcher.answer = timed_answer  # type: ignore[method-assign]
        searching.render_page = timed(render, "render")
        searching.BotSearch.page = timed(page, "page")  # type: ignore[method-assign]
        telegram_mod.NewsBot.run_sync = timed_run_sync  # type: ignore[method-assign]
        telegram_mod.NewsBot.answer_question = timed_async(handler, "handler total")  # type: ignore[method-assign]
        ExtBot.send_message = timed_async(send, "sendMessage")  # type: ignore[method-assign]

    def summary(self) -> dict[str, tuple[float, float, float]]:
        """Stage → (mean ms, p50 ms, p95 ms); `keys` is the page's time outside search and rendering."""
        out: dict[str, tuple[float, float, float]] = {}
        s = dict(self.seconds)
        if s.get("page") and s.get("search total"):
            n = min(len(s["page"]), len(s["search total"]), len(s.get("render") or s["page"]))
            rest = [p - a - r for p, a, r in zip(s["page"], s["search total"], (s.get("render") or [0.0] * n))]
            s["keys"] = rest
        for stage in STAGES:
            values = s.get(stage)
            if values:
                out[stage] = (statistics.fmean(values) * 1000, statistics.median(values) * 1000, percentile(values, 95) * 1000)
        return out


# --- running ---------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(p / 100 * len(ordered) + 0.5)) - 1))]


async def run(args: argparse.Namespace, index_dir: Path, embedder: Any, work: Path, load: Load,
              clock: StageClock | None = None) -> dict:
    """Start the fake API process and the bot, run the load, return the figures."""
    from types import SimpleNamespace

    from tests.bot_harness import bot_settings, running_bot

    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    from bench.bot_load import serve

    proc = ctx.Process(target=serve, args=(child,), name="fake-bot-api", daemon=True)
    proc.start()
    loop = asyncio.get_running_loop()
    try:
        base_url = await loop.run_in_executor(None, parent.recv)
        api = SimpleNamespace(base_url=base_url)  # all bot_settings needs of the server
        overrides = {
            "telegram_messages_per_second": args.rate,
            "bot_search_workers": args.workers,
            "user_questions_per_minute": 0,  # the bench measures the bot, not the per-user limit
            **dict(getattr(args, "set", None) or []),
        }
        settings = bot_settings(api, index_dir, work, **overrides)  # type: ignore[arg-type]
        async with running_bot(settings, embedder):
            if clock is not None:
                clock.on = True
            cpu0 = cpu_seconds()
            parent.send(load)
            result = await loop.run_in_executor(None, parent.recv)
            result["bot_cpu"] = cpu_seconds() - cpu0
            if clock is not None:
                clock.on = False
        parent.send(None)
    finally:
        await loop.run_in_executor(None, proc.join, 30)
        if proc.is_alive():
            proc.kill()
    lat = result["latencies"]
    answered = len(lat)
    methods = result["methods"]
    return {
        "answered": answered,
        "quoted": result["quoted"],
        "wall_s": result["wall"],
        "answered_per_s": answered / result["wall"],
        "p50_ms": statistics.median(lat) * 1000,
        "p95_ms": percentile(lat, 95) * 1000,
        "by_language": {
            lang: (len(xs), statistics.median(xs) * 1000, percentile(xs, 95) * 1000)
            for lang in sorted(set(result["langs"]))
            if (xs := [x for x, q in zip(lat, result["langs"]) if q == lang])
        },
        # p95 of the questions asked in each tenth of the run: where in the run the slow answers were
        "p95_by_tenth_ms": [
            percentile(xs, 95) * 1000 if xs else 0.0
            for k in range(10)
            for xs in [[x for x, t in zip(lat, result["asked_at"]) if int(10 * t / result["wall"]) == k]]
        ],
        "requests": sum(methods.values()),
        "methods": methods,
        "bot_cpu_s": result["bot_cpu"],
        "api_cpu_s": result["cpu"],
    }


def measure(index_dir: Path, questions: list[str], users: int = 8, per_user: int = 2) -> float:
    """Answers/s through the loopback Bot API over an existing index (bench/query_latency.py calls this)."""
    from index.embedder import DEFAULT_MODEL, SentenceTransformerEmbedder
    from index.home import default_models_dir

    embedder = SentenceTransformerEmbedder(DEFAULT_MODEL, models_dir=default_models_dir())
    args = argparse.Namespace(rate=30.0, workers=2, set=None)
    asked = [(questions[i % len(questions)], "ar") for i in range(users * per_user)]
    load = Load(asked, users=users, warmup=[asked[0]])
    with tempfile.TemporaryDirectory(prefix="newsqa-bench-") as tmp:
        return float(asyncio.run(run(args, index_dir, embedder, Path(tmp), load))["answered_per_s"])


def _setting(value: str) -> tuple[str, Any]:
    name, _, raw = value.partition("=")
    if not name or not raw:
        raise argparse.ArgumentTypeError(f"--set wants name=value (a Settings field), got {value!r}")
    return name, raw


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--users", type=int, default=50, help="concurrent users (closed loop)")
    p.add_argument("--questions", type=int, default=6, help="questions per user (closed loop), asked one after another")
    p.add_argument("--arrival-rate", type=float, default=0.0, help="open loop: questions/s (each from its own chat)")
    p.add_argument("--count", type=int, default=0, help="open loop: questions in all (default 10 s worth)")
    p.add_argument("--chats", type=int, default=0,
                   help="open loop: the questions come from this many users in turn (0: each from a chat of its own)")
    p.add_argument("--rate", type=float, default=30.0, help="flood limiter, Bot API messages/s (0 = off)")
    p.add_argument("--workers", type=int, default=2, help="search worker threads (NEWSQA_BOT_SEARCH_WORKERS)")
    p.add_argument("--threads", type=int, default=0,
                   help="NEWSQA_THREADS; 0 (the default) as the bot runs it: one thread per model (SERVING_THREADS); 2 = ONNX Runtime's default here")
    p.add_argument("--set", type=_setting, action="append", metavar="FIELD=VALUE",
                   help="any other bot setting for this run, e.g. --set bot_typing_after=0 (repeatable)")
    p.add_argument("--evidence-cache", type=int, default=None, metavar="CHUNKS",
                   help="size of the searcher's evidence cache (0 = off; default: as shipped)")
    p.add_argument("--repeat", type=int, default=1, help="ask each distinct question this many times (answer cache)")
    p.add_argument("--index-dir", type=Path, help="an existing index (default: build/reuse the bench one)")
    p.add_argument("--models-dir", type=Path, default=None, help="models folder (default NEWSQA_MODELS_DIR or ./models)")
    p.add_argument("--json", action="store_true", help="also print the figures as one JSON line")
    args = p.parse_args()

    import logging

    logging.basicConfig(level=logging.WARNING)
    for name in ("httpx", "tornado.access", "sentence_transformers", "transformers", "bm25s"):
        logging.getLogger(name).setLevel(logging.ERROR)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from bot.settings import Settings
    from index.embedder import configure_threads, encode_questions
    from index.home import default_models_dir

    from bot.telegram import SERVING_THREADS, serving_embedder

    configure_threads(args.threads or SERVING_THREADS)  # as bot/telegram.py run_bot does
    if args.evidence_cache is not None:
        import retrieval.search

        retrieval.search.EVIDENCE_CACHE_CHUNKS = args.evidence_cache  # type: ignore[attr-defined]
    models_dir = args.models_dir or default_models_dir()
    requested = os.environ.get("NEWSQA_EMBEDDING_BACKEND", "auto")  # the product's default unless set
    index_dir, pool = bench_index(models_dir, requested, args.index_dir)
    count = args.count or (int(args.arrival_rate * 10) if args.arrival_rate else args.users * args.questions)
    distinct = max(1, count // max(1, args.repeat))
    base = [pool[i % len(pool)] for i in range(distinct)]
    asked = [base[i % len(base)] for i in range(count)]
    load = Load(asked, users=args.users, arrival_rate=args.arrival_rate, warmup=WARMUP, chats=args.chats)
    overrides = dict(args.set or [])  # --set reaches the embedder too (e.g. arabic_questions_int8=false)
    settings = Settings(_env_file=None, models_dir=models_dir, threads=args.threads, embedding_backend=requested, **overrides)
    embedder = serving_embedder(settings)  # as run_bot makes it
    backend = getattr(embedder, "backend", requested)
    encode_questions(embedder, ["warm-up", "تجربة"])  # both models the bot's questions use, loaded outside the timing
    clock = StageClock()
    clock.install()
    with tempfile.TemporaryDirectory(prefix="newsqa-bench-") as tmp:
        r = asyncio.run(run(args, index_dir, embedder, Path(tmp), load, clock))
    load_avg = os.getloadavg()[0]
    shape = f"closed loop, {args.users} users"
    if args.arrival_rate:
        shape = f"open loop {args.arrival_rate:g} q/s from " + (f"{args.chats} users in turn" if args.chats else "a chat each")
    print(f"{shape}; {count} questions ({len(set(asked))} distinct, "
          f"{sum(lang == 'en' for _, lang in asked)} English); backend={backend} workers={args.workers} "
          f"threads={args.threads} rate_limit={args.rate:g}/s; load average {load_avg:.1f}")
    extra = " ".join(f"{k}={v}" for k, v in (args.set or []))
    if extra:
        print(f"settings: {extra}")
    from index.words import word_table_of

    table = word_table_of(embedder)
    print(f"English word table: {len(table)} words" if table is not None else
          "English word table: none (an English question's words are encoded; `newsqa model words` makes it)")
    n = max(1, r["answered"])
    print(f"answered {r['answered']} ({r['quoted']} with quotes) in {r['wall_s']:.2f}s: "
          f"{r['answered_per_s']:.1f} answered/s; latency p50 {r['p50_ms']:.0f} ms, p95 {r['p95_ms']:.0f} ms")
    print(f"Bot API: {r['requests']} requests, {r['requests'] / n:.2f} per answer "
          f"({', '.join(f'{k} {v}' for k, v in sorted(r['methods'].items()))})")
    print(f"CPU: bot {r['bot_cpu_s']:.1f} s ({r['bot_cpu_s'] / n * 1000:.1f} ms per answer), "
          f"fake Bot API + users process {r['api_cpu_s']:.1f} s (not counted against the bot)")
    print("latency p50 / p95 ms by language: " + ", ".join(
        f"{lang} {p50:.0f} / {p95:.0f} ({count} questions)" for lang, (count, p50, p95) in r["by_language"].items()))
    print("latency p95 ms by tenth of the run (when asked): " + " ".join(f"{x:.0f}" for x in r["p95_by_tenth_ms"]))
    split = clock.summary()
    print("per answer (mean / p50 / p95 ms): " + ", ".join(f"{k} {m:.1f}/{p50:.1f}/{p95:.1f}" for k, (m, p50, p95) in split.items()))
    if args.json:
        print(json.dumps({**r, "stages": split, "backend": backend, "load_avg": load_avg}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
