"""Date and outlet filters end to end (API and CLI), and the no-answer gate on off-topic questions."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from bot.cli import main
from retrieval.search import Searcher
from retrieval.types import SearchFilters

RATES_Q = "كم بلغ سعر الفائدة بعد قرار البنك المركزي؟"


def _titles(answer) -> list[str]:
    return [h.source.title for h in answer.hits]


def test_since_excludes_older_articles(searcher: Searcher) -> None:
    unfiltered = searcher.answer(RATES_Q, k=5)
    assert unfiltered.found and "البنك المركزي" in unfiltered.hits[0].source.title
    later = searcher.answer(RATES_Q, k=5, filters=SearchFilters(since=datetime(2023, 5, 11)))
    assert all(h.source.date >= datetime(2023, 5, 11) for h in later.hits)
    assert not any("البنك المركزي" in t for t in _titles(later))


def test_until_a_bare_date_includes_that_whole_day(searcher: Searcher) -> None:
    same_day = searcher.answer(RATES_Q, k=5, filters=SearchFilters(since=datetime(2023, 5, 10), until=datetime(2023, 5, 10)))
    assert same_day.found and set(_titles(same_day)) == {unfiltered_title(searcher)}
    before = searcher.answer(RATES_Q, k=5, filters=SearchFilters(until=datetime(2023, 5, 9)))
    assert not any("البنك المركزي" in t for t in _titles(before))
    assert all(h.source.date <= datetime(2023, 5, 9, 23, 59) for h in before.hits)


def unfiltered_title(searcher: Searcher) -> str:
    return searcher.answer(RATES_Q, k=1).hits[0].source.title


def test_source_filter_keeps_only_that_outlet(searcher: Searcher) -> None:
    q = "ما قدرة محطة الطاقة الشمسية التي افتتحتها الحكومة؟"
    econ = searcher.answer(q, k=5, filters=SearchFilters(sources=("وكالة الأنباء الاقتصادية",)))
    assert econ.found and {h.source.outlet for h in econ.hits} == {"وكالة الأنباء الاقتصادية"}
    other = searcher.answer(q, k=5, filters=SearchFilters(sources=("صحيفة الملاعب",)))
    assert all(h.source.outlet == "صحيفة الملاعب" for h in other.hits)
    assert not any("الطاقة الشمسية" in t for t in _titles(other))
    nobody = searcher.answer(q, k=5, filters=SearchFilters(sources=("no such outlet",)))
    assert not nobody.found and nobody.hits == []


def _ask_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_cli_filters_end_to_end(built_index: Path, models_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("NEWSQA_MODELS_DIR", str(models_dir))
    base = ["ask", RATES_Q, "--json", "--index-dir", str(built_index)]
    everything = _ask_json(base, capsys)
    assert everything["hits"][0]["date"].startswith("2023-05-10")
    since = _ask_json([*base, "--since", "2024-01-01"], capsys)
    assert all(h["date"] >= "2024-01-01" for h in since["hits"])
    until = _ask_json([*base, "--until", "2022-12-31"], capsys)
    assert all(h["date"] <= "2022-12-31" for h in until["hits"])
    outlet = _ask_json([*base, "--source", "جريدة الساحل", "--source", "صحيفة الملاعب"], capsys)
    assert {h["source"] for h in outlet["hits"]} <= {"جريدة الساحل", "صحيفة الملاعب"}


def test_cli_rejects_a_bad_date(built_index: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["ask", RATES_Q, "--index-dir", str(built_index), "--since", "yesterday-ish"])
    assert "not a date" in capsys.readouterr().err


OFF_TOPIC = [
    "ما هي أفضل وصفة لطبخ الكبسة باللحم؟",
    "كم يبلغ ارتفاع جبل إيفرست؟",
    "من فاز بجائزة نوبل للأدب عام 1988؟",
    "ما هي أعراض نقص فيتامين د عند الأطفال؟",
    "What is the capital of Australia?",
    # "How do I bake sourdough bread at home?" is a known miss since English words are matched as corpus terms:
    # tests/test_known_items.py checks it ranks below every on-topic question
    "Who painted the Mona Lisa?",
]
ON_TOPIC = [
    "كيف يستخدم تنظيم داعش الإنترنت لتجنيد الشباب؟",
    "كم قاربا تضرر في ميناء الصيادين؟",
    "بكم رفع البنك المركزي سعر الفائدة؟",
    "من فاز بكأس البطولة القارية؟",
    "How does ISIS use social media to recruit fighters?",
    "How much did the central bank raise interest rates?",
    "How many boats were damaged by the floods in the fishing harbour?",
]


@pytest.mark.parametrize("question", OFF_TOPIC)
def test_gate_says_nothing_found_off_topic(searcher: Searcher, question: str) -> None:
    answer = searcher.answer(question)
    assert not answer.found, (question, [(h.source.title, round(h.dense_score or 0, 3)) for h in answer.hits])
    assert answer.hits == []


@pytest.mark.parametrize("question", ON_TOPIC)
def test_gate_answers_on_topic(searcher: Searcher, question: str) -> None:
    answer = searcher.answer(question)
    assert answer.found and answer.hits, question


CONTENT_FREE = ["؟؟؟!!!", "🙂🔥🙏", "\u200b\u200c\u200d", "\u202b\u2067\u200f؟"]


@pytest.mark.parametrize("question", CONTENT_FREE)
def test_content_free_questions_are_declined(searcher: Searcher, question: str) -> None:
    answer = searcher.answer(question)
    assert not answer.found and answer.hits == [] and answer.declined == "content-free"


@pytest.mark.parametrize("question", ["'; DROP TABLE articles; --", "<script>alert(1)</script>", "x' OR 1=1 --"])
def test_code_instead_of_a_question_is_declined(searcher: Searcher, question: str) -> None:
    answer = searcher.answer(question)
    assert not answer.found and answer.hits == [] and answer.declined == "content-free"


@pytest.mark.parametrize(
    "question",
    ["كم قاربا تضرر في ميناء الصيادين؟", "بكم رفع البنك المركزي سعر الفائدة؟", "How much did the central bank raise interest rates?"],
)
def test_gold_removed_questions_are_declined(searcher: Searcher, question: str) -> None:
    answered = searcher.answer(question)
    assert answered.found
    gold = answered.hits[0].source.article_id
    without = searcher.answer(question, filters=SearchFilters(exclude_articles=(gold,)))
    assert not without.found and without.hits == [], [h.quote.text[:60] for h in without.hits]
