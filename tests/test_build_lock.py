"""The build lock is the kernel's (flock): it dies with its holder, and two builds never overlap."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bench.corpusgen import write_corpus
from index.build import LOCK, BuildOptions, IndexLock, update_index
from index.errors import IndexLockedError, IndexReadOnlyError
from index.store import read_current
from tests.fakes import HashEmbedder
from tests.reindex_helpers import change_corpus, corpus_ids, indexed_ids, version_dirs

ROOT = Path(__file__).resolve().parent.parent
N = 30


def _worker(corpus: Path, index_dir: Path, pause_at: str | None = None) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSQA_")}
    env.update(PYTHONPATH=str(ROOT), NEWSQA_HOME=os.environ["NEWSQA_HOME"], NEWSQA_BATCH_SIZE="4", NEWSQA_KEEP_VERSIONS="5")
    if pause_at:
        env["NEWSQA_TEST_PAUSE_AT"] = pause_at
    return subprocess.Popen([sys.executable, "-m", "tests.reindex_worker", str(corpus), str(index_dir)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_threads_never_hold_the_lock_together(tmp_path: Path) -> None:
    inside, most, errors = [0], [0], []
    guard = threading.Lock()

    def work() -> None:
        try:
            for _ in range(15):
                with IndexLock(tmp_path, wait_seconds=30):
                    with guard:
                        inside[0] += 1
                        most[0] = max(most[0], inside[0])
                    time.sleep(0.002)
                    with guard:
                        inside[0] -= 1
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and most[0] == 1
    assert not (tmp_path / LOCK).exists()


@pytest.mark.timeout(300)
def test_after_a_killed_holder_two_updates_started_together_build_once(tmp_path: Path) -> None:
    corpus, index_dir = tmp_path / "corpus", tmp_path / "index"
    write_corpus(corpus, N)
    update_index(corpus, index_dir, HashEmbedder(), BuildOptions(batch_size=4))
    change_corpus(corpus, N)

    holder = _worker(corpus, index_dir, pause_at="embedding")
    marker = index_dir / "pause-embedding.marker"
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert holder.poll() is None, holder.communicate()
        assert time.monotonic() < deadline, "the holder never reached its pause"
        time.sleep(0.05)
    marker.unlink()
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(30)
    assert (index_dir / LOCK).read_text().strip() == str(holder.pid)  # its pid is still in the file...
    assert any(d.startswith(f".building-{holder.pid}-") for d in version_dirs(index_dir))

    racers = [_worker(corpus, index_dir), _worker(corpus, index_dir)]  # ...but the kernel released its lock
    results = [(p.wait(180), *p.communicate()) for p in racers]
    built = [r for r in results if r[0] == 0 and "now at v000002" in r[1]]
    others = [r for r in results if r not in built]
    assert len(built) == 1, results
    (code, out, err), = others
    refused = code == 1 and "another index build (pid" in err and "Traceback" not in err
    waited = code == 0 and "no changes; v000002 stays current" in out
    assert refused or waited, (code, out, err)
    assert version_dirs(index_dir) == ["v000001", "v000002"]  # nothing deleted, no debris
    assert read_current(index_dir) == "v000002"
    assert indexed_ids(index_dir) == corpus_ids(corpus)
    assert not (index_dir / LOCK).exists()


def test_a_held_lock_names_its_holder_and_waiting_works(tmp_path: Path) -> None:
    corpus, index_dir = tmp_path / "corpus", tmp_path / "index"
    write_corpus(corpus, 5)
    index_dir.mkdir()
    released = threading.Event()

    def hold() -> None:
        with IndexLock(index_dir):
            held.set()
            released.wait(10)

    held = threading.Event()
    t = threading.Thread(target=hold)
    t.start()
    held.wait(5)
    with pytest.raises(IndexLockedError, match=f"another index build \\(pid {os.getpid()}\\) is running"):
        update_index(corpus, index_dir, HashEmbedder(), BuildOptions())
    threading.Timer(0.5, released.set).start()
    report = update_index(corpus, index_dir, HashEmbedder(), BuildOptions(lock_wait_seconds=20))
    assert report.switched and report.version == "v000001"
    t.join()


def test_an_index_folder_that_cannot_be_written_is_one_line(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    write_corpus(corpus, 2)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(IndexReadOnlyError, match="cannot write to .*a-file/index: not a directory") as info:
        update_index(corpus, blocker / "index", HashEmbedder(), BuildOptions())
    assert "\n" not in str(info.value)
    lock_is_a_folder = tmp_path / "index"
    (lock_is_a_folder / LOCK).mkdir(parents=True)
    with pytest.raises(IndexReadOnlyError, match="cannot write to .*index: is a directory"):
        update_index(corpus, lock_is_a_folder, HashEmbedder(), BuildOptions())
