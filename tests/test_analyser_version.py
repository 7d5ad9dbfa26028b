"""The analyser version moves with index/arabic.py's output: a change without a bump fails here.

Indexes record ANALYSER_VERSION; stored BM25 terms and sentence-vector offsets are only valid for the
analyser that produced them. So the output of every analyser function (and the chunking built on them)
on a fixed multilingual sample is hashed and compared with the golden hash recorded for the version.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from index import arabic
from index.arabic import ANALYSER_VERSION, clause_spans, normalize, sentence_spans, stem, terms, word_spans
from index.articles import parse_text
from index.chunking import chunk_article, chunk_sentences

# One golden hash per analyser version; add a line when you bump the version.
GOLDEN = {
    1: "cc5d8df1153049e01668a0332100e0b8e7660957877af952856d22ebd71531dc",
    2: "bd1e557bfc480aa2d3c7bfe3d3b03b629e3be416cb19c96be9391f58a905166b",
}

SAMPLE = [
    "قالَ المتحدثُ إنَّ الحكومةَ ستُعلنُ القرارَ غداً، وأضافَ: «لن نتراجعَ». هل سيحدث ذلك؟ ربما…",
    "أعلنت الشركة عن أرباح بلغت ١٢٣٫٥ مليون دولار في عام ٢٠١٤؛ وقالت إن المبيعات ارتفعت بنسبة ۱۵٪.",
    "The Panthers' defense gave up 308 points. Dr. Smith said: \"It's over!\" — and left (at 3.30 p.m.).",
    "وبالإضافة إلى ذلك، فإن المستشفيات والمدارس والجامعات، التي تضررت بفعل الفيضانات، ستُرمم خلال أشهر، "
    "بحسب ما أكدته الوزارة، التي قالت إن الكلفة الإجمالية، وفق التقديرات الأولية، تتجاوز خمسين مليون دينار، "
    "وإن الأعمال ستبدأ فور انحسار المياه، على أن تُنجز المرحلة الأولى قبل بداية العام الدراسي المقبل، "
    "في حين طالب نواب بتحقيق مستقل، معتبرين أن التحذيرات المبكرة، التي أطلقها خبراء الأرصاد، جرى تجاهلها.",
    "ـــ الأخبــار العاجلة ـــ\nإستقالة الوزير\nأكد مصدر مسؤول أن الوزير قدّم إستقالته إلى رئيس الوزراء. ولم يُعلَّق على ذلك.",
    "Mixed: حساب @ShamiWitness جمع 17,700 متابع على تويتر (Twitter) في 2014-12-11.",
]

ARTICLE = (
    "عنوان الخبر: الفيضانات في الميناء\nجريدة الاختبار\n2014-12-18 10:30\n"
    + "\n".join(SAMPLE[:2])
    + "\nتفاصيل\n"
    + SAMPLE[3]
    + "\n"
    + SAMPLE[4]
    + "\n"
)


def analyser_output() -> dict:
    """Everything the index stores or recomputes from the analyser, on the fixed sample."""
    out: dict = {"texts": []}
    for text in SAMPLE:
        out["texts"].append({
            "normalize": normalize(text),
            "terms": terms(text),
            "terms_all": terms(text, keep_stopwords=True),
            "stems": [stem(normalize(text[t.start : t.end])) for t in word_spans(text)],
            "words": [(t.start, t.end) for t in word_spans(text)],
            "sentences": sentence_spans(text),
            "clauses": clause_spans(text, max_chars=240),
            "clauses_short": clause_spans(text, max_chars=60),
        })
    article = parse_text(ARTICLE, "golden.txt")
    chunks = chunk_article(article, 600, 150) + chunk_article(article, 200, 50)
    out["chunks"] = [(c.start, c.end, c.section, chunk_sentences(article.body, c.start, c.end)) for c in chunks]
    return out


def output_hash() -> str:
    return hashlib.sha256(json.dumps(analyser_output(), ensure_ascii=False, sort_keys=True).encode()).hexdigest()


def test_analyser_output_matches_the_golden_hash_of_its_version() -> None:
    got = output_hash()
    assert ANALYSER_VERSION in GOLDEN, (
        f"no golden hash for ANALYSER_VERSION {ANALYSER_VERSION}: add {ANALYSER_VERSION}: \"{got}\" to GOLDEN"
    )
    assert got == GOLDEN[ANALYSER_VERSION], (
        f"index/arabic.py output changed without a version change: bump ANALYSER_VERSION and update the golden "
        f"hash in tests/test_analyser_version.py (new output hash {got}); indexes built before will be rebuilt in full"
    )


def test_the_hash_notices_a_one_suffix_change(monkeypatch: pytest.MonkeyPatch) -> None:
    before = output_hash()
    monkeypatch.setattr(arabic, "_stem", arabic.make_stemmer(bare_proclitic_min=4, ending_min=3, suffixes=tuple(s for s in arabic._SUFFIXES if s != "ات")))
    arabic_caches = [f for f in vars(arabic).values() if hasattr(f, "cache_clear")]
    for f in arabic_caches:
        f.cache_clear()
    try:
        assert output_hash() != before
    finally:
        monkeypatch.undo()
        for f in arabic_caches:
            f.cache_clear()
