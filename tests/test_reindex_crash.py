"""Crash safety: a build killed (SIGKILL) or interrupted (SIGINT) at any point leaves the old version answering."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.corpusgen import write_corpus
from index.build import LOCK, BuildOptions, update_index
from index.errors import IndexLockedError
from index.store import read_current
from tests.fakes import HashEmbedder
from tests.reindex_helpers import answers, ctrl_c_as_usual, change_corpus, corpus_ids, indexed_ids, version_dirs

ROOT = Path(__file__).resolve().parent.parent
N = 40


def _start_worker(corpus: Path, index_dir: Path, pause_at: str | None) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSQA_")}
    env.update(PYTHONPATH=str(ROOT), NEWSQA_HOME=os.environ["NEWSQA_HOME"], NEWSQA_BATCH_SIZE="4", NEWSQA_KEEP_VERSIONS="5")
    if pause_at:
        env["NEWSQA_TEST_PAUSE_AT"] = pause_at
    return subprocess.Popen(
        [sys.executable, "-m", "tests.reindex_worker", str(corpus), str(index_dir)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=ctrl_c_as_usual,
    )


def _wait_for_pause(proc: subprocess.Popen, index_dir: Path, stage: str) -> None:
    marker = index_dir / f"pause-{stage}.marker"
    deadline = time.monotonic() + 60
    while not marker.exists():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"build exited ({proc.returncode}) before reaching {stage}:\n{out}\n{err}")
        assert time.monotonic() < deadline, f"build never reached {stage}"
        time.sleep(0.05)
    assert marker.read_text().strip() == str(proc.pid)
    marker.unlink()


@pytest.fixture
def indexed(tmp_path: Path) -> tuple[Path, Path, list[dict]]:
    """v000001 built from 40 articles, then the corpus changed; returns corpus, index and v1's answers."""
    corpus, index_dir = tmp_path / "corpus", tmp_path / "index"
    write_corpus(corpus, N)
    update_index(corpus, index_dir, HashEmbedder(), BuildOptions(batch_size=4))
    before = answers(index_dir)
    assert any(a["hits"] for a in before)  # the comparison below means something
    change_corpus(corpus, N)
    return corpus, index_dir, before


def _finish_and_check(corpus: Path, index_dir: Path) -> None:
    """The next update completes, leaves no debris and holds every article of the corpus."""
    proc = _start_worker(corpus, index_dir, None)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "added 3, changed 2, removed 1, unchanged 37, rejected 0" in out
    assert indexed_ids(index_dir) == corpus_ids(corpus)
    assert len(indexed_ids(index_dir)) == N + 3 - 1
    assert not (index_dir / LOCK).exists()
    assert not [d for d in version_dirs(index_dir) if d.startswith(".building-")]


@pytest.mark.parametrize("stage", ["embedding", "writing", "switch"])
def test_sigkill_leaves_previous_version_answering(indexed, stage: str) -> None:
    corpus, index_dir, before = indexed
    proc = _start_worker(corpus, index_dir, stage)
    _wait_for_pause(proc, index_dir, stage)
    if stage == "embedding":
        # One build at a time: a second update refuses, naming the holder.
        with pytest.raises(IndexLockedError, match=f"pid {proc.pid}"):
            update_index(corpus, index_dir, HashEmbedder(), BuildOptions())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)

    # The kill really happened mid-build: the lock and the half-built (or unswitched) version are there.
    assert (index_dir / LOCK).read_text().strip() == str(proc.pid)
    leftovers = version_dirs(index_dir)
    if stage == "switch":
        assert leftovers == ["v000001", "v000002"]  # complete, verified, never made current
    else:
        assert leftovers[0].startswith(f".building-{proc.pid}-") and "v000001" in leftovers
    assert read_current(index_dir) == "v000001"
    assert answers(index_dir) == before

    _finish_and_check(corpus, index_dir)  # also proves the dead holder's lock is cleared
    assert answers(index_dir) != before  # the new articles are searchable now


@pytest.mark.parametrize("stage", ["embedding", "switch"])
def test_ctrl_c_stops_cleanly(indexed, stage: str) -> None:
    corpus, index_dir, before = indexed
    proc = _start_worker(corpus, index_dir, stage)
    _wait_for_pause(proc, index_dir, stage)
    os.kill(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert "interrupted" in err and "v000001 stays current" in err
    assert "Traceback" not in err
    assert not (index_dir / LOCK).exists()
    assert version_dirs(index_dir) == ["v000001"]  # partial build removed, nothing half-made left
    assert read_current(index_dir) == "v000001"
    assert answers(index_dir) == before
    _finish_and_check(corpus, index_dir)


def test_debris_of_a_killed_switch_is_cleared(tmp_path: Path) -> None:
    """A pointer file written but never renamed, and a half-built folder, both from a dead pid."""
    corpus, index_dir = tmp_path / "corpus", tmp_path / "index"
    write_corpus(corpus, 10)
    update_index(corpus, index_dir, HashEmbedder(), BuildOptions())
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (index_dir / f".CURRENT.{dead.pid}.tmp").write_text("v000002\n")
    (index_dir / "versions" / f".building-{dead.pid}-v000002").mkdir()
    (index_dir / "versions" / f".building-{dead.pid}-v000002" / "vectors.npy").write_bytes(b"partial")
    assert read_current(index_dir) == "v000001"
    (corpus / "art-00001.txt").unlink()
    report = update_index(corpus, index_dir, HashEmbedder(), BuildOptions())
    assert report.removed == 1 and report.version == "v000002"
    assert not list(index_dir.glob(".CURRENT.*")) and version_dirs(index_dir) == ["v000001", "v000002"]
