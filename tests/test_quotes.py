"""Quotes are verbatim, short, whole clauses, and hold the answer when their passage does."""

from __future__ import annotations

import numpy as np
import pytest

from retrieval.query import TermWeights, analyse
from retrieval.quote import MAX_QUOTE_CHARS, grow, make_paragraph, highlight_spans, quote_units, unit_windows, window_features
from retrieval.scoring import shipped_params
from retrieval.search import Searcher

_ENDS = tuple(".!?؟؛;…،,:\"'»”)]")

QUESTIONS = [
    ("ما اسم الحساب الذي كان يديره مهدي على تويتر؟", "شامي ويتنس"),
    ("كم عمر الهندي الذي اعتقلته الشرطة؟", "الرابعة والعشرين"),
    ("كم قاربا تضرر في ميناء الصيادين؟", "120"),
    ("بكم رفع البنك المركزي سعر الفائدة؟", "ربع نقطة"),
    ("How many boats were damaged in the harbour floods?", "120"),
]


def _natural_start(body: str, s: int) -> bool:
    before = body[:s].rstrip(" \t")
    return not before or before.endswith(("\n", *_ENDS))


def _natural_end(body: str, e: int) -> bool:
    after = body[e:].lstrip(" \t")
    return body[:e].endswith(_ENDS) or not after or after.startswith("\n")


@pytest.mark.parametrize("question,answer", QUESTIONS)
def test_quotes_are_verbatim_short_whole_and_answer(searcher: Searcher, question: str, answer: str) -> None:
    result = searcher.answer(question, k=3)
    assert result.found
    joined = answer.replace(" ", "")  # the article writes the handle joined: @شاميويتنس
    assert any(answer in h.quote.text or joined in h.quote.text for h in result.hits), [h.quote.text for h in result.hits]
    for h in result.hits:
        body = searcher.version.article(h.article_row).body
        assert body[h.quote.start : h.quote.end] == h.quote.text  # verbatim original text
        assert 0 < len(h.quote.text) <= MAX_QUOTE_CHARS
        assert _natural_start(body, h.quote.start), h.quote.text[:60]
        assert _natural_end(body, h.quote.end), h.quote.text[-60:]


BODY = (
    "افتتحت الحكومة محطة جديدة للطاقة في الصحراء. وقال الوزير إن المحطة ستخدم المدن الساحلية، "
    "وأضاف أن قدرتها تبلغ 1500 ميغاواط. وتوقع خبراء أن تنخفض أسعار الكهرباء خلال العام المقبل "
    "بعد تشغيل المحطة بكامل طاقتها، كما رحبت غرفة التجارة بالمشروع ودعت إلى مشاريع مماثلة في الشمال "
    "والجنوب على حد سواء. وفي سياق منفصل أعلنت وزارة النقل عن خطة لتوسيع شبكة الطرق السريعة بين المدن الكبرى."
)


def _best_window(question: str, sims: np.ndarray | None = None) -> tuple[int, int]:
    """The run the shipped quote model picks in BODY (every word weighted 1), before growing."""
    query = analyse(question)
    weights = TermWeights({t: 1.0 for t in query.terms}, 1.0 if sims is None else 0.0)
    units = quote_units(BODY, 0, len(BODY))
    para = make_paragraph(BODY, 0, len(BODY), units, sims)
    windows = unit_windows(units)
    x = window_features(BODY, para, windows, query, weights, (0, len(BODY)))
    i, j = windows[int(np.argmax(shipped_params().quote.logits(x)))]
    return units[i][0], units[j][1]


def test_quote_model_prefers_the_run_with_the_figure_a_how_many_question_asks_for() -> None:
    s, e = _best_window("كم تبلغ قدرة المحطة التي افتتحتها الحكومة؟")
    assert "1500 ميغاواط" in BODY[s:e]


def test_quote_model_follows_the_question_words() -> None:
    s, e = _best_window("ما خطة وزارة النقل للطرق؟")
    assert "وزارة النقل" in BODY[s:e]


def test_quote_model_uses_meaning_when_no_word_is_shared() -> None:
    units = quote_units(BODY, 0, len(BODY))
    sims = np.full(len(units), 0.70)
    sims[1] = 0.92
    s, e = _best_window("What is the plant's capacity?", sims)
    assert (s, e)[0] <= units[1][0] and units[1][1] <= (s, e)[1]


def test_grow_adds_whole_neighbouring_units_within_limits() -> None:
    units = quote_units(BODY, 0, len(BODY))
    s, e = grow(BODY, units, 1, 1)
    assert s <= units[1][0] and e >= units[1][1] and e - s <= MAX_QUOTE_CHARS
    assert _natural_start(BODY, s) and _natural_end(BODY, e)
    assert e - s > units[1][1] - units[1][0]  # it did grow


def test_a_single_overlong_sentence_is_cut_at_a_word_boundary() -> None:
    body = " ".join(["كلمة"] * 150)
    units = quote_units(body, 0, len(body))
    s, e = grow(body, units, 0, 0)
    assert e - s <= MAX_QUOTE_CHARS and (e == len(body) or body[e] == " ")


def test_figures_are_highlighted_for_how_many_questions() -> None:
    query = analyse("كم تبلغ قدرة المحطة؟")
    weights = TermWeights({t: 1.0 for t in query.terms}, 1.0)
    text = "وأضاف أن قدرتها تبلغ 1500 ميغاواط."
    spans = highlight_spans(text, query, weights)
    assert any(text[a:b] == "1500" for a, b in spans)
    assert not any(text[a:b] == "1500" for a, b in highlight_spans(text, analyse("ما قدرة المحطة؟"), weights))


def test_english_question_ranks_by_meaning_alone(searcher: Searcher) -> None:
    q = "How much did the central bank raise interest rates?"
    fused = searcher.rank(q, "fused").candidates
    dense = searcher.rank(q, "dense").candidates
    assert fused[0].row == dense[0].row  # no known words: the lexical side must not pull another passage up
    assert all(c.lexical_score is None or c.fused <= fused[0].fused for c in fused)
