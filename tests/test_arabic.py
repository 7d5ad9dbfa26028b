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
    assert stem("مدينه") == "مدين"  # an ending never leaves a two-letter stem (مد)
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


# --- news-text matching: clitics, joined handles and hashtags, figures in words -------------------
def test_clitics_and_pronouns_come_off_without_cutting_short_words() -> None:
    from index.arabic import stem

    n = normalize
    # Preposition written onto the word, pronoun suffix, ta marbuta before the pronoun.
    assert stem(n("بمدرستهم")) == stem(n("المدرسة")) == stem(n("مدرسة"))
    assert stem(n("وحكومتها")) == stem(n("الحكومة"))
    assert stem(n("لمسلميهم")) == stem(n("المسلمين"))
    assert stem(n("قواتهم")) == stem(n("القوات"))
    # Short words and words that only look inflected stay whole.
    for word in ("بلد", "كبير", "لندن", "تفاهم", "محاكم", "اماكن", "احيانا", "لاعب", "بنك", "لجنة"):
        assert stem(n(word)) in (n(word), n(word)[:-1]), word  # at most a final ه/ة
    assert stem(n("لاعبين")) == stem(n("لاعب")) == "لاعب"


def test_question_pairs_find_a_joined_handle() -> None:
    from index.arabic import question_terms

    doc = terms("مسؤول عن موقع @شاميويتنس الذي جمع 17700 متتبع")
    question = question_terms("كم عدد متابعي حساب شامي ويتنس؟")
    assert "شاميويتنس" in doc
    assert "شاميويتنس" in question
    assert set(terms("كم عدد متابعي حساب شامي ويتنس؟")) <= set(question)  # a superset of terms()
    # Pairs never jump over a function word or punctuation.
    assert "حسابشامي" not in question_terms("حساب، شامي")
    assert not any("في" in t for t in question_terms("مدينة في بغداد"))


def test_hashtag_and_camel_case_handle_split_into_words() -> None:
    assert {stem("بغداد"), "يوم"} <= set(terms("انتشر وسم #بغداد_اليوم بسرعة"))
    assert set(terms("بغداد اليوم")) <= set(terms("#بغداد_اليوم"))
    assert {"shami", "witness", "shamiwitness"} <= set(terms("@ShamiWitness"))


def test_figures_written_in_words_are_also_terms() -> None:
    assert "3000" in terms("تضرر ثلاثة آلاف منزل")
    assert "ثلاث" in terms("تضرر ثلاثة آلاف منزل")  # the words stay too
    assert "15" in terms("افتتحت خمسة عشر مدرسة")
    assert "17700" in terms("جمع 17,700 متتبع")
    assert "3000000" in terms("خسائر بقيمة 3 ملايين دولار")
    assert set(terms("3000 منزل")) & set(terms("ثلاثة آلاف منزل")) >= {"3000"}


def test_term_spans_point_into_the_original_text() -> None:
    from index.arabic import term_spans

    text = "وجمع حساب @شاميويتنس ثلاثة آلاف متتبع في #بغداد_اليوم"
    spans = term_spans(text, question=True)
    pieces = {t.term: text[t.start : t.end] for t in spans}
    assert pieces["3000"] == "ثلاثة آلاف"
    assert pieces["شاميويتنس"] == "شاميويتنس"
    assert pieces[stem("بغداد")] == "بغداد"
    assert not any(t.startswith("حساب") and t != "حساب" for t in pieces)  # "@" is not a space: no pair
