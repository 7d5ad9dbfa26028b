"""Files real operators drop into the corpus: each loads or gets its own clear reason, and the build goes on."""

from __future__ import annotations

import codecs
import json
import os
import zlib
from pathlib import Path

import pytest

from index.articles import load_corpus
from index.build import BuildOptions, update_index
from index.store import open_current
from tests.fakes import HashEmbedder

BODY = (
    "أعلنت البلدية افتتاح الحديقة العامة الجديدة في حي الزهور بعد عامين من العمل.\n"
    "وقال رئيس البلدية إن الحديقة تضم ملاعب للأطفال ومسارا للدراجات.\n"
)


def article(title: str, date: str = "2024-03-05 10:30", outlet: str = "جريدة الصباح", body: str = BODY) -> str:
    return f"{title}\n{outlet}\n{date}\n{body}"


def png_bytes() -> bytes:
    """A small but real PNG (signature, IHDR, IDAT, IEND)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    raw = b"".join(b"\x00" + bytes([x % 256, 0, 255 - x % 256]) * 16 for x in range(16))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", (16).to_bytes(4, "big") * 2 + b"\x08\x02\x00\x00\x00")
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


# name -> file bytes, and what must come of it: ("ok", encoding, title) or ("rejected", reason, line)
ACCEPTED = {
    "utf8.txt": (article("خبر بترميز يو تي إف 8").encode("utf-8"), "utf-8", "خبر بترميز يو تي إف 8"),
    "utf8-bom-crlf.txt": (
        codecs.BOM_UTF8 + article("خبر ببادئة ونهايات ويندوز").replace("\n", "\r\n").encode("utf-8"),
        "utf-8-sig",
        "خبر ببادئة ونهايات ويندوز",
    ),
    "utf16.txt": (article("خبر بترميز يو تي إف 16").encode("utf-16"), "utf-16", "خبر بترميز يو تي إف 16"),
    "utf16le-nobom.txt": (article("خبر يو تي إف 16 بلا بادئة").encode("utf-16-le"), "utf-16-le", "خبر يو تي إف 16 بلا بادئة"),
    "utf16be-nobom.txt": (article("خبر يو تي إف 16 كبير").encode("utf-16-be"), "utf-16-be", "خبر يو تي إف 16 كبير"),
    "windows-1256.txt": (article("خبر بترميز ويندوز العربي").encode("cp1256"), "cp1256", "خبر بترميز ويندوز العربي"),
    "arabic digits.txt": (article("خبر بأرقام عربية", date="٢٠٢٤-٠٣-٠٦ ١١:٠٠").encode(), "utf-8", "خبر بأرقام عربية"),
    "خبر الحديقة.txt": (article("خبر باسم ملف عربي").encode(), "utf-8", "خبر باسم ملف عربي"),
    "name with spaces.txt": (article("خبر باسم ملف فيه مسافات").encode(), "utf-8", "خبر باسم ملف فيه مسافات"),
}

REJECTED = {
    "empty.txt": (b"", "empty file", None),
    "blank.txt": (b"\n \r\n\t\n", "empty file", None),
    "photo.png": (png_bytes(), "binary file", None),
    "noise.bin": (bytes(range(256)) * 20, "binary file", None),
    "latin1.txt": ("Café résumé naïve\nLe Monde\n2024-01-01\nTexte français é.\n".encode("latin-1"),
                   "not valid UTF-8 (byte 3) and not recognisable Windows-1256", None),
    "no-date.txt": (f"خبر بلا تاريخ\nجريدة الصباح\n{BODY}".encode(), "no valid date", 3),
    "bad-date.txt": (article("خبر بتاريخ غريب", date="صباح الأمس").encode(), "found 'صباح الأمس'", 3),
    "title-only.txt": ("عنوان وحده بلا أي شيء آخر\n".encode(), "only a title", 1),
    "header-only.txt": (article("عنوان وترويسة فقط", body="").encode(), "no body text", 4),
}


@pytest.fixture
def messy_corpus(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    root.mkdir()
    for name, (data, *_rest) in {**ACCEPTED, **REJECTED}.items():
        (root / name).write_bytes(data)
    return root


def _by_path(load) -> tuple[dict, dict]:  # noqa: ANN001
    return {a.path: a for a in load.articles}, {(e.path, e.line): e.reason for e in load.rejected}


def test_every_encoding_and_name_loads_with_the_original_text(messy_corpus: Path) -> None:
    load = load_corpus(messy_corpus)
    articles, _ = _by_path(load)
    for name, (_data, encoding, title) in ACCEPTED.items():
        a = articles[name]
        assert (a.encoding, a.title) == (encoding, title), name
        assert "\r" not in a.body and "\ufeff" not in a.body
        assert a.body.startswith("أعلنت البلدية") and a.source == "جريدة الصباح"
    assert str(articles["arabic digits.txt"].date) == "2024-03-06 11:00:00"
    # Decoding anything but UTF-8 is never silent.
    assert "windows-1256.txt: not UTF-8; decoded as Windows-1256 (cp1256)" in load.notices
    assert "utf16le-nobom.txt: not UTF-8; decoded as UTF-16-LE" in load.notices


def test_each_bad_file_gets_its_own_reason(messy_corpus: Path) -> None:
    _, rejected = _by_path(load_corpus(messy_corpus))
    for name, (_data, reason, line) in REJECTED.items():
        assert reason in rejected[(name, line)], (name, rejected.get((name, line)))
    assert len(rejected) == len(REJECTED)


def test_oversized_file_is_rejected_by_size_and_accepted_under_a_higher_limit(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    root.mkdir()
    paragraph = "هذه فقرة طويلة من تقرير مطول عن الموازنة العامة ونفقاتها وإيراداتها في السنوات الأخيرة.\n"
    big = article("تقرير ضخم جدا", body=paragraph * (20 * 1024 * 1024 // len(paragraph.encode())))
    (root / "huge report.txt").write_text(big, encoding="utf-8")
    (root / "small.txt").write_text(article("خبر صغير"), encoding="utf-8")
    assert (root / "huge report.txt").stat().st_size >= 20 * 1024 * 1024 - 200
    load = load_corpus(root)
    assert [a.path for a in load.articles] == ["small.txt"]
    (err,) = load.rejected
    assert err.path == "huge report.txt" and "file too large for one article (21.0 MB > 5.2 MB limit)" in err.reason
    roomy = load_corpus(root, max_bytes=32 * 1024 * 1024)
    assert sorted(a.path for a in roomy.articles) == ["huge report.txt", "small.txt"] and not roomy.rejected


def test_jsonl_broken_lines_are_reported_by_number_and_good_lines_kept(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    root.mkdir()
    good = {"title": "خبر من ملف سطور", "source": "وكالة", "date": "2024-01-02 08:00", "text": "نص الخبر الأول كاملا."}
    lines = [
        json.dumps(good, ensure_ascii=False),
        '{"title": "مقطوع", "source": "وكالة", "date": "2024-01-0',  # cut off mid-write
        "",
        json.dumps({**good, "title": "تاريخ خاطئ", "date": "غدا"}, ensure_ascii=False),
        json.dumps({"id": "a-1", **good, "title": "خبر له معرف"}, ensure_ascii=False),
        json.dumps({"id": "a-1", **good, "title": "معرف مكرر", "text": "نص آخر تماما."}, ensure_ascii=False),
        "[1, 2, 3]",
        json.dumps({**good, "title": "بلا نص", "text": ""}, ensure_ascii=False),
        json.dumps({**good, "title": "خبر أخير سليم", "date": "2024-01-03"}, ensure_ascii=False),
    ]
    (root / "feed.jsonl").write_bytes(codecs.BOM_UTF8 + "\r\n".join(lines).encode() + b"\n\xff\xfe bad bytes\n")
    load = load_corpus(root)
    assert [a.title for a in load.articles] == ["خبر من ملف سطور", "خبر له معرف", "خبر أخير سليم"]
    assert [a.path for a in load.articles] == ["feed.jsonl:1", "feed.jsonl:5", "feed.jsonl:9"]
    reasons = {e.line: e.reason for e in load.rejected if e.path == "feed.jsonl"}
    assert set(reasons) == {2, 4, 6, 7, 8, 10}
    assert "malformed JSON" in reasons[2]
    assert "not a date" in reasons[4]
    assert "duplicate article id 'a-1', already used by feed.jsonl:5" in reasons[6]
    assert "not a JSON object" in reasons[7]
    assert "missing field(s): text" in reasons[8]
    assert "not valid UTF-8" in reasons[10]
    assert str(load.rejected[0]).startswith("feed.jsonl: line 2: ")


def test_identical_texts_and_duplicate_ids_keep_the_first(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    root.mkdir()
    (root / "a-original.txt").write_text(article("خبر منسوخ"), encoding="utf-8")
    (root / "b copy.txt").write_text(article("خبر منسوخ"), encoding="utf-8")
    (root / "c-other-body.txt").write_text(article("خبر منسوخ", body="نص مختلف تماما عن الأصل.\n"), encoding="utf-8")
    load = load_corpus(root)
    assert [a.path for a in load.articles] == ["a-original.txt"]
    reasons = {e.path: e.reason for e in load.rejected}
    assert reasons["b copy.txt"] == "duplicate: the same article as a-original.txt (kept that one)"
    assert reasons["c-other-body.txt"].startswith("duplicate article id")
    assert "already used by a-original.txt" in reasons["c-other-body.txt"]


def test_symlinks_leading_outside_are_not_followed(tmp_path: Path) -> None:
    root, outside = tmp_path / "corpus", tmp_path / "private"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text(article("ملف خارج المجلد"), encoding="utf-8")
    (root / "inside.txt").write_text(article("خبر داخل المجلد"), encoding="utf-8")
    os.symlink(outside / "secret.txt", root / "link to secret.txt")
    os.symlink(outside, root / "linked-folder")
    os.symlink(root / "inside.txt", root / "alias.txt")  # inside: the file is already listed under its own name
    os.symlink(tmp_path / "missing.txt", root / "dangling.txt")
    (root / ".hidden.txt").write_text(article("مخفي"), encoding="utf-8")
    load = load_corpus(root)
    assert [a.path for a in load.articles] == ["inside.txt"]
    reasons = {e.path: e.reason for e in load.rejected}
    assert reasons["link to secret.txt"] == f"symlink to {outside / 'secret.txt'} outside the corpus folder: not followed"
    assert reasons["linked-folder"] == f"symlink to folder {outside} outside the corpus folder: not followed"
    assert reasons["dangling.txt"] == "symlink to a missing file: not followed"
    assert len(load.rejected) == 3


def test_build_goes_on_through_every_bad_input(messy_corpus: Path, tmp_path: Path) -> None:
    os.symlink(messy_corpus / "utf8.txt", messy_corpus / "alias.txt")
    (tmp_path / "outside.txt").write_text(article("خارج"), encoding="utf-8")
    os.symlink(tmp_path / "outside.txt", messy_corpus / "out link.txt")
    (messy_corpus / "feed.jsonl").write_text('{"title": "سليم", "source": "وكالة", "date": "2024-01-01", "text": "نص."}\n{oops\n')
    index_dir = tmp_path / "index"
    report = update_index(messy_corpus, index_dir, HashEmbedder(), BuildOptions())
    assert report.switched and report.added == len(ACCEPTED) + 1 == report.total_articles
    assert len(report.rejected) == len(REJECTED) + 2
    version = open_current(index_dir)
    paths = {r[0] for r in version.db.execute("SELECT path FROM articles")}
    assert paths == set(ACCEPTED) | {"feed.jsonl:1"}
    # The stored body is the decoded original: a Windows-1256 article reads back as the Arabic it was.
    record = version.article_by_id(next(a.id for a in load_corpus(messy_corpus).articles if a.path == "windows-1256.txt"))
    assert record.body == BODY.strip("\n") and record.title == "خبر بترميز ويندوز العربي"
