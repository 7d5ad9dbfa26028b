"""Inline mode end to end: `@bot question` → answerInlineQuery with verbatim quotes and source lines, exact payloads
over the fake Bot API on 127.0.0.1, the real index; escaping, the 50-result cap, the cache and the rate limit."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bot.inline import HELP_START, inline_quote, quote_message
from bot.render import MESSAGE_LIMIT, tg_len
from bot.texts import AR, EN, text
from tests.bot_harness import bot_settings, running_bot, visible_text
from tests.fake_bot_api import FakeBotAPI

pytestmark = [pytest.mark.timeout(180), pytest.mark.usefixtures("one_torch_thread")]

FLOOD_Q = "كم قاربا تضرر في فيضانات الميناء؟"
FLOOD_SOURCE = "<i>فيضانات تغمر ميناء الصيادين وتوقف الملاحة ثلاثة أيام — جريدة الساحل — 2022-11-03 09:15</i>"


def expected_results(searcher, question: str, k: int) -> list[dict]:
    """The results the bot should offer: the searcher's hits as InlineQueryResultArticle objects."""
    answer = searcher.answer(question, k=k)
    out = []
    for hit in answer.hits:
        q = inline_quote(hit, answer.version)
        out.append({
            "type": "article",
            "id": q.id,
            "title": q.title,
            "description": q.description,
            "input_message_content": {"message_text": q.html, "parse_mode": "HTML",
                                      "link_preview_options": {"is_disabled": True}},
        })
    return out


async def ask_inline(api: FakeBotAPI, query: str, user_id: int = 301, language_code: str = "ar") -> dict:
    """Type `@bot query` and wait for the bot's answerInlineQuery; returns its parameters."""
    qid = api.push_inline_query(query, user_id=user_id, language_code=language_code)
    [answer] = await api.wait_for("answerInlineQuery", where=lambda r: r.params["inline_query_id"] == qid)
    return answer.params


async def test_inline_query_offers_sourced_verbatim_quotes(api, built_index, tmp_path, embedder, searcher):
    settings = bot_settings(api, built_index, tmp_path)
    async with running_bot(settings, embedder):
        got = await ask_inline(api, FLOOD_Q)
    assert set(got) == {"inline_query_id", "results", "cache_time"}
    assert int(got["cache_time"]) == settings.inline_cache_seconds == 30
    assert got["results"] == expected_results(searcher, FLOOD_Q, settings.inline_results)
    first = got["results"][0]["input_message_content"]["message_text"]
    assert first.startswith("«") and first.endswith("\n" + FLOOD_SOURCE)
    messages = [visible_text(r["input_message_content"]["message_text"]) for r in got["results"]]  # valid HTML
    assert any("أكثر من 120 قاربا تضررت" in m for m in messages[:2])  # the verbatim quote that answers
    assert got["results"][0]["description"] == "فيضانات تغمر ميناء الصيادين وتوقف الملاحة ثلاثة أيام — جريدة الساحل — 2022-11-03 09:15"
    assert len({r["id"] for r in got["results"]}) == len(got["results"])
    assert all(len(r["id"].encode()) <= 64 for r in got["results"])
    assert not api.calls("sendMessage")  # the user sends the chosen quote, not the bot


async def test_inline_quotes_are_escaped(api, built_index, tmp_path, embedder, searcher):
    settings = bot_settings(api, built_index, tmp_path)
    async with running_bot(settings, embedder):
        got = await ask_inline(api, "ما اسم شركة النور والأمل للبرمجيات؟")
    message = got["results"][0]["input_message_content"]["message_text"]
    assert "&lt;النور &amp; الأمل&gt;" in message and "<النور" not in message
    assert "نشرة &lt;التقنية&gt; &amp; الأعمال" in message
    seen = visible_text(message)
    assert "أطلقت شركة <النور & الأمل> للبرمجيات" in seen
    assert "<النور & الأمل>" in got["results"][0]["description"]  # plain text fields are not HTML


async def test_up_to_50_results_and_no_more(api, built_index, tmp_path, embedder, searcher):
    settings = bot_settings(api, built_index, tmp_path, inline_results=50, per_article=0)
    from retrieval.search import Searcher

    wide = Searcher(searcher.version, searcher.embedder, settings.search_config())
    async with running_bot(settings, embedder):
        got = await ask_inline(api, "كيف يستخدم داعش الانترنت؟")
    expected = expected_results(wide, "كيف يستخدم داعش الانترنت؟", 50)
    assert got["results"] == expected and 10 < len(expected) <= 50
    for bad in (0, 51):
        with pytest.raises(ValidationError, match="NEWSQA_INLINE_RESULTS must be 1 to 50"):
            bot_settings(api, built_index, tmp_path, inline_results=bad)


async def test_cache_serves_the_same_question_without_a_new_search(api, built_index, tmp_path, embedder, searcher):
    settings = bot_settings(api, built_index, tmp_path, user_questions_per_minute=2)
    async with running_bot(settings, embedder) as newsbot:
        searches: list[str] = []
        real = newsbot.inline.search.search

        def counting(question: str):
            searches.append(question)
            return real(question)

        newsbot.inline.search.search = counting
        one = await ask_inline(api, FLOOD_Q, user_id=311)
        two = await ask_inline(api, "  كم قاربا تضرر في  فيضانات الميناء؟ ", user_id=312)  # same, spaced otherwise
        assert searches == [FLOOD_Q] and two["results"] == one["results"]
        await ask_inline(api, "ما قدرة محطة الطاقة الشمسية؟", user_id=311)
        limited = await ask_inline(api, "ما نسبة التضخم في نيسان؟", user_id=311)  # third search in a minute
        cached = await ask_inline(api, FLOOD_Q, user_id=311)  # from the cache: no search, so no limit
        other = await ask_inline(api, "ما نسبة التضخم في نيسان؟", user_id=313, language_code="en")
    assert limited["results"] == [] and limited["is_personal"] in (True, "true") and int(limited["cache_time"]) == 0
    assert limited["button"]["start_parameter"] == HELP_START
    assert limited["button"]["text"] == text("inline_too_fast", AR, seconds=limited["button"]["text"].split()[1])
    assert cached["results"] == one["results"]
    assert other["results"] and len(searches) == 3  # other users are unaffected


async def test_empty_unanswerable_and_wordless_queries_get_a_button(api, built_index, tmp_path, embedder):
    settings = bot_settings(api, built_index, tmp_path)
    async with running_bot(settings, embedder):
        empty = await ask_inline(api, "   ")
        nothing = await ask_inline(api, "How tall is Mount Everest?", language_code="en")
        wordless = await ask_inline(api, "؟؟؟ 🙂")
    assert empty == {"inline_query_id": empty["inline_query_id"], "results": [], "cache_time": "30",
                     "button": {"text": text("inline_help", AR), "start_parameter": HELP_START}}
    assert nothing["results"] == [] and nothing["button"]["text"] == text("inline_no_answer", EN)
    assert wordless["results"] == [] and wordless["button"]["text"] == text("inline_no_question", AR)


def test_an_overlong_quote_is_cut_to_one_message(searcher):
    from dataclasses import replace

    from retrieval.types import Quote

    hit = searcher.answer(FLOOD_Q, k=1).hits[0]
    huge = replace(hit, quote=Quote("<&>" * 3000, 0, 9000))
    body = quote_message(huge)
    assert tg_len(body) <= MESSAGE_LIMIT and body.endswith(FLOOD_SOURCE)
    assert visible_text(body).startswith("«<&><&>") and "…»" in body
