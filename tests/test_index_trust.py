"""What operators rely on around damage: a read-only index, symlink loops, version names, argument checks,
and a bot that keeps answering from the version it has when a new one is damaged."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.corpusgen import write_corpus
from bot.cli import build_parser, main
from bot.settings import Settings
from index import build
from index.articles import load_corpus
from index.build import BuildOptions, update_index
from index.errors import IndexDamagedError
from index.store import CURRENT, VERSIONS, open_current, read_current
from retrieval.search import LiveSearcher, SearchConfig
from tests.bot_harness import OPERATOR_ID, bot_settings, running_bot
from tests.fake_bot_api import FakeBotAPI
from tests.fakes import HashEmbedder
from tests.reindex_helpers import change_corpus, corpus_ids, indexed_ids, version_dirs


@pytest.fixture
def fake_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Settings, "embedder", lambda self: HashEmbedder())
    monkeypatch.setattr(Settings, "search_config", lambda self: SearchConfig(threshold=0.0))


@pytest.fixture
def built(tmp_path: Path) -> tuple[Path, Path]:
    corpus, index_dir = tmp_path / "corpus", tmp_path / "index"
    write_corpus(corpus, 10)
    update_index(corpus, index_dir, HashEmbedder(), BuildOptions())
    return corpus, index_dir


@contextlib.contextmanager
def _read_only(root: Path) -> Iterator[None]:
    """Every file and folder under root without write permission, restored afterwards."""
    modes = {p: p.stat().st_mode for p in [root, *root.rglob("*")]}
    for p, mode in modes.items():
        p.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        yield
    finally:
        for p, mode in modes.items():
            p.chmod(mode)


def test_read_only_index_folder_answers_and_refuses_updates_in_one_line(
    built, fake_model: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus, index_dir = built
    with _read_only(index_dir):
        assert main(["index", "status", "--index-dir", str(index_dir)]) == 0
        assert "integrity: verified" in capsys.readouterr().out
        assert main(["ask", "بكم رفع البنك المركزي سعر الفائدة؟", "--index-dir", str(index_dir)]) == 0
        capsys.readouterr()
        if os.geteuid() == 0:  # root writes through mode bits: make writes fail as a read-only mount does
            real_open = os.open

            def read_only_open(path, flags, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
                if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
                    raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
                return real_open(path, flags, *args, **kwargs)

            monkeypatch.setattr(build.os, "open", read_only_open)
        assert main(["index", "update", "--corpus", str(corpus), "--index-dir", str(index_dir), "--no-progress"]) == 1
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and "Traceback" not in err
        reason = "read-only file system" if os.geteuid() == 0 else "permission denied"
        assert err.startswith(f"newsqa: cannot write to {index_dir}: {reason}"), err
        monkeypatch.undo()
    assert read_current(index_dir) == "v000001"


def test_a_symlink_loop_is_one_rejected_input(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    write_corpus(corpus, 4)
    os.symlink(corpus / "b.txt", corpus / "a.txt")
    os.symlink(corpus / "a.txt", corpus / "b.txt")
    os.symlink(corpus / "self-dir", corpus / "self-dir")
    load = load_corpus(corpus)
    assert {e.path: e.reason for e in load.rejected} == {
        "a.txt": "symlink loop: not followed",
        "b.txt": "symlink loop: not followed",
        "self-dir": "symlink loop: not followed",
    }
    assert len(load.articles) == 4
    report = update_index(corpus, tmp_path / "index", HashEmbedder(), BuildOptions())
    assert report.switched and len(report.rejected) == 3 and report.total_articles == 4


def test_version_names_are_never_reused(built) -> None:
    corpus, index_dir = built
    (index_dir / VERSIONS / "v000001" / "manifest.json").unlink()  # the current version loses its manifest
    report = update_index(corpus, index_dir, HashEmbedder(), BuildOptions())
    assert report.version == "v000002" and report.full_rebuild_reason == "previous version v000001 is damaged (manifest.json: missing)"
    change_corpus(corpus, 10)
    assert update_index(corpus, index_dir, HashEmbedder(), BuildOptions()).version == "v000003"
    assert version_dirs(index_dir) == ["v000002", "v000003"]  # the damaged v000001 was swept away
    shutil.rmtree(index_dir / VERSIONS)  # every version folder gone, CURRENT too: names still move on
    (index_dir / CURRENT).unlink()
    assert update_index(corpus, index_dir, HashEmbedder(), BuildOptions()).version == "v000004"
    (index_dir / CURRENT).write_bytes(b"\xff\xfe")  # an unreadable pointer never blocks an update
    report = update_index(corpus, index_dir, HashEmbedder(), BuildOptions())
    assert report.version == "v000005" and "the index pointer CURRENT is damaged (CURRENT: not valid UTF-8)" in report.full_rebuild_reason
    assert indexed_ids(index_dir) == corpus_ids(corpus)


@pytest.mark.parametrize(
    "args",
    [["-k", "0"], ["-k", "-1"], ["-k", "x"], ["--per-article", "-1"], ["--per-article", "1.5"]],
)
def test_bad_counts_are_argparse_errors(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["ask", "سؤال", *args])
    assert info.value.code == 2
    assert "error: argument" in capsys.readouterr().err


def test_per_article_zero_means_no_limit_and_k_one_is_fine() -> None:
    args = build_parser().parse_args(["ask", "سؤال", "-k", "1", "--per-article", "0"])
    assert (args.k, args.per_article) == (1, 0)


def test_a_damaged_new_version_is_refused_and_the_old_one_keeps_answering(built) -> None:
    corpus, index_dir = built
    live = LiveSearcher(index_dir, HashEmbedder(), SearchConfig(threshold=0.0))
    assert live.get().version.name == "v000001"
    change_corpus(corpus, 10)
    update_index(corpus, index_dir, HashEmbedder(), BuildOptions())
    vectors = index_dir / VERSIONS / "v000002" / "vectors.npy"
    data = bytearray(vectors.read_bytes())
    data[len(data) // 2] ^= 0xFF
    vectors.write_bytes(bytes(data))
    assert live.refresh().version.name == "v000001"
    assert live.problem == "index version v000002 is damaged (vectors.npy: checksum mismatch); run newsqa index update to rebuild"
    with pytest.raises(IndexDamagedError):
        open_current(index_dir)


async def test_stats_tells_operators_the_new_version_is_damaged(built_index: Path, tmp_path: Path, embedder) -> None:  # noqa: ANN001
    index_dir = tmp_path / "index"
    shutil.copytree(built_index, index_dir)
    api = await FakeBotAPI().start()
    try:
        async with running_bot(bot_settings(api, index_dir, tmp_path), embedder) as newsbot:
            api.push_message("/stats", user_id=OPERATOR_ID)
            [first] = await api.wait_for("sendMessage")
            assert "Not serving" not in first.text
            shutil.copytree(index_dir / VERSIONS / "v000001", index_dir / VERSIONS / "v000002")
            (index_dir / VERSIONS / "v000002" / "dense.faiss").write_bytes(b"")
            (index_dir / CURRENT).write_text("v000002\n", encoding="utf-8")
            await asyncio.to_thread(newsbot.live.refresh)
            api.push_message("/stats", user_id=OPERATOR_ID)
            sent = await api.wait_for("sendMessage", 2)
        stats = sent[1].text
        assert stats.startswith("<b>Index</b> v000001:")
        assert "<b>Not serving the newest version</b>: index version v000002 is damaged (dense.faiss: size 0 bytes" in stats
    finally:
        await api.stop()
