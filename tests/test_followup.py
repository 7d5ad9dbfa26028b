"""Follow-ups read from the message alone, the per-chat context store, filters said in a message, stored searches."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from bot.asking import Ask
from bot.chatfilters import FilterError, combine, describe, parse
from bot.followup import ContextStore, Conversations, Turn, read
from retrieval.context import content_words, own_text
from retrieval.types import Context, SearchFilters

OUTLETS = ["شبكة النبأ", "جريدة الساحل", "وكالة الأنباء الاقتصادية"]


@pytest.mark.parametrize("message", [
    "ومتى حدث ذلك؟", "ومن هو؟", "وماذا قال عن تويتر؟", "and who arrested him?", "فمن اعتقله؟", "لماذا؟", "Why?",
    "وكم شخصا قضى بها في المكسيك؟", "How many followers did it have?", "كم عددهم؟", "And what about Facebook?",
    "وماذا عن الطاقة الشمسية؟", "Where was he born?",
])
def test_follow_ups_are_read_as_such(message: str) -> None:
    assert read(message).followup, read(message)


@pytest.mark.parametrize("message", [
    "من هو شامي ويتنس؟", "كم قاربا تضرر في فيضانات الميناء؟", "ما قدرة محطة الطاقة الشمسية؟",
    "How many boats were damaged when the harbour flooded?", "What is the capital of Mongolia?",
    "Who arrested Mehdi Biswas?", "كم عدد مستخدمي تطبيق فايبر بعد عامين من إطلاقه؟", "؟؟ 🙂",
])
def test_new_topics_are_not(message: str) -> None:
    assert not read(message).followup, read(message)


def test_carried_words_are_content_words_as_written() -> None:
    assert content_words("كم قاربا تضرر في فيضانات الميناء؟") == ("قاربا", "تضرر", "فيضانات", "الميناء")
    assert content_words("and who arrested him?") == ("arrested",)
    assert own_text("ومتى حدث ذلك؟") == "متى حدث"
    assert content_words("ومن اعتقله؟") == ("اعتقله",)


def test_context_store_survives_a_restart_expires_and_keeps_chats_apart(tmp_path: Path) -> None:
    now = [1000.0]
    path = tmp_path / "bot-state.sqlite"
    store = ContextStore(path, ttl_seconds=600, clock=lambda: now[0])
    store.put(1, Turn("كم قاربا تضرر؟", ("قاربا", "تضرر"), ("a1",), now[0]))
    store.put(2, Turn("Who is X?", ("X",), ("a2", "a3"), now[0]))
    store.close()
    again = ContextStore(path, ttl_seconds=600, clock=lambda: now[0])  # a restart: a new connection to the file
    assert again.get(1) == Turn("كم قاربا تضرر؟", ("قاربا", "تضرر"), ("a1",), 1000.0)
    assert again.get(2) is not None and again.get(2).articles == ("a2", "a3")
    assert again.get(3) is None
    now[0] += 599
    assert again.get(1) is not None
    now[0] += 2  # 601 s after: expired, and gone from the file
    assert again.get(1) is None and again.get(2) is None
    again.put(2, Turn("q", ("w",), (), now[0]))
    assert again.clear(2) is True and again.clear(2) is False and again.get(2) is None


def test_conversation_follow_up_carries_words_and_new_topic_starts_fresh() -> None:
    chat = Conversations(ContextStore(None, ttl_seconds=600))
    first = chat.ask(7, "من هو شامي ويتنس؟")
    assert not first.followup  # nothing before it
    chat.answered(7, first, ["isis"], True)
    follow = chat.ask(7, "ومن اعتقله؟")
    assert follow.context == Context(("شامي", "ويتنس"), ("isis",)) and follow.about == "من هو شامي ويتنس؟"
    chat.answered(7, follow, [], False)  # no answer: the context stays as it was
    assert chat.store.get(7).question == "من هو شامي ويتنس؟"
    chat.answered(7, follow, ["isis", "other"], True)
    turn = chat.store.get(7)  # the topic's words stay; the articles are the follow-up answer's
    assert turn is not None and turn.terms == ("شامي", "ويتنس") and turn.articles == ("isis", "other")
    assert turn.question == "ومن اعتقله؟"
    fresh = chat.ask(7, "كم قاربا تضرر في فيضانات الميناء؟")
    assert fresh.context is None
    assert chat.ask(8, "ومن اعتقله؟").context is None  # another chat has no context
    chat.answered(7, fresh, [], False)  # a new topic that nothing answers still starts fresh
    assert chat.store.get(7) is None
    chat.answered(7, fresh, ["flood"], True)
    assert chat.new(7) and chat.ask(7, "ومن اعتقله؟").context is None


@pytest.mark.parametrize(("message", "question", "outlet", "period"), [
    ("من شبكة النبأ: كيف يستخدم داعش الانترنت؟", "كيف يستخدم داعش الانترنت؟", "شبكة النبأ", None),
    ("في 2014: من هو شامي ويتنس؟", "من هو شامي ويتنس؟", None, "2014"),
    ("since 2014: who is ShamiWitness?", "who is ShamiWitness?", None, "2014-01-01 – …"),
    ("من الساحل في 2022: كم قاربا تضرر؟", "كم قاربا تضرر؟", "جريدة الساحل", "2022"),
    ("من 2014 إلى 2016: سؤال", "سؤال", None, "2014-01-01 – 2016-12-31"),
    ("قبل 2015: سؤال", "سؤال", None, "… – 2014-12-31"),
    ("بعد 2014: سؤال", "سؤال", None, "2015-01-01 – …"),
    ("in 2014 and from شبكة النبأ: q", "q", "شبكة النبأ", "2014"),
])
def test_filters_said_before_a_colon(message: str, question: str, outlet: str | None, period: str | None) -> None:
    parsed = parse(message, OUTLETS)
    assert parsed.question == question and parsed.filters is not None
    assert describe(parsed.filters) == (outlet, period)


@pytest.mark.parametrize("message", ["in Bangalore: who?", "ما قال هانيجان: شيء", "سؤال بلا مرشح", "كيف: الى اين؟ x"])
def test_text_before_a_colon_that_is_no_filter_stays_in_the_question(message: str) -> None:
    assert parse(message, OUTLETS).question == message and parse(message, OUTLETS).filters is None


def test_unknown_outlet_and_impossible_date_are_named() -> None:
    with pytest.raises(FilterError) as info:
        parse("من جريدة الأيام: سؤال", OUTLETS)
    assert (info.value.kind, info.value.value) == ("outlet", "جريدة الأيام")
    with pytest.raises(FilterError) as info:
        parse("في 2014-13-40: سؤال", OUTLETS)
    assert (info.value.kind, info.value.value) == ("date", "2014-13-40")


def test_message_filters_replace_command_line_ones_of_their_kind() -> None:
    base = SearchFilters(since=datetime(2010, 1, 1), sources=("x",))
    said = SearchFilters(since=datetime(2014, 1, 1), until=datetime(2014, 12, 31))
    assert combine(base, said) == SearchFilters(datetime(2014, 1, 1), datetime(2014, 12, 31), ("x",))
    assert combine(base, None) == base and combine(None, said) == said


def test_a_stored_search_comes_back_whole_and_a_plain_question_stays_text() -> None:
    ask = Ask("ومن اعتقله؟", SearchFilters(datetime(2014, 1, 1), None, ("شبكة النبأ",)), Context(("شامي",), ("a",)), "من هو؟")
    assert Ask.from_json(ask.to_json()) == ask
    assert Ask("سؤال").to_json() == "سؤال" and Ask.from_json("سؤال") == Ask("سؤال")
    narrowed = Ask("q").narrowed(year=2014)
    assert narrowed.filters == SearchFilters(datetime(2014, 1, 1), datetime(2014, 12, 31))
