"""Flood control: Telegram's rate limits and bounded retries on the way out, a per-user limit on the way in."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

from telegram.error import BadRequest, NetworkError, RetryAfter
from telegram.ext import AIORateLimiter

log = logging.getLogger("newsqa.bot")


class ResilientRateLimiter(AIORateLimiter):
    """AIORateLimiter (Telegram's flood limits, RetryAfter honoured) plus bounded retries on 5xx and timeouts."""

    def __init__(self, *, network_retries: int = 3, backoff: float = 0.5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.network_retries = network_retries
        self.backoff = backoff

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict | list[dict]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> bool | dict | list[dict]:
        """Send through the flood limiter; a 5xx, timeout or dropped connection is retried a few times."""
        if endpoint == "sendChatAction":
            # "typing…" is best effort and not a message: it does not use up the message budget, and
            # while Telegram has asked us to wait (429) it is skipped rather than added to the flood.
            paused = getattr(self, "_retry_after_event", None)
            if paused is not None and not paused.is_set():
                return True
            try:
                return await callback(*args, **kwargs)
            except RetryAfter:
                return True
        attempt = 0
        while True:
            try:
                return await super().process_request(callback, args, kwargs, endpoint, data, rate_limit_args)
            except BadRequest:
                raise  # our request is wrong: sending it again cannot help
            except NetworkError as exc:  # 5xx, TimedOut, connection errors
                if attempt >= self.network_retries:
                    raise
                attempt += 1
                delay = self.backoff * 2 ** (attempt - 1)
                log.warning("Bot API %s failed (%s); retry %d of %d in %.1fs", endpoint, exc, attempt,
                            self.network_retries, delay)
                await asyncio.sleep(delay)


class UserLimiter:
    """At most `per_minute` questions per user in any 60 seconds; one polite warning per overflow."""

    def __init__(self, per_minute: int, window: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.window = window
        self.clock = clock
        self._seen: dict[int, deque[float]] = {}
        self._warned: dict[int, float] = {}

    def check(self, user_id: int) -> tuple[bool, bool, int]:
        """(allowed, warn, seconds to wait): warn is True only for the first refusal in a window."""
        if self.per_minute <= 0:
            return True, False, 0
        now = self.clock()
        seen = self._seen.setdefault(user_id, deque())
        while seen and now - seen[0] >= self.window:
            seen.popleft()
        if len(seen) < self.per_minute:
            seen.append(now)
            self._warned.pop(user_id, None)
            return True, False, 0
        wait = max(1, int(self.window - (now - seen[0]) + 0.999))
        warned_at = self._warned.get(user_id)
        if warned_at is not None and now - warned_at < self.window:
            return False, False, wait
        self._warned[user_id] = now
        if len(self._seen) > 10_000:  # forget idle users now and then
            for uid in [u for u, d in self._seen.items() if not d or now - d[-1] >= self.window]:
                self._seen.pop(uid, None)
        return False, True, wait
