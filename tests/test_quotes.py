"""Quotes are verbatim, short, whole clauses, and hold the answer when their passage does."""

from __future__ import annotations

import numpy as np
import pytest

from retrieval.quote import MAX_QUOTE_CHARS, QueryTerms, choose_quote, numeric_question, query_terms
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
    assert any(answer in h.quote.text for h in result.hits), [h.quote.text for h in result.hits]
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


def _q(*words: str) -> QueryTerms:
    return query_terms(" ".join(words), lambda t: 1.0)


def test_choose_quote_grows_to_the_neighbouring_clause_within_limits() -> None:
    q = _q("كم", "قدرة", "المحطة", "التي", "افتتحتها", "الحكومة")
    s, e = choose_quote(BODY, 0, len(BODY), q, numeric=True)
    quote = BODY[s:e]
    assert "1500 ميغاواط" in quote and len(quote) <= MAX_QUOTE_CHARS
    assert _natural_start(BODY, s) and _natural_end(BODY, e)


def test_choose_quote_short_limit_and_dense_choice() -> None:
    q = _q("وزارة", "النقل", "الطرق")
    s, e = choose_quote(BODY, 0, len(BODY), q, fill_chars=0)
    assert BODY[s:e].startswith("وفي سياق منفصل") and e == len(BODY)
    # With no shared words, the unit most similar in meaning is chosen.
    from retrieval.quote import quote_units

    units = quote_units(BODY, 0, len(BODY))
    sims = np.zeros(len(units))
    sims[1] = 1.0
    s, e = choose_quote(BODY, 0, len(BODY), QueryTerms({}), sims, dense_weight=1.0, fill_chars=0)
    assert (s, e) == units[1]


def test_a_single_overlong_sentence_is_cut_at_a_word_boundary() -> None:
    body = " ".join(["كلمة"] * 150)
    s, e = choose_quote(body, 0, len(body), _q("كلمة"))
    assert e - s <= MAX_QUOTE_CHARS and (e == len(body) or body[e] == " ")


def test_numeric_questions() -> None:
    assert numeric_question("كم عدد القتلى؟") and numeric_question("How many boats sank?")
    assert numeric_question("متى افتتحت المحطة؟") and not numeric_question("من افتتح المحطة؟")


def test_english_question_ranks_by_meaning_alone(searcher: Searcher) -> None:
    q = "How much did the central bank raise interest rates?"
    fused = [c.row for c in searcher.rank(q, "fused")[0][:5]]
    dense = [c.row for c in searcher.rank(q, "dense")[0][:5]]
    assert fused == dense  # no known words: the lexical side must not reorder anything
