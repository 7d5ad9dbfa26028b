"""Terminal output: right-to-left lines laid out for terminals without BiDi, and the chat loop."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bot.terminal import display_lines, format_answer, wants_visual_order
from tests.conftest import ROOT


def test_visual_order_reverses_arabic_per_wrapped_line() -> None:
    text = "قال المسؤول إن الحساب جمع 17700 متتبع"
    (logical,) = display_lines(text, 80, visual=False)
    (visual,) = display_lines(text, 80, visual=True)
    assert logical == text
    assert "17700" in visual  # numbers keep their left-to-right order
    shown = visual.strip()
    # The first logical word is displayed at the right end (presentation forms after shaping).
    import arabic_reshaper

    assert shown.endswith(arabic_reshaper.reshape("قال")[::-1])


def test_long_lines_are_wrapped_before_reordering() -> None:
    text = " ".join(["كلمة"] * 60)
    lines = display_lines(text, 40, visual=True)
    assert len(lines) > 5 and all(len(line) <= 40 for line in lines)


def test_bidi_mode_choice() -> None:
    assert wants_visual_order("on", isatty=False) is True
    assert wants_visual_order("off", isatty=True) is False
    assert wants_visual_order("auto", isatty=False) is False


def test_chat_answers_each_line_until_eof(built_index: Path, models_dir: Path) -> None:
    env = {"PATH": os.environ.get("PATH", ""), "NEWSQA_HOME": os.environ["NEWSQA_HOME"], "HF_HUB_OFFLINE": "1", "NEWSQA_MODELS_DIR": str(models_dir),
           "NEWSQA_INDEX_DIR": str(built_index), "NEWSQA_TERMINAL_BIDI": "off"}
    out = subprocess.run(
        [sys.executable, "-m", "bot.cli", "chat", "-k", "2"],
        input="كم أصبح سعر الفائدة بعد قرار البنك المركزي؟\n\nWhat is the recipe for chocolate cake?\nexit\n",
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr
    flat = " ".join(out.stdout.split())  # lines are wrapped to the terminal width
    assert "5.25" in flat and "وكالة الأنباء الاقتصادية — 2023-05-10 14:30" in flat
    assert "Nothing in the corpus answers this" in flat


def test_a_question_with_nothing_to_search_for_is_told_so() -> None:
    from retrieval.types import Answer

    out = format_answer(Answer(question="؟؟", declined="content-free"), visual=False, width=100)
    assert "no words to search for" in out and "Nothing in the corpus" not in out
    out = format_answer(Answer(question="سؤال", declined="no-answer"), visual=False, width=100)
    assert "Nothing in the corpus answers this" in out


def test_chat_follows_up_in_context_and_new_starts_fresh(built_index: Path, models_dir: Path) -> None:
    env = {"PATH": os.environ.get("PATH", ""), "NEWSQA_HOME": os.environ["NEWSQA_HOME"], "HF_HUB_OFFLINE": "1", "NEWSQA_MODELS_DIR": str(models_dir),
           "NEWSQA_INDEX_DIR": str(built_index), "NEWSQA_TERMINAL_BIDI": "off"}
    out = subprocess.run(
        [sys.executable, "-m", "bot.cli", "chat", "-k", "2"],
        input="كم قاربا تضرر في فيضانات الميناء؟\nومن طالب بالتعويض؟\n/new\nومن طالب بالتعويض؟\n"
              "من جريدة الساحل: كم قاربا تضرر؟\nمن جريدة الأيام: سؤال\nexit\n",
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr
    answers = [" ".join(a.split()) for a in out.stdout.split("> ")[1:]]
    assert "120 قاربا" in answers[0] and "follow-up" not in answers[0]
    assert answers[1].startswith("↩ متابعة لـ / follow-up to: «كم قاربا تضرر في فيضانات الميناء؟» (/new)")
    assert "رئيس نقابة الصيادين" in answers[1]
    assert answers[2] == "موضوع جديد. / New topic."
    assert "follow-up" not in answers[3] and "Nothing in the corpus answers this" in answers[3]  # read on its own
    assert answers[4].startswith("🔎 جريدة الساحل [1] «") and "120 قاربا" in answers[4]
    assert answers[5] == "لا أفهم هذا المرشح / Cannot apply this filter (outlet): جريدة الأيام"
