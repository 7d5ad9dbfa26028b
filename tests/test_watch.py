"""The corpus watcher: durations, one settled change per burst, events and polling alike, stopping."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from index.watch import CorpusWatcher, FolderChange, WatchError, parse_duration, snapshot

pytestmark = pytest.mark.timeout(120)


def test_durations_parse_and_bad_ones_are_named():
    assert parse_duration("10m") == 600 and parse_duration("30s") == 30 and parse_duration("1h") == 3600
    assert parse_duration("250ms") == 0.25 and parse_duration(" 2 ") == 2 and parse_duration("1.5M") == 90
    for bad in ("", "ten minutes", "5d", "-3s", "0", "m"):
        with pytest.raises(WatchError, match="duration"):
            parse_duration(bad)


def test_snapshot_sees_what_load_corpus_reads(tmp_path):
    (tmp_path / "a.txt").write_text("x", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.jsonl").write_text("{}", encoding="utf-8")
    (tmp_path / ".partial.txt").write_text("half", encoding="utf-8")  # hidden: a copy in progress
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "c.txt").write_text("x", encoding="utf-8")
    assert sorted(snapshot(tmp_path)) == ["a.txt", "sub/b.jsonl"]


def test_change_lists_new_changed_and_removed_files():
    before = {"a.txt": (1, 1), "b.txt": (1, 1), "c.txt": (1, 1)}
    after = {"a.txt": (1, 1), "b.txt": (2, 5), "d.txt": (1, 1)}
    change = FolderChange.between(before, after)
    assert change == FolderChange(("d.txt",), ("b.txt",), ("c.txt",))
    assert change.summary() == "new: d.txt; changed: b.txt; removed: c.txt"
    assert not FolderChange.between(before, before)


class Waiting:
    """watcher.wait(stop) in a thread; the test polls for its result with a deadline."""

    def __init__(self, watcher: CorpusWatcher) -> None:
        self.stop = threading.Event()
        self.result: list[FolderChange | None] = []
        self.thread = threading.Thread(target=lambda: self.result.append(watcher.wait(self.stop)), daemon=True)
        self.thread.start()

    def get(self, timeout: float = 30.0) -> FolderChange | None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"no change reported within {timeout}s"
        return self.result[0]


@pytest.mark.parametrize("events", [True, False], ids=["events", "polling"])
def test_a_burst_of_files_gives_one_settled_change(tmp_path: Path, events: bool):
    (tmp_path / "old.txt").write_text("old", encoding="utf-8")
    watcher = CorpusWatcher(tmp_path, every=0.2, debounce=1.5, events=events)
    waiting = Waiting(watcher)
    for i in range(5):  # a folder being copied in: files arrive one after another
        (tmp_path / f"new-{i}.txt").write_text("نص" * 100, encoding="utf-8")
        time.sleep(0.05)
    (tmp_path / "old.txt").unlink()
    change = waiting.get()
    assert change is not None
    assert change.added == tuple(f"new-{i}.txt" for i in range(5)) and change.deleted == ("old.txt",)
    assert watcher.mode == ("events" if events else "polling")
    # the next wait reports only what changed after this one
    again = Waiting(watcher)
    (tmp_path / "new-0.txt").write_text("changed", encoding="utf-8")
    later = again.get()
    assert later == FolderChange((), ("new-0.txt",), ())


@pytest.mark.parametrize("events", [True, False], ids=["events", "polling"])
def test_stop_ends_a_wait_without_a_change(tmp_path: Path, events: bool):
    watcher = CorpusWatcher(tmp_path, every=60.0, debounce=0.2, events=events)
    waiting = Waiting(watcher)
    (tmp_path / ".hidden-tmp").write_text("x", encoding="utf-8")  # not an article: no change to report
    waiting.stop.set()
    assert waiting.get(timeout=30) is None


def test_a_missing_folder_is_named(tmp_path: Path):
    with pytest.raises(WatchError, match="no-such-corpus"):
        CorpusWatcher(tmp_path / "no-such-corpus", every=1.0)
