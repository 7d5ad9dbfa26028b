"""`newsqa bot` as a real process: token errors are one clear line, the token never reaches the logs,
and SIGTERM lets the answer in flight finish."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from tests.fake_bot_api import TOKEN, FakeBotAPI

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.timeout(180)


def bot_env(index_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "NEWSQA_", "OPERATOR_"))}
    env.update(
        PYTHONPATH=str(ROOT),
        NEWSQA_INDEX_DIR=str(index_dir),
        NEWSQA_HOME=os.environ["NEWSQA_HOME"],  # the test data home, where the model is provisioned
        NEWSQA_MODELS_DIR=os.environ.get("NEWSQA_MODELS_DIR", str(Path(os.environ["NEWSQA_HOME"]) / "models")),
        NEWSQA_BOT_STATE_FILE=str(index_dir.parent / f"state-{os.getpid()}.sqlite"),
    )
    env.update(extra)
    return env


async def start_bot(cwd: Path, env: dict[str, str], *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", *args, "bot", cwd=cwd, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (None, "newsqa: TELEGRAM_BOT_TOKEN is not set"),
        ("12345:SECRET-short", "newsqa: TELEGRAM_BOT_TOKEN is malformed"),
        ("not a token at all", "newsqa: TELEGRAM_BOT_TOKEN is malformed"),
    ],
)
async def test_missing_or_malformed_token_is_one_clear_line(token, message, built_index, tmp_path):
    env = bot_env(built_index, **({"TELEGRAM_BOT_TOKEN": token} if token else {}))
    proc = await start_bot(tmp_path, env)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 1
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), err.decode()
    assert "Traceback" not in err.decode()
    if token:
        assert token not in (out + err).decode()


async def test_missing_index_is_one_clear_line(tmp_path):
    env = bot_env(tmp_path / "no-index", TELEGRAM_BOT_TOKEN=TOKEN)
    proc = await start_bot(tmp_path, env)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 1
    assert err.decode().strip().splitlines() == [
        f"newsqa: no index in {tmp_path / 'no-index'}: build one with `newsqa index build`"
    ]


async def test_unreachable_bot_api_is_one_clear_line(built_index, tmp_path):
    import socket

    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = bot_env(built_index, TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_BASE_URL=f"http://127.0.0.1:{port}/bot")
    proc = await start_bot(tmp_path, env)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    lines = err.decode().strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, err.decode()
    assert lines[0].startswith(f"newsqa: cannot reach the Telegram Bot API at http://127.0.0.1:{port}/bot: ")
    assert TOKEN not in err.decode()


async def test_rejected_token_is_one_clear_line_without_the_token(built_index, tmp_path):
    api = await FakeBotAPI().start()
    other = "4242001:ANOTHER-token_abcdefghijklmnopqrstuvwxyz"
    try:
        env = bot_env(built_index, TELEGRAM_BOT_TOKEN=other, TELEGRAM_BASE_URL=api.base_url)
        proc = await start_bot(tmp_path, env)
        out, err = await asyncio.wait_for(proc.communicate(), 120)
    finally:
        await api.stop()
    text = err.decode()
    assert proc.returncode == 1, text
    assert text.strip().splitlines() == [
        "newsqa: Telegram rejected TELEGRAM_BOT_TOKEN (unauthorized): check the token BotFather gave you"
    ]
    assert "Traceback" not in text and other not in text + out.decode()
    assert [r.method for r in api.requests] == ["getMe"]  # checked before loading the model


async def test_sigterm_lets_the_answer_in_flight_finish_and_token_stays_out_of_logs(built_index, tmp_path):
    api = await FakeBotAPI().start()
    # Token from .env in the working directory; base URL and index from the environment.
    (tmp_path / ".env").write_text(f"TELEGRAM_BOT_TOKEN={TOKEN}\n", encoding="utf-8")
    # NEWSQA_BOT_TYPING_AFTER=0: "typing…" at once, so the delayed chat action keeps the answer in flight.
    env = bot_env(built_index, TELEGRAM_BASE_URL=api.base_url, NEWSQA_THREADS="1", NEWSQA_BOT_TYPING_AFTER="0")
    proc = await start_bot(tmp_path, env, "-v")  # verbose: httpx would log every URL, token included
    try:
        await api.wait_for("getUpdates", timeout=120, ok_only=False)
        api.delay("sendChatAction", 2.0)  # keeps the answer in flight while we send SIGTERM
        api.push_message("كم قاربا تضرر في فيضانات الميناء؟", user_id=501)
        await api.wait_for("sendChatAction", ok_only=False)
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
        await api.stop()
    logs = (out + err).decode()
    assert proc.returncode == 0, logs
    [answer] = api.successes("sendMessage")
    assert answer.chat_id == 501 and answer.text.startswith("<b>1.</b> «")
    assert answer.at > api.calls("sendChatAction")[0].at
    assert "every answer in flight was sent" in err.decode().strip().splitlines()[-1]
    assert TOKEN not in logs and "Traceback" not in logs
    assert logs.count("newsqa bot: @newsqa_test_bot answering from") == 1
    api.assert_clean()
