"""`newsqa index update` and `newsqa index status` end to end, with the real e5 model."""

from __future__ import annotations

from pathlib import Path

from bench.corpusgen import correct_article, write_corpus
from bot.cli import main


def test_update_and_status_commands(tmp_path: Path, models_dir: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("NEWSQA_MODELS_DIR", str(models_dir))
    corpus, index_dir = tmp_path / "corpus", tmp_path / "index"
    write_corpus(corpus, 6)
    (corpus / "عنوان فقط.txt").write_text("عنوان فقط\n", encoding="utf-8")
    args = ["index", "update", "--corpus", str(corpus), "--index-dir", str(index_dir), "--no-progress"]

    assert main(args) == 0
    out = capsys.readouterr().out
    assert "added 6, changed 0, removed 0, unchanged 0, rejected 1" in out
    assert "now at v000001" in out and "full rebuild: no previous index" in out
    assert "rejected 1 input(s):\n  عنوان فقط.txt: line 1: only a title" in out

    correct_article(corpus / "art-00002.txt")
    (corpus / "art-00004.txt").unlink()
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "added 0, changed 1, removed 1, unchanged 4, rejected 1" in out and "now at v000002" in out

    assert main(args) == 0
    out = capsys.readouterr().out
    assert "added 0, changed 0, removed 0, unchanged 5, rejected 1" in out
    assert "(0 embedded)" in out and "no changes; v000002 stays current" in out

    assert main(["index", "status", "--index-dir", str(index_dir)]) == 0
    out = capsys.readouterr().out
    assert "version v000002; on disk: v000001, v000002" in out
    assert "model:    intfloat/multilingual-e5-small (dim 384" in out
    assert "contents: 5 articles," in out
    assert "dates:    20" in out and " … 20" in out
    assert "(added 0, changed 1, removed 1, unchanged 4, rejected 1)" in out


def test_status_without_an_index_says_how_to_build_one(tmp_path: Path, capsys) -> None:
    assert main(["index", "status", "--index-dir", str(tmp_path / "none")]) == 1
    assert "build one with `newsqa index build`" in capsys.readouterr().err
