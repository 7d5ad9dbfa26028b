"""Bad input: each bad file gets a clear, named reason; the good files are still indexed and searchable."""

from __future__ import annotations

import codecs
import shutil
from pathlib import Path

import pytest

from index.articles import load_corpus, parse_text
from index.build import update_index
from index.errors import ArticleError
from index.store import open_current
from retrieval.search import Searcher
from tests.conftest import TEST_CORPUS

GOOD = "عنوان تجريبي عن الأمطار\nجريدة الاختبار\n2020-01-02 10:00\nهطلت أمطار غزيرة على المدينة الساحلية وبلغ منسوب المياه مترين في الشوارع الرئيسية.\n"
WINDY = "عنوان تجريبي عن الرياح\nجريدة الاختبار\n2020-01-02 10:00\nهبت رياح عاتية اقتلعت عشرات الأشجار وقطعت الكهرباء عن الأحياء الشرقية طوال الليل.\n"


def _bad_corpus(root: Path) -> Path:
    shutil.copy(TEST_CORPUS / "cbank-rates.txt", root / "cbank-rates.txt")
    (root / "empty.txt").write_bytes(b"")
    (root / "no-date.txt").write_text("عنوان بلا تاريخ\nجريدة ما\nهذا نص المقال مباشرة بعد اسم الجريدة.\n", encoding="utf-8")
    (root / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4)
    (root / "mixed.jsonl").write_text(
        '{"title": "خبر أول", "source": "وكالة", "date": "2020-02-01", "text": "افتتح المتحف الوطني جناحا جديدا للمخطوطات النادرة."}\n'
        '{"title": "خبر مكسور", "source": "وكالة", "date": \n'
        '{"title": "خبر ثالث", "source": "وكالة", "date": "2020-02-03", "text": "وصلت قافلة المساعدات إلى القرى الجبلية المعزولة."}\n',
        encoding="utf-8",
    )
    (root / "legacy-1256.txt").write_bytes(GOOD.replace("الأمطار", "الثلوج").replace("أمطار غزيرة", "ثلوج كثيفة").encode("cp1256"))
    (root / "bom-crlf.txt").write_bytes(codecs.BOM_UTF8 + WINDY.replace("\n", "\r\n").encode("utf-8"))
    return root


def test_each_bad_file_gets_its_own_clear_reason(tmp_path: Path) -> None:
    load = load_corpus(_bad_corpus(tmp_path))
    reasons = {(e.path, e.line): str(e) for e in load.rejected}
    assert reasons[("empty.txt", None)] == "empty.txt: empty file"
    assert "line 3: no valid date" in reasons[("no-date.txt", 3)]
    assert "binary file" in reasons[("image.txt", None)]
    assert reasons[("mixed.jsonl", 2)].startswith("mixed.jsonl: line 2: malformed JSON")
    assert len(load.rejected) == 4
    titles = {a.title for a in load.articles}
    assert {"خبر أول", "خبر ثالث", "عنوان تجريبي عن الثلوج", "عنوان تجريبي عن الرياح"} <= titles
    assert "legacy-1256.txt: not UTF-8; decoded as Windows-1256 (cp1256)" in load.notices


def test_bom_and_crlf_are_invisible_in_the_parsed_article(tmp_path: Path) -> None:
    load = load_corpus(_bad_corpus(tmp_path))
    article = next(a for a in load.articles if a.path == "bom-crlf.txt")
    assert article.title == "عنوان تجريبي عن الرياح"
    assert "\r" not in article.body and "\ufeff" not in article.title
    assert article.date_text == "2020-01-02 10:00"


def test_windows_1256_text_is_decoded_not_mangled(tmp_path: Path) -> None:
    load = load_corpus(_bad_corpus(tmp_path))
    article = next(a for a in load.articles if a.path == "legacy-1256.txt")
    assert article.encoding == "cp1256"
    assert "ثلوج كثيفة" in article.body


def test_latin1_bytes_are_refused_not_guessed(tmp_path: Path) -> None:
    (tmp_path / "latin.txt").write_bytes("Titre\nJournal\n2020-01-01 10:00\nL'été fut très chaud à Paris.\n".encode("latin-1"))
    (err,) = load_corpus(tmp_path).rejected
    assert "not valid UTF-8" in str(err) and "latin.txt" in str(err)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("عنوان فقط\n", "line 1: only a title"),
        ("عنوان\nجريدة\n2020-13-45 10:00\nنص.\n", "line 3: no valid date: expected YYYY-MM-DD HH:MM after the outlet line, found '2020-13-45 10:00'"),
        ("عنوان\nجريدة\n2020-01-01 10:00\n", "line 4: title and header only"),
    ],
)
def test_header_problems_name_the_line(text: str, message: str) -> None:
    with pytest.raises(ArticleError) as info:
        parse_text(text, "a.txt")
    assert str(info.value).startswith("a.txt: ") and message in str(info.value)


def test_bad_files_do_not_stop_the_build_and_good_ones_are_searchable(tmp_path: Path, embedder) -> None:  # noqa: ANN001
    (tmp_path / "corpus").mkdir()
    corpus = _bad_corpus(tmp_path / "corpus")
    report = update_index(corpus, tmp_path / "index", embedder)
    assert report.switched and report.added == 5 and len(report.rejected) == 4
    searcher = Searcher(open_current(tmp_path / "index"), embedder)
    for question, expected in [
        ("كم أصبح سعر الفائدة؟", "5.25"),
        ("ماذا افتتح المتحف الوطني؟", "مخطوطات"),
        ("إلى أين وصلت قافلة المساعدات؟", "القرى الجبلية"),
        ("ماذا حدث للثلوج في المدينة الساحلية؟", "ثلوج كثيفة"),
        # (asked in Arabic: over five one-line articles an English "winds" has no corpus word near it, its translated
        # terms are noise, and the winds article falls below the decision as a second hit: bench/RESULTS.md)
        ("ماذا فعلت الرياح العاتية؟", "رياح عاتية"),
    ]:
        answer = searcher.answer(question, k=3)
        assert any(expected in h.quote.text for h in answer.hits), (question, [h.quote.text for h in answer.hits])
