"""bot/http.py's aiohttp client for the Bot API, against real HTTP servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
import ssl

import pytest
from aiohttp import web
from telegram import InputFile
from telegram.error import NetworkError, TimedOut
from telegram.request import RequestData
from telegram.request._requestparameter import RequestParameter

from bot.http import AiohttpRequest

pytestmark = pytest.mark.timeout(60)


async def serve(handler) -> tuple[web.AppRunner, str]:  # noqa: ANN001
    app = web.Application()
    app.router.add_post("/{method}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


async def test_form_fields_and_files_arrive_and_the_reply_comes_back() -> None:
    seen: dict = {}

    async def handler(request: web.Request) -> web.Response:
        seen["type"] = request.content_type
        if request.content_type == "multipart/form-data":
            form = await request.post()
            seen["fields"] = {k: (v.filename, v.file.read()) if hasattr(v, "filename") else v for k, v in form.items()}
        else:
            seen["fields"] = dict(await request.post())
        seen["agent"] = request.headers.get("User-Agent", "")
        return web.json_response({"ok": True, "result": True}, status=200)

    runner, base = await serve(handler)
    req = AiohttpRequest(connections=2, timeout=5.0)
    await req.initialize()
    assert req._session.connector.limit == 2  # TELEGRAM_CONNECTIONS reaches the pool
    tls = req._session.connector._ssl  # verified TLS against certifi's bundle, as python-telegram-bot's httpx does
    assert tls.verify_mode == ssl.CERT_REQUIRED and tls.check_hostname and tls.cert_store_stats()["x509_ca"] > 100
    try:
        status, body = await req.do_request(f"{base}/sendMessage", "POST", RequestData([RequestParameter.from_input("text", "مرحبا <b>")]))
        assert (status, seen["type"], seen["fields"]) == (200, "application/x-www-form-urlencoded", {"text": "مرحبا <b>"})
        assert b'"ok": true' in body and "python-telegram-bot" in seen["agent"]
        doc = RequestParameter.from_input("document", InputFile(b"article text", filename="article.txt"))
        status, _ = await req.do_request(f"{base}/sendDocument", "POST", RequestData([RequestParameter.from_input("chat_id", 7), doc]))
        assert status == 200 and seen["type"] == "multipart/form-data"
        assert seen["fields"]["chat_id"] == "7" and seen["fields"]["document"] == ("article.txt", b"article text")
    finally:
        await req.shutdown()
        await runner.cleanup()


async def test_a_slow_server_is_a_timeout_and_a_closed_port_a_network_error() -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(3)
        return web.json_response({"ok": True, "result": True})

    runner, base = await serve(slow)
    req = AiohttpRequest(connections=1, timeout=0.5)
    await req.initialize()
    try:
        with pytest.raises(TimedOut):
            await req.do_request(f"{base}/getMe", "POST")
        with socket.socket() as s:  # a port nobody listens on
            s.bind(("127.0.0.1", 0))
            closed = s.getsockname()[1]
        with pytest.raises(NetworkError) as caught:
            await req.do_request(f"http://127.0.0.1:{closed}/getMe", "POST")
        assert not isinstance(caught.value, TimedOut)
    finally:
        await req.shutdown()
        await runner.cleanup()
    with pytest.raises(RuntimeError, match="not initialized"):
        await req.do_request(f"{base}/getMe", "POST")
