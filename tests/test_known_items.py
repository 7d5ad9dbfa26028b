"""Known-item questions over the real index: the quote holds the answer, with its true source."""

from __future__ import annotations

import pytest

from index.arabic import normalize
from tests.conftest import SAMPLE_ARTICLE_TITLE

SAMPLE = (SAMPLE_ARTICLE_TITLE, "شبكة النبأ", "2014-12-18 07:28")
CBANK = ("البنك المركزي يرفع سعر الفائدة للمرة الثالثة هذا العام", "وكالة الأنباء الاقتصادية", "2023-05-10 14:30")
FLOOD = ("فيضانات تغمر ميناء الصيادين وتوقف الملاحة ثلاثة أيام", "جريدة الساحل", "2022-11-03 09:15")
SPORT = ("المنتخب يفوز بالكأس بعد ركلات الترجيح", "صحيفة الملاعب", "2021-07-12 22:40")

KNOWN_ITEMS = [
    # (question, text the quote must contain, expected source)
    ("كم عدد متابعي حساب شامي ويتنس؟", "17700", SAMPLE),
    ("How many followers did the ShamiWitness account have?", "17700", SAMPLE),
    ("في أي مدينة يعمل مهدي مسرور بسواس؟", "بنغالور", SAMPLE),
    ("In which city did Mehdi Masroor Biswas work?", "بنغالور", SAMPLE),
    ("من هو المنسق الأمريكي للتحالف الدولي ضد تنظيم الدولة؟", "جون آلن", SAMPLE),
    ("Who is the American coordinator of the international coalition?", "جون آلن", SAMPLE),
    ("كم عدد الأوروبيين الذين تم تجنيدهم للقتال في سوريا والعراق؟", "ثلاثة آلاف", SAMPLE),
    ("How many Europeans were recruited to fight in Syria and Iraq?", "ثلاثة آلاف", SAMPLE),
    ("من هو المدير الجديد لمقر الاتصالات الحكومية البريطانية؟", "هانيجان", SAMPLE),
    ("Who is the new director of Britain's GCHQ?", "هانيجان", SAMPLE),
    ("أين عقد الاجتماع الخاص بمواجهة دعاية الجماعات المتطرفة على الإنترنت؟", "الكويت", SAMPLE),
    ("ما المواقع الروسية التي يلجأ إليها المتشددون؟", "كونتاكت", SAMPLE),
    ("Which Russian social networks are the militants turning to?", "كونتاكت", SAMPLE),
    ("من هي المفوضة الأوروبية للشؤون الداخلية؟", "ملمستروم", SAMPLE),
    ("كم أصبح سعر الفائدة بعد قرار البنك المركزي؟", "5.25", CBANK),
    ("What is the central bank's new interest rate?", "5.25", CBANK),
    ("كم قاربا تضرر في فيضانات ميناء الصيادين؟", "120", FLOOD),
    ("How many boats were damaged by the harbour flood?", "120", FLOOD),
    ("بأي نتيجة فاز المنتخب في ركلات الترجيح؟", "4-2", SPORT),
]


@pytest.mark.parametrize(("question", "expected", "source"), KNOWN_ITEMS, ids=[q for q, _, _ in KNOWN_ITEMS])
def test_known_item_is_quoted_with_its_source(searcher, question: str, expected: str, source: tuple) -> None:
    answer = searcher.answer(question, k=5)
    assert answer.found, f"no answer for {question!r}"
    matching = [h for h in answer.hits if normalize(expected) in normalize(h.quote.text)]
    assert matching, f"{expected!r} not in quotes: {[h.quote.text[:80] for h in answer.hits]}"
    hit = matching[0]
    assert (hit.source.title, hit.source.outlet, hit.source.date_text) == source


def test_quotes_are_verbatim_slices_of_the_article(searcher) -> None:
    answer = searcher.answer("كيف يستخدم تنظيم الدولة مواقع التواصل الاجتماعي؟", k=5)
    assert answer.found and answer.hits
    for hit in answer.hits:
        body = searcher.version.article(hit.article_row).body
        assert body[hit.quote.start : hit.quote.end] == hit.quote.text
        assert len(hit.quote.text) <= 400
        for s, e in hit.quote.highlights:
            assert 0 <= s < e <= len(hit.quote.text)


def test_repeated_story_is_quoted_once(searcher) -> None:
    """The sample tells the ShamiWitness arrest twice (two agencies): the same passage appears once."""
    answer = searcher.answer("من هو صاحب حساب شامي ويتنس الذي اعتقلته الشرطة الهندية؟", k=5, per_article=0)
    texts = [normalize(h.quote.text) for h in answer.hits]
    assert len(texts) == len(set(texts))
    assert sum("17700" in t for t in texts) <= 1


def test_one_relevant_article_fills_the_places_the_cap_would_leave_empty(searcher) -> None:
    answer = searcher.answer("تويتر والجهاديين", k=5)
    per_article: dict[str, int] = {}
    for h in answer.hits:
        per_article[h.source.article_id] = per_article.get(h.source.article_id, 0) + 1
    # The cap of two per article holds only while other articles compete (tests/test_pipeline.py): here
    # no other article is about the subject, so the sample article's further passages fill the places.
    assert len(per_article) == 1 and max(per_article.values()) > 2
    spans = sorted((h.quote.start, h.quote.end) for h in answer.hits)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))  # and never quotes the same sentences twice


@pytest.mark.parametrize(
    "question",
    ["ما هي أفضل وصفة لكعكة الشوكولاتة؟", "What is the recipe for chocolate cake?"],
)
def test_unrelated_question_gets_no_quotes(searcher, question: str) -> None:
    answer = searcher.answer(question, k=5)
    assert not answer.found
    assert answer.hits == []


@pytest.mark.parametrize("noise", ["weather in Paris tomorrow", "How do I bake sourdough bread at home?"])
def test_an_unrelated_phrase_is_less_likely_answered_than_any_on_topic_question(searcher, noise: str) -> None:
    # Known misses of the fitted gate for English: "weather in Paris tomorrow" (e5 finds "air strikes" close to
    # "weather") and, since English words are also matched as the corpus terms they mean, the sourdough question
    # (bread → الطعام, home → منزل reach a chunk about a food company): p ≈ .16 over the threshold .10. The decision
    # must still rank them below every real question (bench/RESULTS.md, "Cross-lingual terms").
    p_noise = searcher.answer(noise).probability
    on_topic = [searcher.answer(q).probability for q, _, _ in KNOWN_ITEMS if q.isascii()]
    assert p_noise is not None and all(p is not None and p_noise < p for p in on_topic), (p_noise, on_topic)
