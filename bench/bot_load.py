"""The users' side of bench/bot_throughput.py: the fake Bot API and the simulated askers, in their own process.

The bot under test runs in the parent process; this process serves the loopback Bot API
(tests/fake_bot_api.py) and plays the users, so none of its CPU is counted against the bot.
It reports its own CPU seconds. Latency is measured here, on one clock: from the moment an
update is queued for getUpdates to the moment the answer's sendMessage reaches the server.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any


@dataclass
class Load:
    """One measured scenario: who asks what, and how questions arrive."""

    questions: list[tuple[str, str]]  # (text, language code), asked in this order
    users: int = 50  # closed loop: users asking one after another; open loop: see chats
    chats: int = 0  # open loop: questions come from this many chats in turn (0: each from its own chat)
    arrival_rate: float = 0.0  # 0 = closed loop; > 0 = open loop, questions/s at evenly spaced times
    warmup: list[tuple[str, str]] = field(default_factory=list)  # asked one by one before timing


def cpu_seconds() -> float:
    """User + system CPU time of this process (all its threads), seconds."""
    t = os.times()
    return t.user + t.system


def serve(conn: Connection) -> None:
    """Process entry point: start the fake Bot API, send its base URL, then run the loads asked for."""
    asyncio.run(_serve(conn))


async def _serve(conn: Connection) -> None:
    from tests.fake_bot_api import FakeBotAPI

    api = await FakeBotAPI().start()
    answers: dict[int, deque[asyncio.Future]] = defaultdict(deque)  # a chat's questions waiting, oldest first

    def on_request(req: Any) -> None:
        if req.method == "sendMessage" and req.status == 200:
            waiting = answers.get(req.chat_id)
            fut = waiting.popleft() if waiting else None
            if fut is not None and not fut.done():
                fut.set_result(req)

    api.listeners.append(on_request)
    conn.send(api.base_url)
    loop = asyncio.get_running_loop()
    try:
        while True:
            command = await loop.run_in_executor(None, conn.recv)
            if command is None:
                return
            conn.send(await _run(api, answers, command))
    finally:
        await api.stop()


async def _ask(api: Any, answers: dict[int, deque[asyncio.Future]], chat: int, text: str, lang: str) -> tuple[float, str]:
    """Push one question and wait for its answer (a chat's answers are matched to its questions in order)."""
    fut = asyncio.get_running_loop().create_future()
    answers[chat].append(fut)
    started = time.monotonic()
    api.push_message(text, user_id=chat, language_code=lang)
    req = await asyncio.wait_for(fut, 300)
    return time.monotonic() - started, req.text or ""


async def _run(api: Any, answers: dict[int, deque[asyncio.Future]], load: Load) -> dict:
    for i, (text, lang) in enumerate(load.warmup):
        await _ask(api, answers, 9_000_000 + i, text, lang)
    latencies: list[float] = []
    texts: list[str] = []
    langs: list[str] = []
    asked_at: list[float] = []
    first = len(api.requests)
    cpu0, wall0 = cpu_seconds(), time.monotonic()

    async def one(chat: int, text: str, lang: str) -> None:
        start = time.monotonic() - wall0
        seconds, body = await _ask(api, answers, chat, text, lang)
        latencies.append(seconds)
        langs.append(lang)
        asked_at.append(start)
        texts.append(body)

    if load.arrival_rate > 0:
        tasks = []
        for i, (text, lang) in enumerate(load.questions):
            delay = wall0 + i / load.arrival_rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            chat = 1_000_000 + (i % load.chats if load.chats > 0 else i)
            tasks.append(asyncio.create_task(one(chat, text, lang)))
        await asyncio.gather(*tasks)
    else:
        per_user: list[list[tuple[str, str]]] = [[] for _ in range(load.users)]
        for i, q in enumerate(load.questions):
            per_user[i % load.users].append(q)

        async def user(uid: int, asked: list[tuple[str, str]]) -> None:
            for text, lang in asked:
                await one(100 + uid, text, lang)

        await asyncio.gather(*(user(u, qs) for u, qs in enumerate(per_user)))
    wall = time.monotonic() - wall0
    cpu = cpu_seconds() - cpu0
    methods = Counter(r.method for r in api.requests[first:])
    return {
        "latencies": latencies,
        "langs": langs,
        "asked_at": asked_at,
        "wall": wall,
        "cpu": cpu,
        "methods": dict(methods),
        "quoted": sum(t.startswith("<b>1.</b>") for t in texts),
    }
