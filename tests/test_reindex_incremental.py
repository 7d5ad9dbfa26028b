"""Incremental reindexing: content-hash reuse, versions and pruning, model changes, the lock, progress."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from bench.corpusgen import correct_article, write_corpus
from bot.cli import cmd_index_build, main
from bot.settings import Settings
from index.build import LOCK, BuildOptions, BuildProgress, IndexLock, update_index
from index.embedder import SentenceTransformerEmbedder
from index.errors import IndexLockedError
from index.store import IndexVersion, list_versions, open_current, read_current
from tests.fakes import HashEmbedder
from tests.reindex_helpers import answers, change_corpus, corpus_ids, indexed_ids, version_dirs

N = 40


@pytest.fixture
def built(tmp_path: Path) -> tuple[Path, Path]:
    """A generated 40-article corpus and its first version, built with the test embedder."""
    corpus, index_dir = tmp_path / "corpus", tmp_path / "index"
    write_corpus(corpus, N)
    report = update_index(corpus, index_dir, HashEmbedder(), BuildOptions(batch_size=8))
    assert report.added == N and report.switched and report.version == "v000001"
    return corpus, index_dir


def _vectors_by_chunk(index_dir: Path, name: str | None = None) -> dict[str, np.ndarray]:
    version = IndexVersion(index_dir / "versions" / (name or read_current(index_dir)))
    ids = [r[0] for r in version.db.execute("SELECT id FROM chunks ORDER BY row")]
    vectors = np.asarray(version.vectors)
    return {cid: vectors[i].copy() for i, cid in enumerate(ids)}


def test_unchanged_rerun_embeds_nothing_and_writes_nothing(built) -> None:
    corpus, index_dir = built
    before = answers(index_dir)
    embedder = HashEmbedder()
    report = update_index(corpus, index_dir, embedder, BuildOptions())
    assert embedder.passage_calls == 0 and embedder.passages_encoded == 0
    assert (report.added, report.changed, report.removed, report.unchanged) == (0, 0, 0, N)
    assert not report.switched and report.version == "v000001" and report.embedded_chunks == 0
    assert version_dirs(index_dir) == ["v000001"]
    assert answers(index_dir) == before


def test_unchanged_rerun_never_loads_the_real_model(built_index: Path, combined_corpus: Path, models_dir: Path) -> None:
    fresh = SentenceTransformerEmbedder(models_dir=models_dir)
    report = update_index(combined_corpus, built_index, fresh, BuildOptions())
    assert not report.switched and report.unchanged == report.total_articles > 0
    assert fresh._model is None and fresh._onnx is None  # the dimension came from the configs: no load (torch or ONNX)


def test_changes_embed_only_new_and_corrected_articles(built) -> None:
    corpus, index_dir = built
    old_vectors = _vectors_by_chunk(index_dir)
    change_corpus(corpus, N)
    embedder = HashEmbedder()
    report = update_index(corpus, index_dir, embedder, BuildOptions())
    assert (report.added, report.changed, report.removed, report.unchanged) == (3, 2, 1, N - 3)
    assert report.switched and report.version == "v000002" and report.full_rebuild_reason is None

    new_vectors = _vectors_by_chunk(index_dir)
    current = open_current(index_dir)
    touched = {"art-00002.txt", "art-00005.txt", f"art-{N + 1:05d}.txt", f"art-{N + 2:05d}.txt", f"art-{N + 3:05d}.txt"}
    rows = current.db.execute("SELECT c.id, a.path FROM chunks c JOIN articles a ON a.row = c.article_row").fetchall()
    touched_chunks = [cid for cid, path in rows if path in touched]
    assert embedder.passages_encoded == report.embedded_chunks == len(touched_chunks)
    for cid, path in rows:  # untouched articles carry their stored vectors over bit for bit
        if path not in touched:
            assert np.array_equal(new_vectors[cid], old_vectors[cid])
    assert indexed_ids(index_dir) == corpus_ids(corpus)
    assert "art-00007.txt" not in {p for _, p in rows}
    # The previous version stays loadable beside the new one.
    assert list_versions(index_dir) == ["v000001", "v000002"]
    assert IndexVersion(index_dir / "versions" / "v000001").n_articles == N


def test_keep_versions_prunes_oldest_never_current(built) -> None:
    corpus, index_dir = built
    for i in range(1, 5):
        correct_article(corpus / f"art-{i:05d}.txt")
        update_index(corpus, index_dir, HashEmbedder(), BuildOptions(keep_versions=3))
    assert list_versions(index_dir) == ["v000003", "v000004", "v000005"]
    assert read_current(index_dir) == "v000005"
    for name in list_versions(index_dir):
        IndexVersion(index_dir / "versions" / name).close()
    # Asking for fewer than two still keeps the previous one for searchers mid-question.
    correct_article(corpus / "art-00009.txt")
    update_index(corpus, index_dir, HashEmbedder(), BuildOptions(keep_versions=1))
    assert list_versions(index_dir) == ["v000005", "v000006"]


def test_keep_versions_setting_refuses_below_two(monkeypatch) -> None:
    monkeypatch.setenv("NEWSQA_KEEP_VERSIONS", "1")
    with pytest.raises(Exception, match="at least 2"):
        Settings()
    monkeypatch.setenv("NEWSQA_KEEP_VERSIONS", "4")
    assert Settings().build_options().keep_versions == 4


@pytest.mark.parametrize(
    ("other", "reason"),
    [
        (HashEmbedder(name="test/other-model", salt="B"), "embedding model changed"),
        (HashEmbedder(dim=32, salt="B"), "embedding dimension changed"),
        (HashEmbedder(salt="B", fingerprint="sha256:" + "b" * 64), "embedding model weights changed"),
    ],
)
def test_model_or_dimension_change_forces_full_rebuild(built, other: HashEmbedder, reason: str) -> None:
    corpus, index_dir = built
    old = open_current(index_dir)
    report = update_index(corpus, index_dir, other, BuildOptions())  # the corpus itself is unchanged
    assert report.switched and report.version == "v000002"
    assert reason in (report.full_rebuild_reason or "")
    assert report.embedded_chunks == report.total_chunks == other.passages_encoded == old.n_chunks
    new = open_current(index_dir)
    assert new.manifest["model"] == {"name": other.name, "dim": other.dim, "backend": "torch", "fingerprint": other.fingerprint, "tokenizer": None}
    assert new.vectors.shape == (old.n_chunks, other.dim) and new.faiss.d == other.dim
    # No vector of the old model survives: every row equals the new model's encoding of its chunk.
    ids = [r[0] for r in new.db.execute("SELECT id FROM chunks ORDER BY row")]
    old_by_id = _vectors_by_chunk(index_dir, "v000001")
    if other.dim == 64:
        assert not any(np.array_equal(new.vectors[i], old_by_id[cid]) for i, cid in enumerate(ids))
    # The old version is untouched and still loads.
    assert IndexVersion(index_dir / "versions" / "v000001").manifest["model"]["name"] == "test/hash-embedder"
    # Next run with the new model is incremental again.
    again = HashEmbedder(name=other.name, dim=other.dim, salt="B", fingerprint=other.fingerprint)
    assert not update_index(corpus, index_dir, again, BuildOptions()).switched and again.passage_calls == 0


def test_chunking_change_forces_full_rebuild(built) -> None:
    corpus, index_dir = built
    report = update_index(corpus, index_dir, HashEmbedder(), BuildOptions(max_chars=400, min_chars=100))
    assert report.switched and report.full_rebuild_reason == "chunking settings changed"
    assert report.embedded_chunks == report.total_chunks


def test_second_build_waits_for_the_first(built) -> None:
    corpus, index_dir = built
    correct_article(corpus / "art-00003.txt")
    held = threading.Event()

    def hold() -> None:
        with IndexLock(index_dir):
            held.set()
            time.sleep(0.6)

    t = threading.Thread(target=hold)
    t.start()
    held.wait(5)
    with pytest.raises(IndexLockedError, match=f"pid {os.getpid()}"):
        update_index(corpus, index_dir, HashEmbedder(), BuildOptions())
    started = time.monotonic()
    report = update_index(corpus, index_dir, HashEmbedder(), BuildOptions(lock_wait_seconds=10))
    assert time.monotonic() - started >= 0.3 and report.changed == 1
    t.join()


def test_stale_and_garbage_locks_are_cleared(built) -> None:
    corpus, index_dir = built
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (index_dir / LOCK).write_text(f"{dead.pid}\n")
    correct_article(corpus / "art-00003.txt")
    assert update_index(corpus, index_dir, HashEmbedder(), BuildOptions()).changed == 1
    assert not (index_dir / LOCK).exists()
    (index_dir / LOCK).write_text("not a pid\n")
    correct_article(corpus / "art-00004.txt")
    assert update_index(corpus, index_dir, HashEmbedder(), BuildOptions()).changed == 1


def test_cli_refuses_a_concurrent_update_with_a_clear_message(built, capsys, monkeypatch) -> None:
    corpus, index_dir = built
    monkeypatch.setenv("NEWSQA_EMBEDDING_MODEL", "test/not-loaded")
    with IndexLock(index_dir):  # a live holder: this very process
        code = main(["index", "update", "--corpus", str(corpus), "--index-dir", str(index_dir)])
    err = capsys.readouterr().err
    assert code == 1
    assert f"another index build (pid {os.getpid()}) is running" in err and str(index_dir / LOCK) in err


def test_progress_reports_rates_and_time_left(built, capsys) -> None:
    corpus, index_dir = built
    change_corpus(corpus, N)
    ticks: list[BuildProgress] = []

    class Slow(HashEmbedder):
        def encode_passages(self, texts, batch_size=32):  # noqa: ANN001, ANN202
            time.sleep(0.01)
            return super().encode_passages(texts, batch_size)

    report = update_index(corpus, index_dir, Slow(), BuildOptions(batch_size=2), progress=ticks.append)
    embedding = [t for t in ticks if t.stage == "embedding"]
    assert [t.chunks_done for t in embedding] == sorted({t.chunks_done for t in embedding})
    assert embedding[-1].chunks_done == embedding[-1].chunks_total == report.embedded_chunks
    assert embedding[-1].articles_done == embedding[-1].articles_total == 5  # 3 new + 2 corrected
    assert all(t.chunks_per_second > 0 and t.articles_per_second >= 0 for t in embedding)
    assert embedding[0].seconds_left > 0 and embedding[-1].seconds_left == 0
    line = embedding[0].line()
    assert "chunks/s" in line and "articles/s" in line and "left" in line
    assert ticks[-1].stage == "writing"


def test_cli_update_prints_counts_rejects_and_progress(built, capsys) -> None:
    corpus, index_dir = built
    change_corpus(corpus, N)
    (corpus / "broken.txt").write_text("عنوان فقط\n", encoding="utf-8")
    (corpus / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4)
    settings = Settings(corpus_dir=corpus, index_dir=index_dir)
    assert cmd_index_build(settings, full=False, progress=True, embedder=HashEmbedder()) == 0
    out, err = capsys.readouterr()
    assert "added 3, changed 2, removed 1, unchanged 37, rejected 2" in out
    assert "now at v000002" in out
    assert "rejected 2 input(s):" in out
    assert "broken.txt: line 1: only a title" in out and "photo.png: binary file" in out
    assert "chunks/s" in err and "articles/s" in err and "left" in err  # non-terminal progress lines

    assert cmd_index_build(settings, full=False, progress=True, embedder=HashEmbedder()) == 0
    out, _ = capsys.readouterr()
    assert "added 0, changed 0, removed 0, unchanged 42, rejected 2" in out and "v000002 stays current" in out

    assert main(["index", "status", "--index-dir", str(index_dir), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["version"] == "v000002" and info["versions_on_disk"] == ["v000001", "v000002"]
    assert info["model"]["name"] == "test/hash-embedder" and info["counts"]["articles"] == 42
    assert info["last_build"]["added"] == 3 and info["last_build"]["rejected"] == 2


def test_renamed_file_updates_its_path_without_embedding(built) -> None:
    corpus, index_dir = built
    (corpus / "art-00003.txt").rename(corpus / "مقال منقول.txt")
    embedder = HashEmbedder()
    report = update_index(corpus, index_dir, embedder, BuildOptions())
    assert (report.added, report.changed, report.removed, report.unchanged) == (0, 0, 0, N)
    assert report.switched and embedder.passages_encoded == 0
    assert "1 unchanged article(s) now in another file" in report.notices[-1]
    paths = {r[0] for r in open_current(index_dir).db.execute("SELECT path FROM articles")}
    assert "مقال منقول.txt" in paths and "art-00003.txt" not in paths


def test_full_build_and_unreadable_previous_version_re_embed_everything(built) -> None:
    corpus, index_dir = built
    embedder = HashEmbedder()
    report = update_index(corpus, index_dir, embedder, BuildOptions(full=True))
    assert report.full_rebuild_reason == "full rebuild requested" and embedder.passages_encoded == report.total_chunks
    (index_dir / "versions" / "v000002" / "dense.faiss").write_bytes(b"garbage")  # disk damage
    embedder = HashEmbedder()
    report = update_index(corpus, index_dir, embedder, BuildOptions())
    assert report.version == "v000003" and embedder.passages_encoded == report.total_chunks
    assert report.full_rebuild_reason.startswith("previous version v000002 is damaged (dense.faiss: ")
    assert indexed_ids(index_dir) == corpus_ids(corpus)


def test_embedder_returning_wrong_shape_fails_cleanly(built) -> None:
    corpus, index_dir = built
    correct_article(corpus / "art-00001.txt")

    class Liar(HashEmbedder):
        @property
        def dim(self) -> int:
            return 64

        def encode_passages(self, texts, batch_size=32):  # noqa: ANN001, ANN202
            return super().encode_passages(texts, batch_size)[:, :32]

    from index.errors import ModelMismatchError

    with pytest.raises(ModelMismatchError, match="shape"):
        update_index(corpus, index_dir, Liar(), BuildOptions())
    assert read_current(index_dir) == "v000001" and version_dirs(index_dir) == ["v000001"]
    assert not (index_dir / LOCK).exists()


def test_an_emptied_corpus_folder_never_empties_the_index(built, tmp_path: Path) -> None:
    corpus, index_dir = built
    for p in corpus.iterdir():
        p.unlink()
    (corpus / "stray.txt").write_text("")
    from index.errors import EmptyCorpusError

    with pytest.raises(EmptyCorpusError, match="yields no articles .1 rejected. while the index holds 40"):
        update_index(corpus, index_dir, HashEmbedder(), BuildOptions())
    assert read_current(index_dir) == "v000001" and indexed_ids(index_dir)


def test_terminal_progress_bar_shows_rates_and_time_left() -> None:
    import io

    from bot.cli import _progress_printer

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Terminal()
    bar = _progress_printer(screen)
    bar(BuildProgress("embedding", 30, 120, 10, 40, 3.0))
    bar.close()
    shown = screen.getvalue()
    assert "25%|" in shown and "30/120 chunks, 10/40 articles; 10.0 chunks/s, 3.3 articles/s; 9s left" in shown
