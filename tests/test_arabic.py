"""Arabic normalisation, terms and sentence/clause splitting keep offsets into the original."""

from index.arabic import clause_spans, normalize, sentence_spans, stem, terms, word_spans
from index.articles import parse_text
from index.chunking import chunk_article
from tests.conftest import SAMPLE_CORPUS


def test_normalize_folds_spelling_variants_and_digits() -> None:
    assert normalize("أَحْمَدُ") == "احمد"
    assert normalize("إسلام آمن ٱلله") == "اسلام امن الله"
    assert normalize("مستشفى المدينة") == "مستشفي المدينه"
    assert normalize("عـــام ٢٠١٤ و۱۷۷۰۰") == "عام 2014 و17700"
    assert normalize("ShamiWitness") == "shamiwitness"


def test_terms_stem_and_drop_function_words() -> None:
    assert terms("كيف يُجنّد التنظيمُ الشبابَ عبر الإنترنت؟") == ["يجند", "تنظيم", "شباب", "عبر", "انترنت"]
    assert stem("والمسلمون") == stem("المسلمين") == "مسلم"


def test_word_spans_point_into_the_original_text() -> None:
    text = "قال المُحافِظُ: «الفائدة ٥٫٢٥»"
    for tok in word_spans(text):
        assert normalize(text[tok.start : tok.end]) == tok.norm


def test_sentences_split_on_stops_not_on_decimals() -> None:
    text = "ارتفع التضخم إلى 7.8 في المئة. وقال المحافظ \"سنواصل\". هل ينجح؟ نعم"
    parts = [text[s:e] for s, e in sentence_spans(text)]
    assert parts == ["ارتفع التضخم إلى 7.8 في المئة.", "وقال المحافظ \"سنواصل\".", "هل ينجح؟", "نعم"]


def test_long_comma_chained_paragraph_is_cut_into_clauses() -> None:
    text = "، ".join(f"وقال المسؤول رقم {i} إن الوضع يتحسن ببطء شديد في المنطقة" for i in range(20)) + "."
    spans = clause_spans(text, max_chars=240)
    assert len(spans) > 5
    assert all(e - s <= 240 for s, e in spans)
    assert "".join(text[s:e] for s, e in spans).replace(" ", "") == text.replace(" ", "")


def test_sample_article_chunks_are_exact_slices_with_sections() -> None:
    path = next(SAMPLE_CORPUS.glob("*.txt"))
    article = parse_text(path.read_text(encoding="utf-8"), path.name)
    chunks = chunk_article(article)
    assert len(chunks) > 20
    assert all(article.body[c.start : c.end] == c.text for c in chunks)
    assert all(len(c.text) <= 700 for c in chunks)
    sections = {c.section for c in chunks}
    assert {None, "ملاحقة حسابات الجهاديين", "وحدة الحرب الالكترونية", "صمت يثير التساؤلات"} <= sections
    # Headings are sections, never chunk text on their own.
    assert not any(c.text == "محاربة الجهاديين" for c in chunks)
