"""Throughput of the Telegram bot: N concurrent users asking questions through the loopback fake Bot API.

Each simulated user sends a question, waits for the bot's answer (sendMessage to its chat), then asks
the next one. Prints answered/s and p50/p95 latency (update queued → answer received by the server).

    python bench/bot_throughput.py --users 50 --questions 4
    python bench/bot_throughput.py --index-dir INDEX_DIR --users 20 --rate 0   # an existing index; no flood limiter

Without --index-dir an index of the bundled sample and test articles is built in a temporary folder.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from index.home import default_models_dir  # noqa: E402

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


def build_sample_index(models_dir: Path, work: Path):  # noqa: ANN201
    """Index the bundled sample article and the test articles (what the tests use)."""
    from index.build import BuildOptions, update_index
    from index.embedder import DEFAULT_MODEL, SentenceTransformerEmbedder

    corpus = work / "corpus"
    corpus.mkdir()
    for src in (ROOT / "corpus", ROOT / "tests" / "data" / "corpus"):
        for f in src.iterdir():
            shutil.copy(f, corpus / f.name)
    embedder = SentenceTransformerEmbedder(DEFAULT_MODEL, models_dir=models_dir)
    update_index(corpus, work / "index", embedder, BuildOptions())
    return work / "index", embedder


async def run(args: argparse.Namespace, index_dir: Path, embedder, work: Path) -> dict:  # noqa: ANN001
    from tests.bot_harness import bot_settings, running_bot
    from tests.fake_bot_api import FakeBotAPI

    api = await FakeBotAPI().start()
    overrides = {
        "telegram_messages_per_second": args.rate,
        "bot_search_workers": args.workers,
        "user_questions_per_minute": 0,  # the bench measures the bot, not the per-user limit
    }
    settings = bot_settings(api, index_dir, work, **overrides)
    waiting: dict[int, asyncio.Future] = {}

    def on_request(req) -> None:  # noqa: ANN001
        if req.method == "sendMessage" and req.status == 200:
            fut = waiting.pop(req.chat_id, None)
            if fut is not None and not fut.done():
                fut.set_result(req)

    api.listeners.append(on_request)
    latencies: list[float] = []

    async def user(uid: int) -> None:
        loop = asyncio.get_running_loop()
        for i in range(args.questions):
            pool = getattr(args, "question_list", None) or QUESTIONS
            q = pool[(uid + i) % len(pool)]
            fut = loop.create_future()
            waiting[uid] = fut
            t0 = time.perf_counter()
            api.push_message(q, user_id=uid)
            await asyncio.wait_for(fut, 300)
            latencies.append(time.perf_counter() - t0)

    try:
        async with running_bot(settings, embedder):
            # warm-up: one question before timing
            await user(10_000_000)
            latencies.clear()
            started = time.perf_counter()
            await asyncio.gather(*(user(100 + u) for u in range(args.users)))
            wall = time.perf_counter() - started
    finally:
        await api.stop()
    lat = sorted(latencies)
    return {
        "answered": len(lat),
        "wall_s": wall,
        "answered_per_s": len(lat) / wall,
        "p50_ms": statistics.median(lat) * 1000,
        "p95_ms": lat[min(len(lat) - 1, int(0.95 * len(lat)))] * 1000,
        "requests": len(api.requests),
    }


def measure(index_dir: Path, questions: list[str], users: int = 8, per_user: int = 2) -> float:
    """Answers/s through the loopback Bot API over an existing index (bench/query_latency.py calls this)."""

    from index.embedder import DEFAULT_MODEL, SentenceTransformerEmbedder

    models_dir = default_models_dir()
    embedder = SentenceTransformerEmbedder(DEFAULT_MODEL, models_dir=models_dir)
    args = argparse.Namespace(users=users, questions=per_user, rate=30.0, workers=2, question_list=list(questions))
    with tempfile.TemporaryDirectory(prefix="newsqa-bench-") as tmp:
        return float(asyncio.run(run(args, index_dir, embedder, Path(tmp)))["answered_per_s"])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--users", type=int, default=50, help="concurrent users")
    p.add_argument("--questions", type=int, default=4, help="questions per user, asked one after another")
    p.add_argument("--rate", type=float, default=30.0, help="flood limiter, Bot API requests/s (0 = off)")
    p.add_argument("--workers", type=int, default=2, help="search worker threads (NEWSQA_BOT_SEARCH_WORKERS)")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads per search")
    p.add_argument("--index-dir", type=Path, help="an existing index (default: build the sample one)")
    p.add_argument("--models-dir", type=Path, default=None, help="models folder (default NEWSQA_MODELS_DIR or ./models)")
    args = p.parse_args()

    import logging
    import os

    logging.basicConfig(level=logging.WARNING)
    for name in ("httpx", "tornado.access", "sentence_transformers", "transformers", "bm25s"):
        logging.getLogger(name).setLevel(logging.ERROR)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from index.embedder import DEFAULT_MODEL, SentenceTransformerEmbedder, configure_threads

    configure_threads(args.threads)
    models_dir = args.models_dir or default_models_dir()
    with tempfile.TemporaryDirectory(prefix="newsqa-bench-") as tmp:
        work = Path(tmp)
        if args.index_dir:
            index_dir = args.index_dir
            embedder = SentenceTransformerEmbedder(DEFAULT_MODEL, models_dir=models_dir)
        else:
            index_dir, embedder = build_sample_index(models_dir, work)
        embedder.encode_queries(["warm-up"])
        r = asyncio.run(run(args, index_dir, embedder, work))
    print(
        f"users={args.users} questions/user={args.questions} workers={args.workers} threads={args.threads} "
        f"rate_limit={args.rate:g}/s"
    )
    print(
        f"answered {r['answered']} in {r['wall_s']:.2f}s: {r['answered_per_s']:.1f} answered/s; "
        f"latency p50 {r['p50_ms']:.0f} ms, p95 {r['p95_ms']:.0f} ms; {r['requests']} Bot API requests"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
