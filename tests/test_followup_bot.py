"""Follow-ups, /new, /sources and filters in the chat, end to end: the real Application against the fake Bot API."""

from __future__ import annotations

import html

import pytest

from bot.asking import Ask
from bot.chatfilters import outlets
from bot.render import render_page
from bot.texts import AR, EN, text
from index.embedder import encode_questions
from retrieval.context import content_words, searched_text
from retrieval.search import Searcher
from retrieval.types import Context, SearchFilters
from tests.bot_harness import running_bot, visible_text
from tests.fake_bot_api import FakeBotAPI

pytestmark = [pytest.mark.timeout(180), pytest.mark.usefixtures("one_torch_thread")]

FLOOD_Q = "كم قاربا تضرر في فيضانات الميناء؟"
FLOOD_EN = "How many boats were damaged when the harbour flooded?"
RATE_Q = "كم سعر الفائدة الذي أعلنه البنك المركزي؟"
SOLAR_Q = "ما قدرة محطة الطاقة الشمسية؟"


def page(searcher: Searcher, ask: Ask, lang: str) -> str:
    """What the bot sends for a search: the searcher's hits as one page, opened by the search's note."""
    answer = searcher.answer(ask.question, k=6, filters=ask.filters, context=ask.context)
    return render_page(answer.hits[:5], lang, 0, None, ask.note_html(lang)).html


def follow(searcher: Searcher, first: str, question: str) -> Ask:
    """The search a follow-up to `first` makes: its content words and the articles its answer quoted."""
    articles = tuple(dict.fromkeys(h.source.article_id for h in searcher.answer(first, k=6).hits[:5]))
    return Ask(question, context=Context(content_words(first), articles), about=first)


async def ask_in_turn(api: FakeBotAPI, user: int, questions: list[str], language_code: str = "ar") -> list:
    """Send each question after the previous answer came back; the answers (recorded sendMessage calls)."""
    out = []
    for q in questions:
        before = len(api.successes("sendMessage", chat_id=user))
        api.push_message(q, user_id=user, language_code=language_code)
        sent = await api.wait_for("sendMessage", before + 1, where=lambda r: r.chat_id == user)
        out.append(sent[before])
    return out


async def texts_in_turn(api: FakeBotAPI, user: int, questions: list[str], language_code: str = "ar") -> list[str]:
    """The texts of ask_in_turn's answers."""
    return [r.text for r in await ask_in_turn(api, user, questions, language_code)]


async def test_arabic_follow_ups_same_article_other_article_and_a_new_topic(api, settings, embedder, searcher):
    same, other = "ومن طالب بالتعويض؟", "وماذا عن الطاقة الشمسية؟"
    async with running_bot(settings, embedder):
        first, a_same, a_other, a_new = await texts_in_turn(api, 501, [FLOOD_Q, same, other, SOLAR_Q])
        [bare] = await texts_in_turn(api, 502, [same])  # the same words in a chat with no earlier question
    assert first == page(searcher, Ask(FLOOD_Q), AR)
    note = f"↩️ قرأته متابعةً لسؤالك: <i>{FLOOD_Q}</i> (/new لموضوع جديد)"
    assert a_same == page(searcher, follow(searcher, FLOOD_Q, same), AR)
    assert a_same.startswith(note + "\n\n<b>1.</b> «")
    assert "رئيس نقابة الصيادين" in visible_text(a_same)  # answered from the previous article
    assert bare == text("no_answer", AR)  # without the context nothing answers it
    # the second follow-up leans on the second question; its answer is in another article, quoted first
    chain = follow(searcher, FLOOD_Q, same)
    result = searcher.answer(same, k=6, context=chain.context)
    second = Ask(other, context=Context(content_words(FLOOD_Q),
                                        tuple(dict.fromkeys(h.source.article_id for h in result.hits[:5]))), about=same)
    assert a_other == page(searcher, second, AR)
    assert a_other.split("\n\n")[1].endswith("— وكالة الأنباء الاقتصادية — 2024-03-01</i>") and "1500 ميغاواط" in a_other
    # a question with a topic of its own starts fresh: no note, the same answer as in a new chat
    assert a_new == page(searcher, Ask(SOLAR_Q), AR) and "↩️" not in a_new


async def test_english_follow_up_says_it_was_read_as_one(api, settings, embedder, searcher):
    q = "And who demanded compensation?"
    async with running_bot(settings, embedder):
        first, answer = await texts_in_turn(api, 503, [FLOOD_EN, q], language_code="en")
    assert first == page(searcher, Ask(FLOOD_EN), EN)
    assert answer == page(searcher, follow(searcher, FLOOD_EN, q), EN)
    assert answer.startswith(f"↩️ Read as a follow-up to: <i>{FLOOD_EN}</i> (/new for a new topic)\n\n<b>1.</b> «")
    assert "رئيس نقابة الصيادين" in visible_text(answer)


async def test_context_expires_and_new_forgets_it(api, settings, embedder, searcher):
    q = "ومن طالب بالتعويض؟"
    async with running_bot(settings, embedder) as newsbot:
        store = newsbot.conversations.store
        real_clock = store.clock
        await texts_in_turn(api, 504, [FLOOD_Q])
        store.clock = lambda: real_clock() + 10 * 60 + 1  # NEWSQA_FOLLOWUP_MINUTES (10) later
        [expired] = await texts_in_turn(api, 504, [q])
        store.clock = real_clock
        await texts_in_turn(api, 505, [FLOOD_Q])
        api.push_message("/new", user_id=505)
        await api.wait_for("sendMessage", 2, where=lambda r: r.chat_id == 505)
        api.push_message(q, user_id=505)
        await api.wait_for("sendMessage", 3, where=lambda r: r.chat_id == 505)
        api.push_message("/new", user_id=505, language_code="en")
        sent = await api.wait_for("sendMessage", 4, where=lambda r: r.chat_id == 505)
    assert expired == text("no_answer", AR)  # read on its own: the flood question had expired
    assert [s.text for s in sent[1:]] == [text("new_done", AR), text("no_answer", AR), text("new_nothing", EN)]


async def test_context_survives_a_restart(api, settings, embedder, searcher):
    q = "ومن طالب بالتعويض؟"
    async with running_bot(settings, embedder):
        await texts_in_turn(api, 506, [FLOOD_Q])
    async with running_bot(settings, embedder):  # a new process: the context comes from bot-state.sqlite
        api.push_message(q, user_id=506)
        sent = await api.wait_for("sendMessage", 2, where=lambda r: r.chat_id == 506)
    assert sent[-1].text == page(searcher, follow(searcher, FLOOD_Q, q), AR)
    assert sent[-1].text.startswith(f"↩️ قرأته متابعةً لسؤالك: <i>{FLOOD_Q}</i>")


async def test_two_chats_never_share_their_context(api, settings, embedder, searcher):
    q = "وكم بلغ ذلك؟"
    async with running_bot(settings, embedder):
        api.push_message(FLOOD_Q, user_id=507)
        api.push_message(RATE_Q, user_id=508)
        await api.wait_for("sendMessage", 2)
        api.push_message(q, user_id=507)
        api.push_message(q, user_id=508)
        sent = await api.wait_for("sendMessage", 4)
    by_chat = {s.chat_id: s.text for s in sent[2:]}
    assert by_chat[507] == page(searcher, follow(searcher, FLOOD_Q, q), AR)
    assert by_chat[508] == page(searcher, follow(searcher, RATE_Q, q), AR)
    assert FLOOD_Q in by_chat[507].split("\n")[0] and RATE_Q not in by_chat[507]
    assert RATE_Q in by_chat[508].split("\n")[0] and FLOOD_Q not in by_chat[508]
    assert "جريدة الساحل" in by_chat[507].split("\n\n")[1] and "وكالة الأنباء الاقتصادية" in by_chat[508].split("\n\n")[1]


async def test_sources_and_filters_said_in_the_message(api, settings, embedder, searcher):
    version = searcher.version
    async with running_bot(settings, embedder):
        api.push_message("/sources", user_id=509)
        [listing] = await api.wait_for("sendMessage", where=lambda r: r.chat_id == 509)
        answers = await texts_in_turn(api, 510, ["من جريدة الساحل: كم قاربا تضرر؟", "في 2014: كم قاربا تضرر في فيضانات الميناء؟",
                                               "من جريدة الأيام: كم قاربا تضرر؟", "في 2014-13-40: سؤال"])
    lines = listing.text.split("\n")
    assert lines[0] == "<b>المصادر</b> (5 مصدرا، 6 مقالا):"
    assert "• جريدة الساحل: 1 مقالا، 2022-11-03 – 2022-11-03" in lines
    assert "• وكالة الأنباء الاقتصادية: 2 مقالا، 2023-05-10 – 2024-03-01" in lines
    assert "• نشرة &lt;التقنية&gt; &amp; الأعمال: 1 مقالا، 2024-02-20 – 2024-02-20" in lines
    assert len([line for line in lines if line.startswith("• ")]) == len(outlets(version)) == 5
    visible_text(listing.text)
    kept = Ask("كم قاربا تضرر؟", SearchFilters(sources=("جريدة الساحل",)))
    assert answers[0] == page(searcher, kept, AR) and answers[0].startswith("🔎 المصدر: جريدة الساحل\n\n<b>1.</b>")
    assert "120 قاربا" in visible_text(answers[0])
    # the flood was in 2022: kept to 2014, nothing answers, and the answer says which filter it applied
    assert answers[1] == "🔎 الفترة: 2014\n\n" + text("no_answer", AR)
    assert answers[2] == text("bad_outlet", AR, value="جريدة الأيام")
    assert answers[3] == text("bad_date", AR, value="2014-13-40")


async def test_buttons_narrow_an_answer_to_one_outlet_or_year(api, settings, embedder, searcher):
    q = "كم في المئة؟"
    hits = searcher.answer(q, k=6).hits[:5]
    names = list(dict.fromkeys(h.source.outlet for h in hits))
    years = list(dict.fromkeys(h.source.date.year for h in hits))
    assert len(names) > 1 and len(years) > 1, "the question must quote two outlets and two years"
    async with running_bot(settings, embedder):
        [answer] = await ask_in_turn(api, 511, [q])
        rows = answer.markup["inline_keyboard"]
        narrow = [b for row in rows for b in row if b["text"].startswith(("📰", "📅"))]
        assert [b["text"] for b in narrow] == [f"📰 {n} فقط" for n in names] + [f"📅 {y} فقط" for y in years]
        assert all(len(b["callback_data"].encode()) <= 64 for b in narrow)
        api.push_callback(narrow[0]["callback_data"], api.message_object(answer), user_id=511)
        [by_outlet] = await api.wait_for("editMessageText")
        api.push_callback(narrow[len(names)]["callback_data"], api.message_object(answer), user_id=511)
        edits = await api.wait_for("editMessageText", 2)
    assert answer.text == page(searcher, Ask(q), AR)
    assert by_outlet.text == page(searcher, Ask(q, SearchFilters(sources=(names[0],))), AR)
    shown = html.escape(names[0], quote=False)  # an outlet's name may hold <, > or & ("نشرة <التقنية> & الأعمال")
    assert by_outlet.text.startswith(f"🔎 المصدر: {shown}\n\n")
    assert all(f"— {shown} —" in block for block in by_outlet.text.split("\n\n")[1::1] if block.startswith("<b>"))
    year = years[0]
    from datetime import datetime

    assert edits[-1].text == page(searcher, Ask(q, SearchFilters(datetime(year, 1, 1), datetime(year, 12, 31))), AR)
    assert edits[-1].text.startswith(f"🔎 الفترة: {year}\n\n")


def test_a_follow_up_given_the_vector_of_its_searched_text_answers_as_when_it_embeds_itself(searcher, embedder):
    same = "ومن طالب بالتعويض؟"
    context = follow(searcher, FLOOD_Q, same).context
    text_ = searched_text(same, context)
    assert text_ != same and all(w in text_ for w in content_words(FLOOD_Q))  # the carried words are embedded too
    assert searched_text(same, None) == same and searched_text(same, Context()) == same
    qvec = encode_questions(embedder, [text_])[0]  # what the bot's shared encoder batch computes
    given = searcher.answer(same, k=6, context=context, qvec=qvec)
    itself = searcher.answer(same, k=6, context=context)
    assert [(h.chunk_row, h.quote.text) for h in given.hits] == [(h.chunk_row, h.quote.text) for h in itself.hits]
    assert "رئيس نقابة الصيادين" in " ".join(h.quote.text for h in given.hits)
    own = encode_questions(embedder, [same])[0]  # the vector is used: the follow-up's own words alone rank otherwise
    assert searcher.answer(same, k=6, context=context, qvec=own).hits != given.hits
