"""Running the real bot Application against the fake Bot API inside a test (or the bench)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from bot.settings import Settings
from bot.telegram import ALLOWED_UPDATES, NewsBot, build_application
from tests.fake_bot_api import TOKEN, FakeBotAPI

OPERATOR_ID = 9001


def bot_settings(api: FakeBotAPI, index_dir: Path, state_dir: Path, **overrides: Any) -> Settings:
    """Settings pointing the bot at the fake server and a given index (no .env, no environment)."""
    values: dict[str, Any] = {
        "telegram_bot_token": TOKEN,
        "telegram_base_url": api.base_url,
        "index_dir": index_dir,
        "bot_state_file": state_dir / "bot-state.sqlite",
        "operator_ids": str(OPERATOR_ID),
        "telegram_timeout": 5.0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@contextlib.asynccontextmanager
async def running_bot(settings: Settings, embedder: Any, poll_timeout: float = 1.0) -> AsyncIterator[NewsBot]:
    """Initialize, start polling, yield the NewsBot; on exit stop polling and the application gracefully."""
    app = build_application(settings, embedder)
    newsbot: NewsBot = app.bot_data["newsbot"]
    async with app:
        await newsbot.post_init(app)
        await app.start()
        await app.updater.start_polling(
            poll_interval=0,
            timeout=poll_timeout,
            allowed_updates=ALLOWED_UPDATES,
            # as Application.run_polling does: polling errors go to the bot's error handler
            error_callback=lambda exc: app.create_task(app.process_error(error=exc, update=None)),
        )
        try:
            yield newsbot
        finally:
            await app.updater.stop()
            await app.stop()
            await newsbot.post_shutdown(app)


class _TelegramHTML(HTMLParser):
    """Checks that a text uses only tags Telegram accepts, properly nested."""

    ALLOWED = {"b", "i", "a", "u", "s", "code", "pre", "blockquote"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag not in self.ALLOWED:
            self.errors.append(f"tag <{tag}>")
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unbalanced </{tag}>")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def visible_text(html_text: str) -> str:
    """Assert the HTML is what Telegram's HTML parse mode accepts; return the text a user sees."""
    import re

    bare_amp = re.search(r"&(?!(lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);)", html_text)
    assert bare_amp is None, f"unescaped & in {html_text[max(0, bare_amp.start() - 20):bare_amp.end() + 20]!r}"
    stray = re.search(r"<(?!/?(b|i|a|u|s|code|pre|blockquote)[ >])", html_text)
    assert stray is None, f"unescaped < in {html_text[max(0, stray.start() - 20):stray.end() + 20]!r}"
    assert ">" not in re.sub(r"<[^<>]*>", "", html_text), "unescaped > outside a tag"
    p = _TelegramHTML()
    p.feed(html_text)
    p.close()
    assert not p.errors and not p.stack, (p.errors, p.stack)
    return "".join(p.text)

