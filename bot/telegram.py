"""The Telegram bot: python-telegram-bot Application wiring, handlers, error handler, run_bot()."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import html
import logging
import re
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
from telegram import (
    BotCommand,
    BotCommandScopeDefault,
    LinkPreviewOptions,
    Message,
    MessageEntity,
    ReplyParameters,
    Update,
)
from telegram.constants import ChatAction, ParseMode
from telegram.error import BadRequest, InvalidToken, NetworkError, TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    InlineQueryHandler,
    MessageHandler,
    filters,
)

from bot.asking import Ask
from bot.autoupdate import AutoUpdate, report_message
from bot.callbacks import ARTICLE, QUESTION, UP, VOTE, CallbackStore, decode
from bot.chatfilters import FilterError, parse
from bot.feedback import FeedbackStore, Votes, report_html
from bot.flood import ResilientRateLimiter, UserLimiter
from bot.followup import ContextStore, Conversations
from bot.http import bot_requests
from bot.inline import InlineMode, InlineSearch
from bot.render import pack
from bot.searching import BotSearch, PageResult, SerialEmbedder
from bot.texts import AR, EN, language, text
from index.embedder import Embedder, encode_questions
from index.second_encoder import SecondEncoderError, shared_encoder
from index.errors import NewsqaError
from index.words import word_table_of
from retrieval.batching import BatchingEmbedder, QueryBatcher
from retrieval.context import searched_text
from retrieval.search import LiveSearcher

log = logging.getLogger("newsqa.bot")

T = TypeVar("T")
HTML = ParseMode.HTML
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
MAX_QUESTION_CHARS = 500
# Threads of each question encoder while serving, unless NEWSQA_THREADS says otherwise. Questions are encoded one at a
# time on the batcher's thread; a second ONNX thread makes an Arabic question 0.4 ms sooner (3.8 vs 4.2 ms) for 1.5 ms
# more CPU (5.7 vs 4.2), and under load that CPU is what the event loop and the search workers wait for (BENCH.md).
SERVING_THREADS = 1
TYPING_EVERY = 4.5  # Telegram shows "typing…" for about 5 seconds per chat action
_TOKEN_RE = re.compile(r"\d{3,}:[A-Za-z0-9_-]{30,}")


class BotSetupError(NewsqaError):
    """The bot cannot start: missing or malformed token, rejected token, unreachable Bot API, bad mode."""


def bot_token(settings: Any) -> str:
    """TELEGRAM_BOT_TOKEN checked for presence and shape (the value itself is never shown)."""
    secret = settings.telegram_bot_token
    token = secret.get_secret_value().strip() if secret is not None else ""
    if not token:
        raise BotSetupError("TELEGRAM_BOT_TOKEN is not set: put the token BotFather gave you in the environment or .env")
    if not _TOKEN_RE.fullmatch(token):
        raise BotSetupError(
            "TELEGRAM_BOT_TOKEN is malformed: expected <digits>:<35 letters, digits, - or _> as BotFather gives it"
        )
    return token


class RedactingFormatter(logging.Formatter):
    """Wraps a handler's formatter so the bot token never reaches a log line or a traceback."""

    def __init__(self, inner: logging.Formatter | None, secret: str) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()
        self.secret = secret

    def format(self, record: logging.LogRecord) -> str:
        """The inner formatter's line with the token replaced."""
        return self.inner.format(record).replace(self.secret, "<TELEGRAM_BOT_TOKEN>")


def redact_token_in_logs(token: str) -> None:
    """Install token redaction on every root log handler (httpx logs request URLs, which hold the token)."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in root.handlers:
        if not isinstance(handler.formatter, RedactingFormatter):
            handler.setFormatter(RedactingFormatter(handler.formatter, token))
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger("httpx").level))


@dataclass
class Stats:
    """Counters for /stats."""

    started: float = field(default_factory=time.monotonic)
    questions: int = 0
    answered: int = 0
    no_answer: int = 0
    limited: int = 0
    errors: int = 0
    in_flight: int = 0
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=1000))

    def percentile(self, p: float) -> float | None:
        """p-th percentile of recent answer latencies, seconds."""
        if not self.latencies:
            return None
        values = sorted(self.latencies)
        return values[min(len(values) - 1, int(p / 100 * len(values)))]


async def second_vector(batcher: QueryBatcher, text_: str) -> np.ndarray | None:
    """The text's vector by the second encoder from a shared batch; None (the search encodes it, and says what is
    wrong) when that encoder cannot load."""
    try:
        return await batcher.encode_async(text_)
    except SecondEncoderError:
        return None


class NewsBot:
    """The handlers and the state they share: searcher, button keys, limits, stats, reindex task."""

    def __init__(
        self,
        settings: Any,
        embedder: Embedder,
        *,
        live: LiveSearcher | None = None,
        store: CallbackStore | None = None,
    ) -> None:
        self.settings = settings
        self.embedder = embedder
        # Questions waiting for their vector hold no search worker, and all of them share the next encoder
        # call: one encode per batch instead of one per question (max_wait 0: batch what is queued, never wait).
        self.batcher = (
            QueryBatcher(embedder, settings.bot_embed_batch, max_wait=0.0, cache=settings.bot_question_cache)
            if settings.bot_embed_batch > 1 else None
        )
        # The second encoder's question vectors are batched the same way, on a thread of their own: one call for 8
        # questions costs about what 3 single ones do, and single calls queue behind its lock (BENCH.md).
        self.second_batcher = (
            QueryBatcher(None, settings.bot_embed_batch, max_wait=0.0, cache=settings.bot_question_cache,
                         encode=shared_encoder().encode)
            if self.batcher is not None else None
        )
        # What the searcher itself encodes (an English question's words, inline queries) joins the same batches
        # and cache.
        searching = BatchingEmbedder(embedder, batcher=self.batcher) if self.batcher is not None else embedder
        self.live = live or LiveSearcher(settings.version_store(), searching, settings.search_config())
        self.store = store or CallbackStore(settings.bot_state_path)
        self.search = BotSearch(self.live, self.store, settings.top_k)
        self.conversations = Conversations(ContextStore(settings.bot_state_path, settings.followup_minutes * 60))
        self.operators = settings.operators
        self.limiter = UserLimiter(settings.user_questions_per_minute)
        self.stats = Stats()
        self.executor = ThreadPoolExecutor(max(1, settings.bot_search_workers), thread_name_prefix="newsqa-search")
        self.typing_after = settings.bot_typing_after
        self.reindex_task: asyncio.Task | None = None
        self.reindex_state = "never run"
        self._build_embedder: Embedder | None = None
        self.feedback = FeedbackStore(settings.bot_state_path)
        self.votes = Votes(self.store, self.feedback)
        self.inline = InlineMode(InlineSearch(self.live, settings.inline_results, settings.inline_cache_seconds),
                                 UserLimiter(settings.user_questions_per_minute), self.run_sync,
                                 settings.inline_cache_seconds, MAX_QUESTION_CHARS)
        self.auto_update: AutoUpdate | None = None

    # --- plumbing -----------------------------------------------------------------------
    async def run_sync(self, fn: Callable[..., T], *args: Any) -> T:
        """Run CPU-bound work in the search pool, off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    async def page(self, question: str | Ask, lang: str, offset: int = 0) -> PageResult:
        """A page of the answer: the vector of the text searched from a shared encoder batch, then the search in the pool.

        A follow-up is searched as the expanded question, so that is what the batch encodes.
        """
        text_ = searched_text(question.question, question.context) if isinstance(question, Ask) else question
        if self.batcher is None or self.second_batcher is None:
            return await self.run_sync(self.search.page, question, lang, offset, None, None)
        qvec, second = await asyncio.gather(self.batcher.encode_async(text_), second_vector(self.second_batcher, text_))
        return await self.run_sync(self.search.page, question, lang, offset, qvec, second)

    async def with_typing(self, bot: Any, chat_id: int, work: Awaitable[T]) -> T:
        """Await work; if it takes longer than `typing_after` seconds the chat shows 'typing…' (refreshed).

        A fast answer sends no chat action at all: one Bot API request per question instead of two.
        The last chat action is awaited before returning, so it can never land after the answer
        (which would show 'typing…' under a message that is already there).
        """
        done = asyncio.Event()

        async def typing() -> None:
            if self.typing_after > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(done.wait(), self.typing_after)
                    return  # answered before anyone would miss an indicator
            while True:
                try:
                    await bot.send_chat_action(chat_id=chat_id, action=ChatAction.TYPING)
                except TelegramError as exc:
                    log.debug("typing indicator failed: %s", exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(done.wait(), TYPING_EVERY)
                    return

        indicator = asyncio.create_task(typing())
        try:
            return await work
        finally:
            done.set()
            await indicator

    def register(self, app: Application) -> None:
        """Attach every handler and the error handler."""
        app.bot_data["newsbot"] = self
        app.add_handler(CommandHandler(["start", "help"], self.cmd_help))
        app.add_handler(CommandHandler("stats", self.cmd_stats))
        app.add_handler(CommandHandler("reindex", self.cmd_reindex))
        app.add_handler(CommandHandler("feedback", self.cmd_feedback))
        app.add_handler(InlineQueryHandler(self.inline.on_inline_query))
        app.add_handler(CommandHandler("new", self.cmd_new))
        app.add_handler(CommandHandler("sources", self.cmd_sources))
        text_message = filters.UpdateType.MESSAGE & filters.TEXT & ~filters.COMMAND
        app.add_handler(MessageHandler(text_message & filters.ChatType.PRIVATE, self.on_private_text))
        app.add_handler(MessageHandler(text_message & filters.ChatType.GROUPS, self.on_group_text))
        app.add_handler(
            MessageHandler(filters.UpdateType.MESSAGE & filters.ChatType.PRIVATE & ~filters.TEXT, self.on_non_text)
        )
        app.add_handler(MessageHandler(filters.UpdateType.MESSAGE & filters.ChatType.PRIVATE & filters.COMMAND,
                                       self.cmd_help))
        app.add_handler(CallbackQueryHandler(self.on_button))
        app.add_error_handler(self.on_error)

    async def post_init(self, app: Application) -> None:
        """Load the index and publish the command menu (Arabic by default, English for English clients)."""
        await self.run_sync(word_table_of, self.embedder)  # the English word table, read now (~0.1 s), not by a question
        try:  # the version's files, numba's compile for a large one, and the language offset (retrieval/centring.py)
            await self.run_sync(lambda: self.live.get().language_offset())  # now rather than in the first question
        except (NewsqaError, OSError, RuntimeError, ValueError) as exc:
            log.warning("the index could not be loaded at start-up (%s); each question will try again", exc)
        for lang, code in (("ar", None), (EN, EN)):
            commands = [
                BotCommand("help", "كيف تسأل وما الذي أعرفه" if lang == "ar" else "How to ask and what I know"),
                BotCommand("start", "البداية" if lang == "ar" else "Start"),
                BotCommand("new", "موضوع جديد" if lang == "ar" else "New topic (forget the previous question)"),
                BotCommand("sources", "المصادر وتواريخها" if lang == "ar" else "Outlets and their dates"),
            ]
            try:
                await app.bot.set_my_commands(commands, scope=BotCommandScopeDefault(), language_code=code)
            except TelegramError as exc:
                log.warning("could not publish the command menu: %s", exc)
        every = self.settings.auto_update_seconds
        if every is not None:
            self.auto_update = AutoUpdate(
                self.settings.corpus_dir, every, lambda: self._update_index(AUTO_UPDATE_LOCK_WAIT),
                self.search.corpus, lambda body: self.tell_operators(app.bot, body), AR,
            )
            self.auto_update.start()

    async def post_stop(self, app: Application) -> None:
        """Stop watching the corpus while the bot can still tell operators about an update in progress."""
        if self.auto_update is not None:
            await self.auto_update.stop()

    async def post_shutdown(self, app: Application) -> None:
        """Let background work finish, then release threads and files."""
        await self.post_stop(app)
        self.executor.shutdown(wait=True)
        for batcher in (self.batcher, self.second_batcher):
            if batcher is not None:
                batcher.close()
        self.store.close()
        self.feedback.close()
        self.conversations.store.close()

    async def tell_operators(self, bot: Any, body: str) -> None:
        """Send an HTML message to every operator (one who never opened a chat with the bot is skipped)."""
        for operator in sorted(self.operators):
            try:
                await bot.send_message(operator, body, parse_mode=HTML, link_preview_options=NO_PREVIEW)
            except TelegramError as exc:
                log.warning("could not tell operator %s: %s", operator, exc)

    # --- commands -----------------------------------------------------------------------
    async def cmd_help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/start and /help: what the bot knows and how to ask."""
        lang = language(update.effective_user.language_code if update.effective_user else None)
        info = await self.run_sync(self.search.corpus)
        body = text(
            "help",
            lang,
            articles=info.articles,
            outlets=info.outlets,
            date_min=info.date_min,
            date_max=info.date_max,
            example=html.escape(text("example", lang), quote=False),
            mention=html.escape(f"@{context.bot.username}", quote=False),
        )
        await update.effective_message.reply_text(body, parse_mode=HTML, link_preview_options=NO_PREVIEW)

    async def cmd_new(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/new: forget this chat's previous question; the next one starts fresh."""
        lang = language(update.effective_user.language_code if update.effective_user else None)
        forgot = await self.run_sync(self.conversations.new, update.effective_chat.id)
        await update.effective_message.reply_text(text("new_done" if forgot else "new_nothing", lang), parse_mode=HTML)

    async def cmd_sources(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/sources: the outlets with their article counts and date ranges, and how to keep to one."""
        lang = language(update.effective_user.language_code if update.effective_user else None)
        found = await self.run_sync(self.search.outlets)
        esc = functools.partial(html.escape, quote=False)
        lines = [text("sources_head", lang, outlets=len(found), articles=sum(o.articles for o in found))]
        lines += [
            text("sources_line", lang, outlet=esc(o.name), articles=o.articles, first=o.first.strftime("%Y-%m-%d"),
                 last=o.last.strftime("%Y-%m-%d"))
            for o in found
        ]
        if found:
            lines.append("\n" + text("sources_hint", lang, outlet=esc(found[0].name)))
        for body in pack(lines, sep="\n"):
            await update.effective_message.reply_text(body, parse_mode=HTML, link_preview_options=NO_PREVIEW)

    def is_operator(self, update: Update) -> bool:
        """Whether the sender is listed in OPERATOR_IDS."""
        return update.effective_user is not None and update.effective_user.id in self.operators

    async def refuse(self, update: Update) -> None:
        """Tell a non-operator politely that the command is not theirs; nothing else happens."""
        lang = language(update.effective_user.language_code if update.effective_user else None)
        log.info("refused operator command from user %s", update.effective_user.id if update.effective_user else "?")
        await update.effective_message.reply_text(text("operators_only", lang), parse_mode=HTML)

    async def cmd_stats(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/stats (operators): index, traffic and latency figures."""
        if not self.is_operator(update):
            await self.refuse(update)
            return
        info = await self.run_sync(self.search.corpus)
        s = self.stats
        up = int(time.monotonic() - s.started)
        p50, p95 = s.percentile(50), s.percentile(95)
        lat = f"p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms" if p50 is not None else "no answers yet"
        body = (
            f"<b>Index</b> {html.escape(info.version)}: {info.articles} articles, {info.chunks} passages, "
            f"{info.outlets} outlets, {info.date_min} … {info.date_max}\n"
            f"<b>Uptime</b> {up // 3600}h {up % 3600 // 60}m {up % 60}s\n"
            f"<b>Questions</b> {s.questions}: answered {s.answered}, no answer {s.no_answer}, "
            f"over the per-user limit {s.limited}; errors {s.errors}; in flight {s.in_flight}\n"
            f"<b>Latency</b> {lat}\n"
            f"<b>Reindex</b> {html.escape(self.reindex_state)}"
        )
        if self.auto_update is not None:
            body += f"\n<b>Auto update</b> {html.escape(self.auto_update.state)}"
        if self.live.problem:
            body += f"\n<b>Not serving the newest version</b>: {html.escape(self.live.problem)}"
        await update.effective_message.reply_text(body, parse_mode=HTML)

    async def cmd_feedback(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/feedback (operators): 👍/👎 counts and the week's worst questions."""
        if not self.is_operator(update):
            await self.refuse(update)
            return
        body = await self.run_sync(report_html, self.feedback)
        await update.effective_message.reply_text(body[:4096], parse_mode=HTML)

    async def cmd_reindex(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/reindex (operators): update the index in the background and report what changed."""
        if not self.is_operator(update):
            await self.refuse(update)
            return
        lang = language(update.effective_user.language_code)
        if self.reindex_task is not None and not self.reindex_task.done():
            await update.effective_message.reply_text(text("reindex_running", lang), parse_mode=HTML)
            return
        self.reindex_state = "running"
        self.reindex_task = context.application.create_task(
            self._reindex(context.bot, update.effective_chat.id, lang), update=update, name="newsqa-reindex"
        )
        await update.effective_message.reply_text(text("reindex_started", lang), parse_mode=HTML)

    def _update_index(self, lock_wait: float = 0.0) -> Any:
        from dataclasses import replace

        from bot.indexing import run_update

        if self._build_embedder is None:
            # Its own model instance: a long build never queues questions behind the search embedder.
            self._build_embedder = self.settings.embedder()
        report = run_update(self.settings, self._build_embedder,
                            replace(self.settings.build_options(), lock_wait_seconds=lock_wait))
        self.live.refresh()  # load the new version here, not in the next question
        return report

    async def _reindex(self, bot: Any, chat_id: int, lang: str) -> None:
        started = time.monotonic()
        try:
            # Not the search pool: questions keep being answered while this runs.
            report = await asyncio.to_thread(self._update_index)
        except NewsqaError as exc:
            self.reindex_state = f"failed: {exc}"
            await bot.send_message(chat_id, text("reindex_failed", lang, error=html.escape(str(exc), quote=False)),
                                   parse_mode=HTML)
            return
        except Exception:
            log.exception("reindex failed")
            self.reindex_state = "failed (see log)"
            await bot.send_message(chat_id, text("reindex_failed", lang, error=text("error", lang)), parse_mode=HTML)
            return
        info = await self.run_sync(self.search.corpus)
        body = report_message(report, info, lang, "reindex_done")
        self.reindex_state = f"{report.summary()} in {time.monotonic() - started:.1f}s; now {info.version}"
        log.info("reindex finished: %s", self.reindex_state)
        await bot.send_message(chat_id, body, parse_mode=HTML)

    # --- questions ----------------------------------------------------------------------
    async def on_private_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A question in a private chat."""
        await self.answer_question(update, context, update.effective_message.text or "", reply=False)

    async def on_group_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """In groups, only messages that mention the bot or reply to it are questions."""
        question = addressed_question(update.effective_message, context.bot.username, context.bot.id)
        if question is not None:
            await self.answer_question(update, context, question, reply=True)

    async def on_non_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Stickers, photos, voice… in private: say that only text questions work."""
        lang = language(update.effective_user.language_code if update.effective_user else None)
        await update.effective_message.reply_text(text("text_only", lang), parse_mode=HTML)

    async def answer_question(self, update: Update, context: ContextTypes.DEFAULT_TYPE, question: str,
                              reply: bool) -> None:
        """Limit, search off the loop with a typing indicator, send the first page (or an honest no-answer)."""
        message = update.effective_message
        user = update.effective_user
        lang = language(user.language_code if user else None)
        question = " ".join(question.split())
        if not question:
            return
        reply_to = ReplyParameters(message.message_id, allow_sending_without_reply=True) if reply else None
        if len(question) > MAX_QUESTION_CHARS:
            await context.bot.send_message(message.chat_id, text("too_long", lang, length=len(question),
                                           limit=MAX_QUESTION_CHARS), parse_mode=HTML, reply_parameters=reply_to)
            return
        allowed, warn, wait = self.limiter.check(user.id if user else message.chat_id)
        if not allowed:
            self.stats.limited += 1
            if warn:
                await context.bot.send_message(message.chat_id, text("too_fast", lang, seconds=wait),
                                               parse_mode=HTML, reply_parameters=reply_to)
            return
        self.stats.questions += 1
        self.stats.in_flight += 1
        started = time.perf_counter()
        try:
            try:
                result: PageResult = await self.with_typing(
                    context.bot, message.chat_id, self.ask_in_chat(message.chat_id, question, lang)
                )
            except FilterError as exc:
                self.stats.no_answer += 1
                why = text("bad_outlet" if exc.kind == "outlet" else "bad_date", lang,
                           value=html.escape(exc.value, quote=False))
                await context.bot.send_message(message.chat_id, why, parse_mode=HTML, reply_parameters=reply_to)
                return
            if result.html is None:
                self.stats.no_answer += 1
                if result.declined == "content-free":
                    body, markup = text("no_question", lang, example=text("example", lang)), None
                else:
                    body, markup = text("no_answer", lang), None
                if result.note:
                    body = f"{result.note}\n\n{body}"
            else:
                self.stats.answered += 1
                body, markup = result.html, result.markup
            await context.bot.send_message(
                message.chat_id, body, parse_mode=HTML, reply_markup=markup, link_preview_options=NO_PREVIEW,
                reply_parameters=reply_to,
            )
            self.stats.latencies.append(time.perf_counter() - started)
        finally:
            self.stats.in_flight -= 1

    async def ask_in_chat(self, chat_id: int, question: str, lang: str) -> PageResult:
        """Filters said in the message, the chat's follow-up context, the first page; then remember the exchange."""
        ask = await self.run_sync(self._chat_ask, chat_id, question)
        plain = ask.filters is None and not ask.followup
        result = await self.page(ask.question if plain else ask, lang, 0)  # a plain question goes as text, as before
        if result.declined != "content-free":
            await self.run_sync(self.conversations.answered, chat_id, ask, result.articles, result.html is not None)
        return result

    def _chat_ask(self, chat_id: int, question: str) -> Ask:
        """The message read as a search: filter words taken off, the chat's context attached when it follows up."""
        parsed = parse(question, lambda: [o.name for o in self.search.outlets()])
        return self.conversations.ask(chat_id, parsed.question, parsed.filters)

    # --- buttons ------------------------------------------------------------------------
    async def on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """'More results' pages through the same question; 📄 sends the whole article; 👍/👎 vote on the answer."""
        query = update.callback_query
        lang = language(query.from_user.language_code if query.from_user else None)
        data = decode(query.data)
        if data is None:
            await query.answer(text("expired", lang), show_alert=True)
            return
        if data.kind == VOTE:  # a vote runs no search: not counted against the question limit
            await self._vote(query, lang, data.key, data.offset)
            return
        allowed, _, wait = self.limiter.check(query.from_user.id)
        if not allowed:
            self.stats.limited += 1
            await query.answer(text("too_fast", lang, seconds=wait), show_alert=True)
            return
        if data.kind == QUESTION:
            await self._more(query, context, lang, data.key, data.offset)
        elif data.kind == ARTICLE:
            await self._article(query, context, lang, data.key)

    async def _more(self, query: Any, context: ContextTypes.DEFAULT_TYPE, lang: str, key: str, offset: int) -> None:
        ask = await self.run_sync(self.search.ask, key)
        if ask is None:
            await query.answer(text("expired", lang), show_alert=True)
            return
        result = await self.page(ask, lang, offset)
        if result.html is None:
            await query.answer(text("no_more", lang))
            return
        message = query.message
        if isinstance(message, Message):
            try:
                await query.edit_message_text(result.html, parse_mode=HTML, reply_markup=result.markup,
                                              link_preview_options=NO_PREVIEW)
            except BadRequest as exc:
                if "not modified" not in str(exc).lower():
                    raise
        else:  # too old to edit: send the page as a new message
            chat_id = message.chat.id if message is not None else query.from_user.id
            await context.bot.send_message(chat_id, result.html, parse_mode=HTML,
                                           reply_markup=result.markup, link_preview_options=NO_PREVIEW)
        await query.answer()

    async def _vote(self, query: Any, lang: str, key: str, value: int) -> None:
        outcome = await self.run_sync(self.votes.cast, key, query.from_user.id, value)
        if outcome is None:
            await query.answer(text("expired", lang), show_alert=True)
            return
        await query.answer(text(f"vote_{outcome}", lang, vote=text("vote_up" if value == UP else "vote_down", lang)))

    async def _article(self, query: Any, context: ContextTypes.DEFAULT_TYPE, lang: str, key: str) -> None:
        article = await self.run_sync(self.search.article, key)
        if article is None:
            await query.answer(text("expired", lang), show_alert=True)
            return
        if article.messages is None:
            await query.answer(text("article_gone", lang), show_alert=True)
            return
        await query.answer()
        chat_id = query.message.chat.id if query.message is not None else query.from_user.id
        for body in article.messages:
            await context.bot.send_message(chat_id, body, parse_mode=HTML, link_preview_options=NO_PREVIEW)

    # --- errors -------------------------------------------------------------------------
    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Log with traceback and tell the user something went wrong; one bad update never stops the bot."""
        if update is None and isinstance(context.error, NetworkError):
            # getUpdates failed (Bot API down or slow): python-telegram-bot retries with backoff on its own.
            log.warning("polling the Bot API failed, retrying: %s", context.error)
            return
        self.stats.errors += 1
        update_id = update.update_id if isinstance(update, Update) else None
        log.error("update %s failed: %r", update_id, context.error, exc_info=context.error)
        if not isinstance(update, Update) or update.effective_chat is None:
            return
        lang = language(update.effective_user.language_code if update.effective_user else None)
        try:
            if update.callback_query is not None:
                await update.callback_query.answer(text("error", lang), show_alert=True)
            else:
                await context.bot.send_message(update.effective_chat.id, text("error", lang), parse_mode=HTML)
        except TelegramError as exc:
            log.warning("could not tell the user about the error: %s", exc)


def addressed_question(message: Message, username: str | None, bot_id: int) -> str | None:
    """The question of a group message that mentions the bot or replies to it; None otherwise."""
    if message is None or not message.text:
        return None
    text_ = message.text
    mentioned = False
    handle = f"@{username}".casefold() if username else None
    for entity, value in sorted(message.parse_entities([MessageEntity.MENTION, MessageEntity.TEXT_MENTION]).items(),
                                key=lambda kv: -kv[0].offset):
        ours = (entity.type == MessageEntity.MENTION and handle is not None and value.casefold() == handle) or (
            entity.type == MessageEntity.TEXT_MENTION and entity.user is not None and entity.user.id == bot_id
        )
        if ours:
            mentioned = True
            if entity.type == MessageEntity.MENTION:
                text_ = text_.replace(value, " ")
    replied = message.reply_to_message is not None and message.reply_to_message.from_user is not None and (
        message.reply_to_message.from_user.id == bot_id
    )
    if not (mentioned or replied):
        return None
    return " ".join(text_.split())


def build_application(
    settings: Any,
    embedder: Embedder | None = None,
    *,
    live: LiveSearcher | None = None,
    store: CallbackStore | None = None,
    updater: bool = True,
) -> Application:
    """The configured Application with the NewsBot handlers attached (nothing is contacted yet)."""
    token = bot_token(settings)
    serial = SerialEmbedder(embedder if embedder is not None else settings.embedder())
    newsbot = NewsBot(settings, serial, live=live, store=store)
    limiter = ResilientRateLimiter(
        overall_max_rate=settings.telegram_messages_per_second,
        max_retries=settings.telegram_retries,
        network_retries=settings.telegram_retries,
    )
    builder: ApplicationBuilder = (
        Application.builder()
        .token(token)
        .rate_limiter(limiter)
        .concurrent_updates(256)
        .post_init(newsbot.post_init)
        .post_stop(newsbot.post_stop)
        .post_shutdown(newsbot.post_shutdown)
    )
    requests = bot_requests(settings.telegram_http, settings.telegram_connections, settings.telegram_timeout)
    if requests is not None:
        builder = builder.request(requests[0]).get_updates_request(requests[1])
    else:
        builder = (
            builder.connection_pool_size(settings.telegram_connections)
            .connect_timeout(settings.telegram_timeout)
            .read_timeout(settings.telegram_timeout)
            .write_timeout(settings.telegram_timeout)
            .pool_timeout(settings.telegram_timeout)
        )
    if settings.telegram_base_url:
        base = settings.telegram_base_url.rstrip("/")
        builder = builder.base_url(base).base_file_url(re.sub(r"/bot$", "/file/bot", base))
    if not updater:
        builder = builder.updater(None)
    app = builder.build()
    newsbot.register(app)
    return app


def serving_embedder(settings: Any) -> Embedder:
    """The bot's question encoder: SERVING_THREADS threads per model unless NEWSQA_THREADS sets them."""
    return settings.embedder(threads=settings.threads or SERVING_THREADS)


def run_bot(settings: Any) -> int:
    """`newsqa bot`: check the token and index, then poll (or serve a webhook) until SIGINT/SIGTERM."""
    token = bot_token(settings)
    redact_token_in_logs(token)
    if settings.telegram_mode == "webhook":
        webhook_options(settings)  # complain about a missing URL now, not after loading the model
    elif settings.telegram_mode != "polling":
        raise BotSetupError(f"TELEGRAM_MODE must be polling or webhook, not {settings.telegram_mode!r}")
    settings.version_store().open_current()  # a missing index is one clear line, before anything starts
    me = asyncio.run(check_token(settings, token))  # fail fast, before the slow model load
    asyncio.set_event_loop(asyncio.new_event_loop())  # asyncio.run closed its loop; run_polling needs one
    if not settings.threads:
        from index.embedder import configure_threads

        # Questions run in parallel worker threads; one intra-op thread each avoids oversubscribing the CPU.
        configure_threads(SERVING_THREADS)
    embedder = serving_embedder(settings)
    encode_questions(embedder, ["warm-up", "تجربة"])  # load the models now (float, and int8 for Arabic), not in the first question
    shared_encoder().encode(["تجربة"])  # and the second encoder (index/second_encoder.py), ~2 s
    app = build_application(settings, embedder)
    print(f"newsqa bot: @{me} answering from {settings.index_dir} ({settings.telegram_mode}); Ctrl-C to stop",
          file=sys.stderr, flush=True)
    try:
        if settings.telegram_mode == "webhook":
            app.run_webhook(**webhook_options(settings), close_loop=False)
        else:
            app.run_polling(allowed_updates=ALLOWED_UPDATES, close_loop=False)
    except InvalidToken:
        raise BotSetupError(_REJECTED) from None
    except NetworkError as exc:
        raise BotSetupError(_unreachable(settings, exc, token)) from None
    print("newsqa bot: stopped; every answer in flight was sent", file=sys.stderr, flush=True)
    return 0


ALLOWED_UPDATES = ["message", "callback_query", "inline_query"]
AUTO_UPDATE_LOCK_WAIT = 600.0  # seconds an automatic update waits for a build already running (/reindex, the CLI)


def webhook_options(settings: Any) -> dict[str, Any]:
    """Arguments of run_webhook/start_webhook: listen locally on the public URL's path, with the secret."""
    from urllib.parse import urlparse

    if not settings.webhook_url:
        raise BotSetupError("TELEGRAM_MODE=webhook needs TELEGRAM_WEBHOOK_URL (the public https URL Telegram posts to)")
    return {
        "listen": settings.webhook_listen,
        "port": settings.webhook_port,
        "url_path": urlparse(settings.webhook_url).path.lstrip("/"),
        "webhook_url": settings.webhook_url,
        "secret_token": settings.webhook_secret.get_secret_value() if settings.webhook_secret else None,
        "allowed_updates": ALLOWED_UPDATES,
    }


_REJECTED = "Telegram rejected TELEGRAM_BOT_TOKEN (unauthorized): check the token BotFather gave you"


def _unreachable(settings: Any, exc: Exception, token: str) -> str:
    where = settings.telegram_base_url or "api.telegram.org"
    return f"cannot reach the Telegram Bot API at {where}: {str(exc).replace(token, '<TELEGRAM_BOT_TOKEN>')}"


async def check_token(settings: Any, token: str) -> str:
    """Ask the Bot API who we are (getMe); a rejected token or unreachable server is a BotSetupError."""
    from telegram import Bot

    kwargs: dict[str, Any] = {}
    if settings.telegram_base_url:
        kwargs["base_url"] = settings.telegram_base_url.rstrip("/")
    bot = Bot(token, **kwargs)
    try:
        me = await bot.get_me()
    except InvalidToken:
        raise BotSetupError(_REJECTED) from None
    except NetworkError as exc:
        raise BotSetupError(_unreachable(settings, exc, token)) from None
    finally:
        with contextlib.suppress(Exception):
            await bot.shutdown()
    return me.username or str(me.id)
