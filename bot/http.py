"""The Bot API over aiohttp: python-telegram-bot's request interface at a fifth of httpx's CPU per call.

python-telegram-bot sends every Bot API call through a `BaseRequest`; its default, `HTTPXRequest`, spends
~1.3 ms of CPU per call in httpx/httpcore (pure-Python HTTP parsing and a pool scan per request), which at
100 answers/s is a sixth of the bot's CPU. aiohttp parses HTTP in C: ~0.27 ms per call on the same requests
(BENCH.md, "Bot throughput, fourth pass"). `TELEGRAM_HTTP=httpx` brings python-telegram-bot's own back.
"""

from __future__ import annotations

from typing import Any

from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData


class AiohttpRequest(BaseRequest):
    """BaseRequest on one aiohttp session per request object (the bot has two: calls and getUpdates)."""

    def __init__(self, connections: int = 16, timeout: float = 10.0, media_write_timeout: float = 20.0) -> None:
        self.connections = max(1, connections)
        self.timeout = timeout
        self.media_write_timeout = media_write_timeout
        self._session: Any = None  # aiohttp.ClientSession, made in initialize() inside the running loop

    @property
    def read_timeout(self) -> float | None:
        """The default read timeout in seconds (python-telegram-bot adds the long-poll time to it)."""
        return self.timeout

    async def initialize(self) -> None:
        """Open the session and its connection pool (idempotent)."""
        import ssl

        import aiohttp
        import certifi

        if self._session is None or self._session.closed:
            # certifi's CA bundle, as httpx uses: a Python without the system's certificates still reaches Telegram
            tls = ssl.create_default_context(cafile=certifi.where())
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.connections, ssl=tls),
                headers={"User-Agent": self.USER_AGENT},
            )

    async def shutdown(self) -> None:
        """Close the session and its connections (idempotent)."""
        if self._session is not None and not self._session.closed:
            await self._session.close()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = BaseRequest.DEFAULT_NONE,
        write_timeout: Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: Any = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """One call: form fields (and files, as multipart) in, (status, body) out; timeouts as TimedOut."""
        import aiohttp

        if self._session is None or self._session.closed:
            raise RuntimeError("AiohttpRequest is not initialized")
        files = request_data.multipart_data if request_data else None
        fields = request_data.json_parameters if request_data else None
        data: Any = fields
        if files:
            form = aiohttp.FormData()
            for name, value in (fields or {}).items():
                form.add_field(name, value)
            for name, (filename, content, mimetype) in files.items():
                form.add_field(name, content, filename=filename, content_type=mimetype)
            data = form

        def given(value: Any, default: float) -> float | None:
            return default if isinstance(value, type(BaseRequest.DEFAULT_NONE)) else value

        read = given(read_timeout, self.timeout)
        write = given(write_timeout, self.media_write_timeout if files else self.timeout)
        connect = given(connect_timeout, self.timeout)
        pool = given(pool_timeout, self.timeout)
        # aiohttp's `connect` is waiting for a pooled connection plus opening it; it has no write timeout of its
        # own, so the whole call is also bounded by the sum of the parts.
        parts = [t for t in (read, write, connect, pool) if t is not None]
        timeout = aiohttp.ClientTimeout(
            total=sum(parts) if len(parts) == 4 else None,
            connect=None if pool is None or connect is None else pool + connect,
            sock_connect=connect,
            sock_read=read,
        )
        try:
            async with self._session.request(method, url, data=data, timeout=timeout) as response:
                return response.status, await response.read()
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise TimedOut from exc
        except aiohttp.ClientError as exc:
            raise NetworkError(f"aiohttp: {exc!r}") from exc


def bot_requests(client: str, connections: int, timeout: float) -> tuple[BaseRequest, BaseRequest] | None:
    """(calls, getUpdates) request objects for TELEGRAM_HTTP, or None for python-telegram-bot's httpx default."""
    return None if client == "httpx" else (AiohttpRequest(connections, timeout), AiohttpRequest(1, timeout))
