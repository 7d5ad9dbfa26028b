"""A fake Telegram Bot API on 127.0.0.1: real HTTP, real Bot API JSON, updates through getUpdates.

The bot under test talks to it through python-telegram-bot's `base_url`. Every request is recorded
(method, decoded parameters, time, the status answered) so tests assert on the exact payloads.
Faults (429 with retry_after, 5xx, delays) can be queued per method. Any method the test did not
allow is recorded in `unexpected`, answered 404, and fails the test at teardown.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import tornado.httpserver
import tornado.httputil
import tornado.netutil
import tornado.web

BOT_ID = 4242001
BOT_USERNAME = "newsqa_test_bot"
TOKEN = "4242001:TEST-fake-token_abcdefghijklmnopqrstuv"

# Methods a polling bot may call; anything else is unexpected.
DEFAULT_ALLOWED = frozenset(
    {
        "getMe",
        "getUpdates",
        "deleteWebhook",
        "setWebhook",
        "setMyCommands",
        "sendMessage",
        "editMessageText",
        "answerCallbackQuery",
        "answerInlineQuery",
        "sendChatAction",
    }
)
# Parameters sent JSON-encoded inside the form body.
_JSON_FIELDS = ("reply_markup", "entities", "reply_parameters", "link_preview_options", "commands", "scope",
                "allowed_updates", "results", "button")


@dataclass(slots=True)
class Request:
    """One recorded Bot API call."""

    method: str
    params: dict[str, Any]
    at: float
    status: int = 200
    token: str = ""
    returned: Any = None

    @property
    def chat_id(self) -> int | None:
        """The chat the call addresses, as an int."""
        value = self.params.get("chat_id")
        return int(value) if value is not None else None

    @property
    def text(self) -> str | None:
        """The message text sent (sendMessage / editMessageText)."""
        return self.params.get("text")

    @property
    def markup(self) -> dict | None:
        """The decoded reply_markup, if any."""
        return self.params.get("reply_markup")


@dataclass(slots=True)
class Fault:
    """What to answer instead of success, for the next `times` calls of a method."""

    status: int
    times: int
    retry_after: int | None = None
    delay: float = 0.0
    description: str = ""


@dataclass
class FakeBotAPI:
    """The server state: recorded requests, pending updates, queued faults, sent messages."""

    token: str = TOKEN
    allowed: frozenset[str] = DEFAULT_ALLOWED
    requests: list[Request] = field(default_factory=list)
    unexpected: list[Request] = field(default_factory=list)
    port: int = 0

    def __post_init__(self) -> None:
        self._updates: list[dict] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1000)
        self._user_message_ids = itertools.count(1)
        self._new_update = asyncio.Condition()
        self._recorded = asyncio.Condition()
        self._faults: dict[str, list[Fault]] = {}
        self._chats: dict[int, dict] = {}
        self._server: tornado.httpserver.HTTPServer | None = None
        self.confirmed_offset = 0
        self._closing = False
        self.webhook: dict | None = None
        self.listeners: list[Callable[[Request], None]] = []  # called with each answered request

    # --- lifecycle ----------------------------------------------------------------------
    async def start(self) -> FakeBotAPI:
        """Listen on a free loopback port (in the running event loop)."""
        app = tornado.web.Application([(r"/bot([^/]+)/(\w+)", _Handler, {"api": self})])
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
        self.port = sockets[0].getsockname()[1]
        self._server = tornado.httpserver.HTTPServer(app)
        self._server.add_sockets(sockets)
        return self

    async def stop(self) -> None:
        """Stop listening and drop open connections."""
        self._closing = True
        async with self._new_update:
            self._new_update.notify_all()  # end pending long polls with an empty answer
        await asyncio.sleep(0.05)
        if self._server is not None:
            self._server.stop()
            await self._server.close_all_connections()
            self._server = None

    @property
    def base_url(self) -> str:
        """What python-telegram-bot's `base_url` should be (it appends the token)."""
        return f"http://127.0.0.1:{self.port}/bot"

    # --- what tests feed in -------------------------------------------------------------
    def user(self, user_id: int, first_name: str = "User", language_code: str | None = "ar") -> dict:
        """A Telegram User object."""
        u = {"id": user_id, "is_bot": False, "first_name": first_name}
        if language_code:
            u["language_code"] = language_code
        return u

    def push_update(self, update: dict) -> int:
        """Queue a raw update (update_id is assigned); returns its update_id."""
        update = dict(update)
        update["update_id"] = next(self._update_ids)
        self._updates.append(update)
        asyncio.get_running_loop().create_task(self._notify_update())
        return update["update_id"]

    async def _notify_update(self) -> None:
        async with self._new_update:
            self._new_update.notify_all()

    def push_message(
        self,
        text: str,
        user_id: int = 1001,
        chat_id: int | None = None,
        chat_type: str = "private",
        language_code: str | None = "ar",
        entities: list[dict] | None = None,
        reply_to: dict | None = None,
    ) -> dict:
        """Queue a text message from a user; returns the message object."""
        chat_id = user_id if chat_id is None else chat_id
        chat = {"id": chat_id, "type": chat_type}
        chat.update({"first_name": "User"} if chat_type == "private" else {"title": "Group"})
        self._chats[chat_id] = chat
        message = {
            "message_id": next(self._user_message_ids),
            "date": int(time.time()),
            "chat": chat,
            "from": self.user(user_id, language_code=language_code),
            "text": text,
        }
        if text.startswith("/"):
            cmd = text.split()[0]
            entities = (entities or []) + [{"type": "bot_command", "offset": 0, "length": len(cmd)}]
        if entities:
            message["entities"] = entities
        if reply_to is not None:
            message["reply_to_message"] = reply_to
        self.push_update({"message": message})
        return message

    def push_raw_message(self, message: dict, user_id: int = 1001, chat_id: int | None = None) -> dict:
        """Queue a message with arbitrary content (sticker, photo...)."""
        chat_id = user_id if chat_id is None else chat_id
        chat = {"id": chat_id, "type": "private", "first_name": "User"}
        self._chats[chat_id] = chat
        full = {"message_id": next(self._user_message_ids), "date": int(time.time()), "chat": chat,
                "from": self.user(user_id)} | message
        self.push_update({"message": full})
        return full

    def push_callback(self, data: str, message: dict, user_id: int = 1001, language_code: str | None = "ar") -> str:
        """Queue a button press on a message the bot sent; returns the callback query id."""
        qid = f"cq{next(self._update_ids)}"
        self.push_update(
            {
                "callback_query": {
                    "id": qid,
                    "from": self.user(user_id, language_code=language_code),
                    "chat_instance": "ci1",
                    "message": message,
                    "data": data,
                }
            }
        )
        return qid

    def push_inline_query(self, query: str, user_id: int = 1001, language_code: str | None = "ar",
                          chat_type: str = "sender", offset: str = "") -> str:
        """Queue an inline query (`@bot query` typed in a chat); returns its id."""
        qid = f"iq{next(self._update_ids)}"
        self.push_update(
            {
                "inline_query": {
                    "id": qid,
                    "from": self.user(user_id, language_code=language_code),
                    "query": query,
                    "offset": offset,
                    "chat_type": chat_type,
                }
            }
        )
        return qid

    def fail(self, method: str, status: int, times: int = 1, retry_after: int | None = None,
             delay: float = 0.0, description: str = "") -> None:
        """Answer the next `times` calls of `method` with this status (after `delay` seconds)."""
        self._faults.setdefault(method, []).append(Fault(status, times, retry_after, delay, description))

    def delay(self, method: str, seconds: float, times: int = 1) -> None:
        """Answer the next `times` calls of `method` successfully but only after `seconds`."""
        self.fail(method, 200, times, delay=seconds)

    # --- what tests read back -----------------------------------------------------------
    def calls(self, method: str | Iterable[str] | None = None, chat_id: int | None = None) -> list[Request]:
        """Recorded calls, optionally of one method (or several) and one chat."""
        methods = {method} if isinstance(method, str) else set(method) if method else None
        return [
            r for r in self.requests
            if (methods is None or r.method in methods) and (chat_id is None or r.chat_id == chat_id)
        ]

    def successes(self, method: str, chat_id: int | None = None) -> list[Request]:
        """Recorded calls of a method that were answered 200."""
        return [r for r in self.calls(method, chat_id) if r.status == 200]

    async def wait_for(
        self,
        method: str | Iterable[str],
        count: int = 1,
        timeout: float = 20.0,
        where: Callable[[Request], bool] | None = None,
        ok_only: bool = True,
    ) -> list[Request]:
        """Wait until `count` matching calls were answered; returns them (fails on timeout)."""

        def matching() -> list[Request]:
            return [r for r in self.calls(method) if (not ok_only or r.status == 200) and (where is None or where(r))]

        async def wait() -> list[Request]:
            async with self._recorded:
                await self._recorded.wait_for(lambda: len(matching()) >= count)
            return matching()

        try:
            return await asyncio.wait_for(wait(), timeout)
        except TimeoutError:
            got = matching()
            raise AssertionError(
                f"waited {timeout}s for {count} {method} call(s), got {len(got)}; all calls: "
                + ", ".join(f"{r.method}:{r.status}" for r in self.requests[-40:])
            ) from None

    def message_object(self, request: Request) -> dict:
        """The Message the server returned for a recorded sendMessage (for pressing its buttons)."""
        return request.returned

    def assert_clean(self) -> None:
        """No method outside the allowed set was called."""
        assert not self.unexpected, f"unexpected Bot API methods: {[r.method for r in self.unexpected]}"

    # --- serving ------------------------------------------------------------------------
    async def handle(self, token: str, method: str, params: dict[str, Any]) -> tuple[int, dict]:
        """Record one call and produce the HTTP status and Bot API JSON reply."""
        req = Request(method, params, time.monotonic(), status=0, token=token)  # status 0: still pending
        self.requests.append(req)
        if method not in self.allowed:
            self.unexpected.append(req)
        await self._notify_recorded()
        try:
            status, body = await self._answer(req)
        except asyncio.CancelledError:
            req.status = -1  # the client went away before we answered
            raise
        req.status = status
        for listener in self.listeners:
            listener(req)
        await self._notify_recorded()
        return status, body

    async def _notify_recorded(self) -> None:
        async with self._recorded:
            self._recorded.notify_all()

    async def _answer(self, req: Request) -> tuple[int, dict]:
        if req.token != self.token:
            return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
        if req.method not in self.allowed:
            return 404, {"ok": False, "error_code": 404, "description": "Not Found: method not found"}
        fault = self._take_fault(req.method)
        if fault is not None:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.status != 200:
                body: dict[str, Any] = {
                    "ok": False,
                    "error_code": fault.status,
                    "description": fault.description or _describe(fault),
                }
                if fault.retry_after is not None:
                    body["parameters"] = {"retry_after": fault.retry_after}
                return fault.status, body
        result = await getattr(self, f"_m_{req.method}", self._m_true)(req)
        return 200, {"ok": True, "result": result}

    def _take_fault(self, method: str) -> Fault | None:
        queue = self._faults.get(method)
        if not queue:
            return None
        fault = queue[0]
        fault.times -= 1
        if fault.times <= 0:
            queue.pop(0)
        return fault

    async def _m_true(self, req: Request) -> bool:
        return True

    async def _m_getMe(self, req: Request) -> dict:
        return {
            "id": BOT_ID,
            "is_bot": True,
            "first_name": "NewsQA",
            "username": BOT_USERNAME,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": True,
        }

    async def _m_getUpdates(self, req: Request) -> list[dict]:
        offset = int(req.params.get("offset") or 0)
        timeout = float(req.params.get("timeout") or 0)
        limit = int(req.params.get("limit") or 100)
        if offset:
            self.confirmed_offset = max(self.confirmed_offset, offset)
            self._updates = [u for u in self._updates if u["update_id"] >= offset]

        def ready() -> list[dict]:
            return [u for u in self._updates if u["update_id"] >= offset][:limit]

        if not ready() and timeout > 0:
            async with self._new_update:
                try:
                    await asyncio.wait_for(self._new_update.wait_for(lambda: bool(ready()) or self._closing), timeout)
                except TimeoutError:
                    pass
        return ready()

    @property
    def pending_updates(self) -> int:
        """Updates not yet confirmed by a later getUpdates offset."""
        return len([u for u in self._updates if u["update_id"] >= self.confirmed_offset])

    def _bot_message(self, req: Request) -> dict:
        chat_id = int(req.params["chat_id"])
        chat = self._chats.get(chat_id, {"id": chat_id, "type": "private" if chat_id > 0 else "group"})
        msg = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": chat,
            "from": {"id": BOT_ID, "is_bot": True, "first_name": "NewsQA", "username": BOT_USERNAME},
            "text": _visible_text(req.params.get("text", "")),
        }
        if req.params.get("reply_markup"):
            msg["reply_markup"] = req.params["reply_markup"]
        return msg

    async def _m_sendMessage(self, req: Request) -> dict:
        msg = self._bot_message(req)
        req.returned = msg
        return msg

    async def _m_editMessageText(self, req: Request) -> dict:
        msg = self._bot_message(req)
        msg["message_id"] = int(req.params["message_id"])
        req.returned = msg
        return msg

    async def _m_setWebhook(self, req: Request) -> bool:
        self.webhook = dict(req.params)
        return True

    async def _m_deleteWebhook(self, req: Request) -> bool:
        self.webhook = None
        return True


def _describe(fault: Fault) -> str:
    if fault.status == 429:
        return f"Too Many Requests: retry after {fault.retry_after}"
    if fault.status >= 500:
        return "Internal Server Error" if fault.status == 500 else f"Server Error {fault.status}"
    return f"Error {fault.status}"


def _visible_text(html_text: str) -> str:
    """What a user would see of an HTML-mode text (tags dropped, entities decoded)."""
    import html
    import re

    return html.unescape(re.sub(r"<[^>]+>", "", html_text))


def decode_params(content_type: str, body: bytes, query: dict[str, list[bytes]]) -> dict[str, Any]:
    """Form-encoded or JSON request parameters, with the JSON-valued fields decoded."""
    params: dict[str, Any] = {k: v[-1].decode() for k, v in query.items()}
    if body:
        if content_type.startswith("application/json"):
            params.update(json.loads(body))
        elif content_type.startswith("application/x-www-form-urlencoded"):
            params.update(dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True)))
        elif content_type.startswith("multipart/form-data"):
            fields: dict[str, list[bytes]] = {}
            files: dict[str, list] = {}
            tornado.httputil.parse_body_arguments(content_type, body, fields, files)
            params.update({k: v[-1].decode() for k, v in fields.items()})
    for key in _JSON_FIELDS:
        if isinstance(params.get(key), str):
            params[key] = json.loads(params[key])
    return params


class _Handler(tornado.web.RequestHandler):
    """Routes /bot<token>/<method> to the FakeBotAPI."""

    def initialize(self, api: FakeBotAPI) -> None:
        self.api = api

    async def post(self, token: str, method: str) -> None:
        await self._serve(token, method)

    async def get(self, token: str, method: str) -> None:
        await self._serve(token, method)

    async def _serve(self, token: str, method: str) -> None:
        try:
            params = decode_params(self.request.headers.get("Content-Type", ""), self.request.body,
                                   self.request.query_arguments)
        except ValueError as exc:
            self.set_status(400)
            self.finish({"ok": False, "error_code": 400, "description": f"Bad Request: {exc}"})
            return
        status, body = await self.api.handle(token, method, params)
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body, ensure_ascii=False))


