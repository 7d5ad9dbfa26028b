"""The real bot Application end to end against the fake Bot API on 127.0.0.1, over the real shared index."""

from __future__ import annotations

import asyncio
import logging
import re
import time

import pytest

from bot.render import MESSAGE_LIMIT, article_messages, render_page, tg_len
from bot.texts import AR, EN, text
from index.embedder import encode_questions
from index.second_encoder import shared_encoder
from retrieval.search import Searcher
from retrieval.types import Source
from tests.bot_harness import OPERATOR_ID, bot_settings, running_bot, visible_text
from tests.fake_bot_api import BOT_USERNAME

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("one_torch_thread")]

FLOOD_Q = "كم قاربا تضرر في فيضانات الميناء؟"
FLOOD_SOURCE = "<i>فيضانات تغمر ميناء الصيادين وتوقف الملاحة ثلاثة أيام — جريدة الساحل — 2022-11-03 09:15</i>"
CALLBACK_RE = re.compile(r"^(m:[A-Za-z0-9_-]{12}:\d+|a:[A-Za-z0-9_-]{12}|v:[A-Za-z0-9_-]{12}:-?1)$")


def expected_page(searcher: Searcher, question: str, lang: str, offset: int = 0, k: int = 5) -> str:
    """What the bot should send for a question: the searcher's hits rendered as one page."""
    answer = searcher.answer(question, k=k + 1, offset=offset)
    return render_page(answer.hits[:k], lang, offset, question if offset else None).html


def buttons(request) -> list[dict]:
    return [b for row in request.markup["inline_keyboard"] for b in row]


async def test_start_and_help_explain_corpus_in_arabic_and_english(api, settings, embedder, searcher):
    async with running_bot(settings, embedder):
        api.push_message("/start", user_id=11, language_code="ar")
        api.push_message("/help", user_id=12, language_code="en")
        api.push_message("/help", user_id=13, language_code=None)
        sent = await api.wait_for("sendMessage", 3)
    by_chat = {r.chat_id: r for r in sent}
    facts = dict(articles=6, outlets=5, date_min="2014-12-18", date_max="2024-03-01",
                 mention=f"@{BOT_USERNAME}")
    assert by_chat[11].text == text("help", AR, example=text("example", AR), **facts)
    assert by_chat[12].text == text("help", EN, example=text("example", EN), **facts)
    assert by_chat[13].text == by_chat[11].text  # no language given: Arabic
    assert "I currently know <b>6</b> articles from <b>5</b> outlets, from 2014-12-18 to 2024-03-01" in by_chat[12].text
    assert "أعرف الآن <b>6</b> مقالا" in by_chat[11].text
    for r in sent:
        assert r.params["parse_mode"] == "HTML"
        visible_text(r.text)
    commands = api.calls("setMyCommands")
    assert {c.params.get("language_code") for c in commands} == {None, "en"}


async def test_arabic_question_gets_quotes_sources_highlights_and_buttons(api, settings, embedder, searcher):
    async with running_bot(settings, embedder) as newsbot:
        assert newsbot.live._searcher is not None  # the index was loaded at start-up, not by the first question
        api.push_message(FLOOD_Q, user_id=21)
        [answer] = await api.wait_for("sendMessage")
    assert answer.chat_id == 21 and answer.params["parse_mode"] == "HTML"
    assert answer.text == expected_page(searcher, FLOOD_Q, AR)
    assert answer.text.startswith("<b>1.</b> «")
    assert FLOOD_SOURCE in answer.text
    assert "<b>الفيضانات</b>" in answer.text and "<b>قاربا</b>" in answer.text  # matched words highlighted
    assert "120 قاربا" in visible_text(answer.text)  # the verbatim quote that answers
    assert answer.params["link_preview_options"] == {"is_disabled": True}
    # one 📄 per quote, 👍/👎, and "more" only when further relevant quotes exist; callback data compact
    bs = buttons(answer)
    n_quotes = answer.text.count("</b> «")
    more = [text("more", AR)] if len(searcher.answer(FLOOD_Q, k=6).hits) > 5 else []
    assert [b["text"] for b in bs] == [f"📄 {i}" for i in range(1, n_quotes + 1)] + ["👍", "👎"] + more
    for b in bs:
        assert CALLBACK_RE.match(b["callback_data"]) and len(b["callback_data"].encode()) <= 64


async def test_english_question_from_english_user(api, settings, embedder, searcher):
    q = "How many boats were damaged when the harbour flooded?"
    async with running_bot(settings, embedder):
        api.push_message(q, user_id=22, language_code="en")
        [answer] = await api.wait_for("sendMessage")
    assert answer.text == expected_page(searcher, q, EN)
    assert FLOOD_SOURCE in answer.text.split("\n\n")[0]  # the flood article comes first
    assert buttons(answer)[0]["text"] == "📄 1"


async def test_the_httpx_client_answers_the_same_as_aiohttp(api, built_index, tmp_path, embedder, searcher):
    from bot.http import AiohttpRequest
    from bot.telegram import build_application

    pages = {}
    for client, user in (("aiohttp", 24), ("httpx", 25)):
        settings = bot_settings(api, built_index, tmp_path / client, telegram_http=client)
        (tmp_path / client).mkdir()
        app = build_application(settings, embedder, updater=False)
        assert isinstance(app.bot.request, AiohttpRequest) == (client == "aiohttp")
        async with running_bot(settings, embedder):
            api.push_message(FLOOD_Q, user_id=user)
            [answer] = await api.wait_for("sendMessage", where=lambda r, u=user: r.chat_id == u)
        pages[client] = answer.text
    assert pages["aiohttp"] == pages["httpx"] == expected_page(searcher, FLOOD_Q, AR)


async def test_quotes_and_sources_with_html_characters_are_escaped(api, settings, embedder, searcher):
    q = "ما اسم شركة النور والأمل للبرمجيات؟"
    async with running_bot(settings, embedder):
        api.push_message(q, user_id=23)
        [answer] = await api.wait_for("sendMessage")
    first = answer.text.split("\n\n")[0]
    assert "&lt;<b>النور</b> &amp; <b>الأمل</b>&gt;" in first  # quote: escaped, highlights still bold
    assert "<i>شركة &lt;النور &amp; الأمل&gt; للبرمجيات تطلق تطبيقا لتعليم الأطفال — نشرة &lt;التقنية&gt; &amp; الأعمال" in first
    seen = visible_text(answer.text)  # parses as Telegram HTML: no stray <, > or &
    assert "أطلقت شركة <النور & الأمل> للبرمجيات" in seen
    assert "شركة <النور & الأمل> للبرمجيات تطلق تطبيقا لتعليم الأطفال — نشرة <التقنية> & الأعمال — 2024-02-20 11:00" in seen
    assert "<النور" not in answer.text and "& " not in answer.text


async def test_no_answer_is_honest_and_suggests_rephrasing(api, settings, embedder):
    async with running_bot(settings, embedder):
        api.push_message("ما هي عاصمة منغوليا؟", user_id=24)
        api.push_message("How tall is Mount Everest?", user_id=25, language_code="en")
        sent = await api.wait_for("sendMessage", 2)
    by_chat = {r.chat_id: r for r in sent}
    assert by_chat[24].text == text("no_answer", AR) and by_chat[24].markup is None
    assert by_chat[25].text == text("no_answer", EN)
    assert "rephras" in by_chat[25].text


async def test_a_message_with_nothing_to_search_for_asks_for_words(api, settings, embedder):
    async with running_bot(settings, embedder):
        api.push_message("؟؟؟ 🙂🔥", user_id=26)
        api.push_message("'; DROP TABLE articles; --", user_id=27, language_code="en")
        sent = await api.wait_for("sendMessage", 2)
    by_chat = {r.chat_id: r for r in sent}
    assert by_chat[26].text == text("no_question", AR, example=text("example", AR)) and by_chat[26].markup is None
    assert by_chat[27].text == text("no_question", EN, example=text("example", EN))


async def test_more_results_edits_the_message_and_survives_a_restart(api, built_index, tmp_path, embedder, searcher):
    settings = bot_settings(api, built_index, tmp_path, top_k=2, per_article=0)
    searcher = Searcher(searcher.version, searcher.embedder, settings.search_config())
    q = "كيف يستخدم داعش الانترنت؟"
    async with running_bot(settings, embedder):
        api.push_message(q, user_id=31)
        [first] = await api.wait_for("sendMessage")
        assert first.text == expected_page(searcher, q, AR, k=2)
        more = buttons(first)[-1]
        assert more["text"] == text("more", AR) and more["callback_data"].endswith(":2")
        qid = api.push_callback(more["callback_data"], api.message_object(first), user_id=31)
        [edit] = await api.wait_for("editMessageText")
        [ack] = await api.wait_for("answerCallbackQuery")
    assert ack.params == {"callback_query_id": qid}  # the spinner stops, no alert
    assert edit.params["parse_mode"] == "HTML" and edit.params["link_preview_options"] == {"is_disabled": True}
    assert int(edit.params["message_id"]) == api.message_object(first)["message_id"] and edit.chat_id == 31
    assert edit.text == expected_page(searcher, q, AR, offset=2, k=2)
    assert edit.text.startswith(f"نتائج 3–4 عن: <i>{q}</i>\n\n<b>3.</b> «")
    assert [b["text"] for b in buttons(edit)] == ["📄 3", "📄 4", "👍", "👎", text("previous", AR), text("more", AR)]
    next_page = buttons(edit)[-1]["callback_data"]

    # A new process (new Application, new searcher) still understands the old message's buttons.
    async with running_bot(settings, embedder):
        api.push_callback(next_page, api.message_object(edit), user_id=31)
        edits = await api.wait_for("editMessageText", 2)
    assert edits[-1].text == expected_page(searcher, q, AR, offset=4, k=2)
    assert edits[-1].text.startswith("نتائج 5–6")


async def test_more_results_at_the_end_and_unknown_buttons(api, built_index, tmp_path, embedder):
    settings = bot_settings(api, built_index, tmp_path, top_k=2, per_article=0)
    async with running_bot(settings, embedder):
        api.push_message("كيف يستخدم داعش الانترنت؟", user_id=32)
        [first] = await api.wait_for("sendMessage")
        key = buttons(first)[-1]["callback_data"].split(":")[1]
        api.push_callback(f"m:{key}:400", api.message_object(first), user_id=32)
        api.push_callback("m:AAAAAAAAAAAA:5", api.message_object(first), user_id=32)
        api.push_callback("garbage", api.message_object(first), user_id=32)
        answers = await api.wait_for("answerCallbackQuery", 3)
        # still alive after odd buttons
        api.push_message("كيف يستخدم داعش الانترنت؟", user_id=32)
        await api.wait_for("sendMessage", 2)
    by_text = {a.params.get("text"): a.params for a in answers}
    assert sorted(a.params.get("text") for a in answers) == sorted(
        [text("no_more", AR), text("expired", AR), text("expired", AR)]
    )
    assert "show_alert" not in by_text[text("no_more", AR)]
    assert by_text[text("expired", AR)]["show_alert"] in ("true", True)
    assert not api.calls("editMessageText")


async def test_full_article_is_split_at_paragraphs_within_4096(api, settings, embedder, searcher):
    q = "من هو شامي ويتنس؟"
    version = searcher.version
    record = next(version.article(r) for r in range(version.n_articles) if version.article(r).source == "شبكة النبأ")
    spans = version.paragraphs(record.row)
    paragraphs = [record.body[p.start : p.end] for p in spans]
    expected = article_messages(record.title, Source(record.id, record.title, record.source, record.date, record.url),
                                [(p.heading, record.body[p.start : p.end]) for p in spans])
    async with running_bot(settings, embedder):
        api.push_message(q, user_id=41)
        [answer] = await api.wait_for("sendMessage")
        doc = buttons(answer)[0]
        assert doc["text"] == "📄 1" and doc["callback_data"].startswith("a:")
        api.push_callback(doc["callback_data"], api.message_object(answer), user_id=41)
        sent = await api.wait_for("sendMessage", 1 + len(expected))
        await asyncio.sleep(0.3)
    parts = api.successes("sendMessage", chat_id=41)[1:]
    assert [p.text for p in parts] == expected and [p.text for p in sent[1:]] == expected
    assert len(parts) >= 3, "a 17,000-character article needs several messages"
    assert all(tg_len(p.text) <= MESSAGE_LIMIT for p in parts)
    assert all(p.params["parse_mode"] == "HTML" for p in parts)
    assert parts[0].text.startswith(f"<b>{record.title}</b>\n<i>شبكة النبأ — 2014-12-18 07:28</i>\n\n")
    seen = [visible_text(p.text) for p in parts]
    # every paragraph is sent verbatim, in order, and never cut across two messages
    blocks = [b for s in seen for b in s.split("\n\n")]
    assert [b for b in blocks if b in paragraphs] == paragraphs
    assert sum(len(p) for p in paragraphs) > 3 * MESSAGE_LIMIT
    assert api.calls("answerCallbackQuery")[0].at <= parts[0].at


async def test_group_answers_only_when_mentioned_or_replied_to(api, settings, embedder, searcher):
    group = -100500
    async with running_bot(settings, embedder):
        api.push_message(FLOOD_Q, user_id=51, chat_id=group, chat_type="supergroup")
        mention = f"@{BOT_USERNAME} "
        asked = api.push_message(mention + FLOOD_Q, user_id=52, chat_id=group, chat_type="supergroup",
                                 entities=[{"type": "mention", "offset": 0, "length": len(mention) - 1}])
        [answer] = await api.wait_for("sendMessage")
        replied = api.push_message("ما قدرة محطة الطاقة الشمسية؟", user_id=53, chat_id=group, chat_type="supergroup",
                                   reply_to=api.message_object(answer))
        other = api.push_message("ما قدرة محطة الطاقة الشمسية؟", user_id=54, chat_id=group, chat_type="supergroup",
                                 reply_to={**asked, "message_id": 77})
        api.push_message("@someone_else " + FLOOD_Q, user_id=55, chat_id=group, chat_type="supergroup",
                         entities=[{"type": "mention", "offset": 0, "length": 13}])
        api.push_message(f"/help@{BOT_USERNAME}", user_id=56, chat_id=group, chat_type="supergroup")
        sent = await api.wait_for("sendMessage", 3)
        await asyncio.sleep(0.5)
    sent = api.successes("sendMessage")
    assert len(sent) == 3, [s.text[:40] for s in sent]
    assert sent[0].text == expected_page(searcher, FLOOD_Q, AR)
    assert sent[0].params["reply_parameters"]["message_id"] == asked["message_id"]
    to_reply = [s for s in sent if s.params.get("reply_parameters", {}).get("message_id") == replied["message_id"]]
    assert len(to_reply) == 1 and "محطة" in to_reply[0].text
    assert not [s for s in sent if s.params.get("reply_parameters", {}).get("message_id") == other["message_id"]]
    assert any(s.text.startswith("<b>مرحبا!</b>") for s in sent)


async def test_429_retry_after_is_honoured_then_sent(api, settings, embedder, searcher):
    api.fail("sendMessage", 429, retry_after=1)
    async with running_bot(settings, embedder):
        api.push_message(FLOOD_Q, user_id=61)
        await api.wait_for("sendMessage")
    calls = api.calls("sendMessage")
    assert [c.status for c in calls] == [429, 200]
    assert calls[1].at - calls[0].at >= 1.0  # waited retry_after before sending again
    assert calls[0].params == calls[1].params
    assert calls[1].text == expected_page(searcher, FLOOD_Q, AR)


async def test_5xx_and_timeouts_are_retried_then_sent_once(api, built_index, tmp_path, embedder):
    settings = bot_settings(api, built_index, tmp_path, telegram_timeout=1.0)
    api.fail("sendMessage", 500, times=2)
    async with running_bot(settings, embedder):
        api.push_message(FLOOD_Q, user_id=62)
        await api.wait_for("sendMessage")
        assert [c.status for c in api.calls("sendMessage")] == [500, 500, 200]
        api.delay("sendMessage", 2.5)  # longer than the 1 s read timeout: the bot gives up and retries
        api.push_message(FLOOD_Q, user_id=63)
        await api.wait_for("sendMessage", 2, where=lambda r: r.chat_id == 63)
    to_63 = api.calls("sendMessage", chat_id=63)
    assert len(to_63) == 2 and to_63[1].at - to_63[0].at >= 0.9
    assert to_63[0].text == to_63[1].text


async def test_polling_survives_bot_api_outage(api, settings, embedder, caplog):
    caplog.set_level(logging.WARNING, logger="newsqa.bot")
    api.fail("getUpdates", 502, times=2)
    async with running_bot(settings, embedder):
        api.push_message(FLOOD_Q, user_id=68)
        [answer] = await api.wait_for("sendMessage", timeout=30)
    assert [c.status for c in api.calls("getUpdates")][:3] == [502, 502, 200]
    assert answer.text.startswith("<b>1.</b>")
    warnings = [r for r in caplog.records if r.getMessage().startswith("polling the Bot API failed")]
    assert len(warnings) == 2 and all(r.exc_info is None for r in warnings)  # no traceback per retry


async def test_bounded_retries_then_error_handler_tells_user_and_bot_lives_on(api, settings, embedder, caplog):
    caplog.set_level(logging.ERROR, logger="newsqa.bot")
    api.fail("sendMessage", 502, times=4)  # first try + 3 retries all fail
    async with running_bot(settings, embedder):
        api.push_message(FLOOD_Q, user_id=64)
        await api.wait_for("sendMessage")  # the error message, after the answer gave up
        api.push_message(FLOOD_Q, user_id=64)
        await api.wait_for("sendMessage", 2)
    calls = api.calls("sendMessage")
    assert [c.status for c in calls] == [502, 502, 502, 502, 200, 200]
    assert calls[4].text == text("error", AR)
    assert calls[5].text.startswith("<b>1.</b>")
    failures = [r for r in caplog.records if r.getMessage().startswith("update ")]
    assert failures and failures[0].exc_info is not None  # logged with its traceback


async def test_a_failing_handler_is_reported_and_others_still_answered(api, settings, embedder, caplog):
    caplog.set_level(logging.ERROR, logger="newsqa.bot")
    async with running_bot(settings, embedder) as newsbot:
        real_page = newsbot.search.page

        def page(question, lang, offset=0, qvec=None, second_qvec=None):
            if question == "boom":
                raise RuntimeError("index exploded")
            return real_page(question, lang, offset, qvec, second_qvec)

        newsbot.search.page = page
        api.push_message("boom", user_id=65, language_code="en")
        api.push_message(FLOOD_Q, user_id=66)
        api.push_raw_message({"sticker": {"file_id": "x", "file_unique_id": "y", "width": 1, "height": 1,
                                          "is_animated": False, "is_video": False, "type": "regular"}}, user_id=67)
        sent = await api.wait_for("sendMessage", 3)
    by_chat = {s.chat_id: s.text for s in sent}
    assert by_chat[65] == text("error", EN)
    assert by_chat[66].startswith("<b>1.</b>")
    assert by_chat[67] == text("text_only", AR)
    [record] = [r for r in caplog.records if "index exploded" in r.getMessage()]
    assert record.exc_info and "RuntimeError" in caplog.text and "Traceback" in caplog.text


async def test_per_user_limit_replies_politely_once(api, built_index, tmp_path, embedder):
    settings = bot_settings(api, built_index, tmp_path, user_questions_per_minute=2)
    async with running_bot(settings, embedder):
        for _ in range(4):
            api.push_message(FLOOD_Q, user_id=71)
        await api.wait_for("sendMessage", 3)
        api.push_message(FLOOD_Q, user_id=72)
        await api.wait_for("sendMessage", 4)
        await asyncio.sleep(0.3)
    to_71 = [s.text for s in api.successes("sendMessage", chat_id=71)]
    assert len(to_71) == 3
    assert sum(t.startswith("<b>1.</b>") for t in to_71) == 2
    polite = [t for t in to_71 if not t.startswith("<b>1.</b>")]
    assert len(polite) == 1 and re.fullmatch(text("too_fast", AR, seconds=r"\d+").replace("(", r"\(").replace(")", r"\)")
                                              .replace("?", r"\?"), polite[0])
    assert len(api.successes("sendMessage", chat_id=72)) == 1  # other users are unaffected


async def test_slow_question_does_not_block_others(api, settings, embedder):
    async with running_bot(settings, embedder) as newsbot:
        real_page = newsbot.search.page

        def page(question, lang, offset=0, qvec=None, second_qvec=None):
            if question == "بطيء":
                time.sleep(3)  # a CPU-bound search that takes long, in its worker thread
            return real_page(question, lang, offset, qvec, second_qvec)

        newsbot.search.page = page
        api.push_message("بطيء", user_id=81)
        await api.wait_for("sendChatAction", where=lambda r: r.chat_id == 81)
        api.push_message("/help", user_id=82)
        api.push_message(FLOOD_Q, user_id=83)
        await api.wait_for("sendMessage", 2, where=lambda r: r.chat_id in (82, 83))
        await api.wait_for("sendMessage", where=lambda r: r.chat_id == 81)
    # asked later, answered first: the slow search held neither the event loop nor the other questions
    order = [s.chat_id for s in api.successes("sendMessage")]
    assert sorted(order[:2]) == [82, 83] and order[2] == 81


async def test_burst_of_200_updates_from_50_users_all_answered_exactly_once(api, settings, embedder, searcher):
    questions = [
        FLOOD_Q,
        "كم سعر الفائدة الذي أعلنه البنك المركزي؟",
        "ما قدرة محطة الطاقة الشمسية؟",
        "كيف يستخدم داعش الانترنت؟",
        "ما اسم شركة النور والأمل للبرمجيات؟",
        "ما هي عاصمة منغوليا؟",
        "ما نسبة التضخم في نيسان؟",
        "من هو شامي ويتنس؟",
    ]
    expected = {}
    for q in questions:
        page = expected_page(searcher, q, AR)
        expected[q] = page or text("no_answer", AR)
    asked: dict[int, list[str]] = {}
    async with running_bot(settings, embedder) as newsbot:
        for i in range(200):
            user = 1000 + i % 50
            q = questions[(i + i // 50) % len(questions)]
            asked.setdefault(user, []).append(q)
            api.push_message(q, user_id=user)
        await api.wait_for("sendMessage", 200, timeout=90)
        await asyncio.sleep(1.0)  # anything extra would show up now
    sent = api.successes("sendMessage")
    assert len(sent) == 200
    for user, qs in asked.items():
        got = sorted(s.text for s in sent if s.chat_id == user)
        assert got == sorted(expected[q] for q in qs), user
    assert all(s.status == 200 for s in api.calls("sendMessage"))
    batcher = newsbot.batcher
    # 8 texts asked 200 times: a text asked again while queued joins its encode, or later reads the cache
    assert batcher.encoded + batcher.joined + batcher.cache_hits == 200 and batcher.encoded <= 16


async def test_operator_commands_refused_to_others(api, settings, embedder, built_index):
    before = sorted(p.name for p in (built_index / "versions").iterdir())
    current = (built_index / "CURRENT").read_text()
    async with running_bot(settings, embedder):
        api.push_message("/reindex", user_id=91)
        api.push_message("/stats", user_id=92, language_code="en")
        sent = await api.wait_for("sendMessage", 2)
        await asyncio.sleep(1.0)
    assert {s.chat_id: s.text for s in sent} == {91: text("operators_only", AR), 92: text("operators_only", EN)}
    assert len(api.successes("sendMessage")) == 2
    assert sorted(p.name for p in (built_index / "versions").iterdir()) == before
    assert (built_index / "CURRENT").read_text() == current


async def test_operator_stats(api, settings, embedder):
    async with running_bot(settings, embedder):
        api.push_message(FLOOD_Q, user_id=OPERATOR_ID)
        await api.wait_for("sendMessage")
        api.push_message("/stats", user_id=OPERATOR_ID)
        sent = await api.wait_for("sendMessage", 2)
    stats = sent[1].text
    assert stats.startswith("<b>Index</b> v000001: 6 articles, 47 passages, 5 outlets, 2014-12-18 … 2024-03-01")
    assert "<b>Questions</b> 1: answered 1, no answer 0" in stats
    assert "<b>Latency</b> p50 " in stats


@pytest.fixture
def writable_index(built_index, combined_corpus, tmp_path):
    import shutil

    index_dir = tmp_path / "index"
    shutil.copytree(built_index, index_dir)
    corpus = tmp_path / "corpus"
    shutil.copytree(combined_corpus, corpus)
    return index_dir, corpus


async def test_operator_reindex_runs_in_background_and_switches(api, writable_index, tmp_path, embedder):
    index_dir, corpus = writable_index
    settings = bot_settings(api, index_dir, tmp_path, corpus_dir=corpus)
    (corpus / "zoo-giraffe.txt").write_text(
        "ولادة زرافة نادرة في حديقة الحيوان بالعاصمة\nجريدة الساحل\n2024-06-01 10:00\n"
        "أعلنت حديقة الحيوان في العاصمة ولادة زرافة بيضاء نادرة، وقال مدير الحديقة إن الزرافة الصغيرة "
        "تزن 55 كيلوغراما وإن الزوار سيتمكنون من رؤيتها بعد أسبوعين.\n",
        encoding="utf-8",
    )
    (corpus / "broken.txt").write_text("عنوان فقط\n", encoding="utf-8")
    for i in range(40):  # enough new text that the update takes a while
        (corpus / f"market-{i:02d}.txt").write_text(
            f"تقرير السوق الأسبوعي رقم {i}\nنشرة الأسواق\n2024-07-{1 + i % 28:02d} 09:00\n"
            + f"سجلت أسعار الخضار في السوق المركزي تغيرا بنسبة {i} في المئة خلال الأسبوع رقم {i}، "
            "وقال التجار إن الطلب ارتفع مع بداية الموسم وإن الإمدادات من المزارع الشمالية تحسنت. " * 3 + "\n",
            encoding="utf-8",
        )
    giraffe_q = "كم تزن الزرافة التي ولدت في حديقة الحيوان؟"
    async with running_bot(settings, embedder):
        api.push_message(giraffe_q, user_id=OPERATOR_ID)
        [before] = await api.wait_for("sendMessage")
        assert before.text == text("no_answer", AR)
        api.push_message("/reindex", user_id=OPERATOR_ID)
        await api.wait_for("sendMessage", 2)
        api.push_message(FLOOD_Q, user_id=93)  # asked while the index is being updated
        [during] = await api.wait_for("sendMessage", where=lambda r: r.chat_id == 93)
        done = await api.wait_for("sendMessage", where=lambda r: r.text.startswith("انتهى"), timeout=90)
        api.push_message(giraffe_q, user_id=OPERATOR_ID)
        await api.wait_for("sendMessage", 5)
    to_op = [s.text for s in api.successes("sendMessage", chat_id=OPERATOR_ID)]
    assert to_op[1] == text("reindex_started", AR)
    assert done[0].text.startswith(
        "انتهى تحديث الفهرس: added 41, changed 0, removed 0, unchanged 6, rejected 1.\n"
        "الإصدار الحالي الآن v000002: 47 مقالا"
    )
    assert "broken.txt" in done[0].text
    assert during.text.startswith("<b>1.</b>") and during.at < done[0].at  # answered before the update ended
    assert "<b>55</b>" in to_op[-1] or "55 كيلوغراما" in to_op[-1]
    assert "ولادة زرافة نادرة في حديقة الحيوان بالعاصمة — جريدة الساحل — 2024-06-01 10:00" in to_op[-1]
    assert (index_dir / "CURRENT").read_text().strip() == "v000002"



async def test_webhook_mode_takes_updates_over_http_and_checks_the_secret(api, built_index, tmp_path, embedder,
                                                                          searcher):
    import socket

    import httpx

    from bot.telegram import build_application, webhook_options

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    secret = "s3cret-Value_1"
    settings = bot_settings(api, built_index, tmp_path, telegram_mode="webhook", webhook_port=port,
                            webhook_url=f"http://127.0.0.1:{port}/tg/hook", webhook_secret=secret)
    app = build_application(settings, embedder)
    update = {"update_id": 1, "message": {"message_id": 5, "date": int(time.time()), "text": FLOOD_Q,
                                          "chat": {"id": 301, "type": "private", "first_name": "U"},
                                          "from": {"id": 301, "is_bot": False, "first_name": "U", "language_code": "ar"}}}
    async with app:
        await app.start()
        await app.updater.start_webhook(**webhook_options(settings))
        try:
            async with httpx.AsyncClient() as client:
                bad = await client.post(f"http://127.0.0.1:{port}/tg/hook", json=update,
                                        headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"})
                good = await client.post(f"http://127.0.0.1:{port}/tg/hook", json=update,
                                         headers={"X-Telegram-Bot-Api-Secret-Token": secret})
            [answer] = await api.wait_for("sendMessage")
        finally:
            await app.updater.stop()
            await app.stop()
    assert bad.status_code == 403 and good.status_code == 200
    [hook] = api.calls("setWebhook")
    assert hook.params["url"] == f"http://127.0.0.1:{port}/tg/hook" and hook.params["secret_token"] == secret
    assert hook.params["allowed_updates"] == ["message", "callback_query", "inline_query"]
    assert answer.chat_id == 301 and answer.text == expected_page(searcher, FLOOD_Q, AR)
    assert not api.calls("getUpdates")


async def test_fast_answer_sends_no_typing_indicator(api, built_index, tmp_path, embedder, searcher):
    settings = bot_settings(api, built_index, tmp_path, bot_typing_after=60.0)
    async with running_bot(settings, embedder):
        api.push_message(FLOOD_Q, user_id=25)
        [answer] = await api.wait_for("sendMessage")
        await asyncio.sleep(0.3)  # a late chat action would show up now
    assert answer.text == expected_page(searcher, FLOOD_Q, AR)
    assert api.calls("sendChatAction") == []  # one Bot API request for the answer, none for "typing…"


async def test_slow_answer_shows_typing_before_the_answer(api, built_index, tmp_path, embedder, searcher):
    import threading

    settings = bot_settings(api, built_index, tmp_path, bot_typing_after=0.2)
    release = threading.Event()
    async with running_bot(settings, embedder) as newsbot:
        real_page = newsbot.search.page

        def page(question, lang, offset=0, qvec=None, second_qvec=None):
            release.wait(60)  # the search is slow until the indicator has been seen
            return real_page(question, lang, offset, qvec, second_qvec)

        newsbot.search.page = page
        api.push_message(FLOOD_Q, user_id=26)
        [typing] = await api.wait_for("sendChatAction", where=lambda r: r.chat_id == 26)
        release.set()
        [answer] = await api.wait_for("sendMessage")
    assert typing.params["action"] == "typing" and typing.at <= answer.at
    assert answer.text == expected_page(searcher, FLOOD_Q, AR)


async def test_searches_run_at_most_workers_at_a_time_and_vectors_match_one_by_one(api, built_index, tmp_path,
                                                                                    embedder, searcher):
    import threading

    import numpy as np

    questions = [FLOOD_Q, "كم سعر الفائدة الذي أعلنه البنك المركزي؟", "ما قدرة محطة الطاقة الشمسية؟",
                 "How many boats were damaged when the harbour flooded?"] * 3
    settings = bot_settings(api, built_index, tmp_path, bot_search_workers=2, user_questions_per_minute=0)
    lock = threading.Lock()
    running, most, vectors = 0, 0, []
    async with running_bot(settings, embedder) as newsbot:
        real_page = newsbot.search.page

        def page(question, lang, offset=0, qvec=None, second_qvec=None):
            nonlocal running, most
            with lock:
                running += 1
                most = max(most, running)
                vectors.append((question, qvec, second_qvec))
            try:
                time.sleep(0.05)  # long enough for the others to pile up behind the two workers
                return real_page(question, lang, offset, qvec, second_qvec)
            finally:
                with lock:
                    running -= 1

        newsbot.search.page = page
        for i, q in enumerate(questions):
            api.push_message(q, user_id=3000 + i, language_code="en" if q.isascii() else "ar")
        sent = await api.wait_for("sendMessage", len(questions), timeout=90)
    assert 1 <= most <= 2
    by_chat = {r.chat_id: r.text for r in sent}
    for i, q in enumerate(questions):
        assert by_chat[3000 + i] == expected_page(searcher, q, EN if q.isascii() else AR)
    assert len(vectors) == len(questions)
    for q, qvec, second in vectors:  # each question's vectors from shared batches are the ones it gets on its own
        np.testing.assert_allclose(qvec, encode_questions(embedder, [q])[0], atol=2e-5)
        np.testing.assert_allclose(second, shared_encoder().encode([q])[0], atol=2e-5)
    assert 1 <= newsbot.second_batcher.encoded <= len(questions)  # the search used the batcher's vectors


def test_bot_api_connection_pool_is_the_configured_size(api, built_index, tmp_path, embedder):
    from bot.telegram import build_application

    app = build_application(bot_settings(api, built_index, tmp_path, telegram_connections=4), embedder)
    assert app.bot.request.connections == 4  # answers (aiohttp, the default), not getUpdates
    (tmp_path / "httpx").mkdir()
    app = build_application(bot_settings(api, built_index, tmp_path / "httpx", telegram_connections=4, telegram_http="httpx"), embedder)
    assert app.bot.request._client_kwargs["limits"].max_connections == 4
    assert api.requests == []  # building contacts nothing
