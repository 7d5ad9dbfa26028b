"""The Telegram bot answering from a Qdrant index (local mode on disk), end to end over the loopback Bot API."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.indexing import run_update
from bot.texts import AR, EN, text
from tests.bot_harness import bot_settings, running_bot, visible_text
from tests.fake_bot_api import BOT_USERNAME

pytestmark = [pytest.mark.timeout(180), pytest.mark.usefixtures("one_torch_thread")]
pytest.importorskip("qdrant_client")

FLOOD_Q = "كم قاربا تضرر في فيضانات الميناء؟"


async def test_bot_answers_from_qdrant_exactly_as_from_local_files(api, embedder, searcher, combined_corpus: Path, tmp_path: Path):  # noqa: ANN001
    settings = bot_settings(api, tmp_path / "index", tmp_path, backend="qdrant", corpus_dir=combined_corpus, qdrant_prefix="bot")
    report = run_update(settings, embedder, settings.build_options())
    assert report.switched and report.total_articles == 6
    from bot.render import render_page

    async with running_bot(settings, embedder):
        api.push_message(FLOOD_Q, user_id=31)
        api.push_message("/help", user_id=32, language_code="en")
        api.push_message("/sources", user_id=33, language_code="ar")
        sent = await api.wait_for("sendMessage", 3)
    by_chat = {r.chat_id: r for r in sent}
    expected = render_page(searcher.answer(FLOOD_Q, k=6).hits[:5], AR, 0, None).html  # the local backend's answer
    assert by_chat[31].text == expected
    assert "120 قاربا" in visible_text(by_chat[31].text)
    facts = dict(articles=6, outlets=5, date_min="2014-12-18", date_max="2024-03-01", mention=f"@{BOT_USERNAME}")
    assert by_chat[32].text == text("help", EN, example=text("example", EN), **facts)
    assert "جريدة الساحل" in by_chat[33].text and "وكالة الأنباء الاقتصادية" in by_chat[33].text
