"""👍/👎 on answers end to end (fake Bot API on 127.0.0.1, real index, real SQLite), /feedback for operators,
and the export → `newsqa eval` round trip that turns confirmed questions into a regression set."""

from __future__ import annotations

import json
import shutil

import pytest

from bot.callbacks import DOWN, UP, VOTE, CallbackStore, decode
from bot.cli import main
from bot.feedback import AnswerRecord, FeedbackStore, Votes, export_eval_questions, question_key, report_html
from bot.searching import BotSearch
from bot.texts import AR, EN, text
from retrieval.evaluate import load_questions
from retrieval.search import LiveSearcher, Searcher
from tests.bot_harness import OPERATOR_ID, bot_settings, running_bot, visible_text
from tests.fake_bot_api import FakeBotAPI

pytestmark = [pytest.mark.timeout(180), pytest.mark.usefixtures("one_torch_thread")]

FLOOD_Q = "كم قاربا تضرر في فيضانات الميناء؟"
SOLAR_Q = "ما قدرة محطة الطاقة الشمسية؟"
HTML_Q = "ما اسم شركة <النور & الأمل> للبرمجيات؟"


def vote_buttons(request) -> tuple[str, str]:
    """The callback data of an answer's 👍 and 👎 buttons."""
    bs = {b["text"]: b["callback_data"] for row in request.markup["inline_keyboard"] for b in row}
    return bs["👍"], bs["👎"]


async def press(api: FakeBotAPI, data: str, message: dict, user_id: int, language_code: str = "ar") -> dict:
    """Press a button and wait for the bot's answerCallbackQuery to it; returns its parameters."""
    qid = api.push_callback(data, message, user_id=user_id, language_code=language_code)
    [ack] = await api.wait_for("answerCallbackQuery", where=lambda r: r.params["callback_query_id"] == qid)
    return ack.params


async def test_one_vote_per_user_per_answer_changeable(api, built_index, tmp_path, embedder, searcher):
    settings = bot_settings(api, built_index, tmp_path)
    async with running_bot(settings, embedder):
        api.push_message(FLOOD_Q, user_id=201)
        [answer] = await api.wait_for("sendMessage")
        up, down = vote_buttons(answer)
        assert decode(up).kind == VOTE and decode(up).offset == UP and decode(down).offset == DOWN
        assert decode(up).key == decode(down).key and len(up.encode()) <= 64
        message = api.message_object(answer)
        first = await press(api, up, message, 201)
        again = await press(api, up, message, 201)
        changed = await press(api, down, message, 201)
        other = await press(api, up, message, 202, language_code="en")  # someone else, same answer
        expired = await press(api, "v:AAAAAAAAAAAA:1", message, 201)
    qid = first["callback_query_id"]
    assert first == {"callback_query_id": qid, "text": text("vote_new", AR, vote="👍")}
    assert again["text"] == text("vote_same", AR, vote="👍")
    assert changed["text"] == text("vote_changed", AR, vote="👎")
    assert other["text"] == text("vote_new", EN, vote="👍")
    assert expired["text"] == text("expired", AR) and expired["show_alert"] in (True, "true")
    assert not api.calls("editMessageText")  # voting leaves the answer as it is

    hit = searcher.answer(FLOOD_Q, k=6).hits[0]
    store = FeedbackStore(settings.bot_state_path)  # beside the button keys, as the bot wrote it
    rows = store._db.execute(
        "SELECT user_id, vote, question, article_id, chunk_row, quote, index_version, answer FROM votes ORDER BY user_id"
    ).fetchall()
    store.close()
    assert [(r[0], r[1]) for r in rows] == [(201, DOWN), (202, UP)]  # one row per user, the latest vote
    for _, _, question, article_id, chunk_row, quote, version, record in rows:
        assert (question, article_id, chunk_row, quote, version) == (
            FLOOD_Q, hit.source.article_id, hit.chunk_row, hit.quote.text, "v000001")
        assert "الفيضانات" in quote
        assert AnswerRecord.from_json(record).hits[0].article_id == hit.source.article_id


async def test_feedback_command_for_operators_only(api, built_index, tmp_path, embedder):
    settings = bot_settings(api, built_index, tmp_path)
    async with running_bot(settings, embedder):
        api.push_message(FLOOD_Q, user_id=211)
        api.push_message(HTML_Q, user_id=212)
        sent = await api.wait_for("sendMessage", 2)
        by_chat = {s.chat_id: s for s in sent}
        await press(api, vote_buttons(by_chat[211])[0], api.message_object(by_chat[211]), 211)
        await press(api, vote_buttons(by_chat[212])[1], api.message_object(by_chat[212]), 212)
        await press(api, vote_buttons(by_chat[212])[1], api.message_object(by_chat[212]), 213)
        api.push_message("/feedback", user_id=214, language_code="en")
        [refused] = await api.wait_for("sendMessage", where=lambda r: r.chat_id == 214)
        api.push_message("/feedback", user_id=OPERATOR_ID)
        [report] = await api.wait_for("sendMessage", where=lambda r: r.chat_id == OPERATOR_ID)
    assert refused.text == text("operators_only", EN)
    assert report.params["parse_mode"] == "HTML"
    lines = report.text.split("\n")
    assert lines[0] == "<b>All time</b> 3 votes (👍 1, 👎 2) on 2 answers from 3 users"
    assert lines[1] == "<b>Last 7 days</b> 3 votes (👍 1, 👎 2) on 2 answers from 3 users"
    assert lines[2] == "<b>Worst questions of the week</b>"
    assert lines[3] == "1. ما اسم شركة &lt;النور &amp; الأمل&gt; للبرمجيات؟ — 👎 2, 👍 0 (v000001)"
    assert len(lines) == 4  # the 👍-only question is not among the worst
    assert "<النور & الأمل>" in visible_text(report.text)


def test_votes_counts_and_worst_questions_of_the_week(tmp_path):
    store = FeedbackStore(tmp_path / "state.sqlite")
    now = 1_700_000_000.0
    rec = AnswerRecord("سؤال قديم؟", AR, "v000003", 0, ())
    store.vote("k-old", 1, DOWN, rec, now=now - 10 * 86400)  # last week's: counted all time only
    week_q = AnswerRecord("كم قاربا تضرر؟", AR, "v000004", 0, ())
    variant = AnswerRecord("كم  قاربا تضرر", AR, "v000004", 0, ())  # the same question, spelled otherwise
    store.vote("k1", 1, DOWN, week_q, now=now - 3600)
    store.vote("k2", 2, DOWN, variant, now=now - 60)
    store.vote("k1", 3, UP, week_q, now=now - 30)
    assert question_key("كم قاربا تضرر؟") == question_key("كم  قاربا تضرر")
    assert store.tally().votes == 4 and store.tally(now - 7 * 86400).votes == 3
    [worst] = store.worst(now - 7 * 86400)
    assert (worst.up, worst.down, worst.version) == (1, 2, "v000004")
    body = report_html(store, now=now)
    assert "<b>All time</b> 4 votes (👍 1, 👎 3) on 3 answers from 3 users" in body
    assert "1. كم قاربا تضرر؟ — 👎 2, 👍 1 (v000004)" in body and "قديم" not in body  # as last asked
    with pytest.raises(ValueError):
        store.vote("k1", 1, 0, week_q)
    store.close()


def page_vote_key(search: BotSearch, question: str) -> str:
    """The answer key behind the 👍 of the first page the bot would send for `question`."""
    page = search.page(question, AR)
    [up] = [b.callback_data for row in page.markup.inline_keyboard for b in row if b.text == "👍"]
    return decode(up).key


def test_export_is_an_eval_question_set_that_scores_the_confirmed_article(
    tmp_path, built_index, combined_corpus, embedder, models_dir, monkeypatch, capsys
):
    state = tmp_path / "bot-state.sqlite"
    keys = CallbackStore(state)
    search = BotSearch(LiveSearcher(built_index, embedder), keys)
    store = FeedbackStore(state)
    votes = Votes(keys, store)
    flood, solar, company = (page_vote_key(search, q) for q in (FLOOD_Q, SOLAR_Q, HTML_Q))
    assert votes.cast(flood, 1, UP) == "new" and votes.cast(flood, 2, UP) == "new"
    assert votes.cast(solar, 1, DOWN) == "new" and votes.cast(solar, 1, UP) == "changed"
    assert votes.cast(company, 3, DOWN) == "new"  # 👎 only: not a confirmed answer
    keys.close()
    store.close()

    out = tmp_path / "feedback.jsonl"
    assert main(["feedback", "export", str(out), "--state-file", str(state)]) == 0
    assert "wrote 2 confirmed question(s)" in capsys.readouterr().out
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    searcher = Searcher(search.live.get().version, embedder)
    expected = {q: searcher.answer(q, k=6).hits[0] for q in (FLOOD_Q, SOLAR_Q)}
    assert [r["question"] for r in rows] == [FLOOD_Q, SOLAR_Q]
    for r in rows:
        hit = expected[r["question"]]
        assert r["passage_id"] == hit.source.article_id and r["answers"] == [hit.quote.text]
        assert r["index_version"] == "v000001" and r["lang"] == AR and r["id"].startswith("fb-")
    assert (rows[0]["votes_up"], rows[1]["votes_up"]) == (2, 1)
    assert [q.passage_id for q in load_questions(out)] == [r["passage_id"] for r in rows]  # what eval reads

    # `newsqa eval` over a dataset folder holding the same articles scores the confirmed ones
    dataset = tmp_path / "archive"
    shutil.copytree(combined_corpus, dataset / "corpus")
    shutil.copytree(built_index, tmp_path / "eval-ix")  # the same articles already built: eval's update finds no change
    monkeypatch.setenv("NEWSQA_MODELS_DIR", str(models_dir))
    assert main(["eval", str(dataset), "--questions", str(out), "--index-dir", str(tmp_path / "eval-ix"),
                 "--mode", "fused", "--failures", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["fused"]["n"] == 2 and result["fused"]["MRR@10"] == 1.0
    assert [r["gold_rank"] for r in result["questions"]] == [1, 1]
    assert all(r["quote_hit"] for r in result["questions"])


def test_export_without_votes_is_a_clear_error(tmp_path, capsys):
    assert main(["feedback", "export", str(tmp_path / "out.jsonl"), "--state-file", str(tmp_path / "none.sqlite")]) == 1
    assert "no bot state at" in capsys.readouterr().err
    store = FeedbackStore(tmp_path / "empty.sqlite")
    assert export_eval_questions(store, tmp_path / "empty.jsonl") == 0
    assert (tmp_path / "empty.jsonl").read_text(encoding="utf-8") == ""
    store.close()
    (tmp_path / "junk.sqlite").write_bytes(b"not a database at all" * 100)
    assert main(["feedback", "export", str(tmp_path / "x.jsonl"), "--state-file", str(tmp_path / "junk.sqlite")]) == 1
    assert "not a bot state database" in capsys.readouterr().err


def test_vote_data_stays_within_64_bytes_and_foreign_data_is_refused():
    for data in ("v:AAAAAAAAAAAA:1", "v:AAAAAAAAAAAA:-1"):
        assert decode(data).kind == VOTE and len(data.encode()) <= 64
    for bad in ("v:AAAAAAAAAAAA:0", "v:AAAAAAAAAAAA:2", "v:short:1", "v:AAAAAAAAAAAA"):
        assert decode(bad) is None
