"""Noticing that the corpus folder changed: filesystem events (watchfiles) where available, polling otherwise.

A watcher only says *that* and *what* changed, once the folder has been quiet for the debounce time;
running the incremental update (index.build.update_index, build lock and hot switch-over included)
is the caller's job, so the CLI (`newsqa index watch`) and the bot (NEWSQA_AUTO_UPDATE) share it.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from index.errors import NewsqaError

log = logging.getLogger(__name__)

DEFAULT_DEBOUNCE = 2.0  # seconds of quiet after the last change before an update runs
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h)?", re.IGNORECASE)
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


class WatchError(NewsqaError, ValueError):
    """A watch that cannot start: a duration that is not like 30s, 10m or 1h, or no folder to watch."""


def parse_duration(text: str) -> float:
    """'10m', '30s', '1h', '500ms' or a bare number of seconds → seconds (more than 0)."""
    match = _DURATION_RE.fullmatch(text.strip())
    if match is None:
        raise WatchError(f"not a duration: {text!r} (use e.g. 30s, 10m or 1h)")
    seconds = float(match.group(1)) * _UNIT[(match.group(2) or "s").lower()]
    if seconds <= 0:
        raise WatchError(f"a duration must be more than 0, got {text!r}")
    return seconds


Snapshot = dict[str, tuple[int, int]]  # relative path → (size, mtime_ns)


def snapshot(root: Path) -> Snapshot:
    """Size and modification time of every file load_corpus would read (hidden files and folders skipped)."""
    out: Snapshot = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if name.startswith("."):
                continue
            path = Path(dirpath) / name
            try:
                st = path.stat()
            except OSError:  # removed while we looked, or a dangling link: load_corpus reports those
                continue
            out[str(path.relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return out


@dataclass(frozen=True, slots=True)
class FolderChange:
    """Files that appeared, changed or disappeared since the last look (relative paths, sorted)."""

    added: tuple[str, ...] = ()
    modified: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()

    @staticmethod
    def between(before: Snapshot, after: Snapshot) -> FolderChange:
        """What differs between two snapshots."""
        return FolderChange(
            tuple(sorted(set(after) - set(before))),
            tuple(sorted(p for p in set(after) & set(before) if after[p] != before[p])),
            tuple(sorted(set(before) - set(after))),
        )

    def __bool__(self) -> bool:
        return bool(self.added or self.modified or self.deleted)

    def summary(self) -> str:
        """One line: which files, at most five named per kind."""
        parts = []
        for label, paths in (("new", self.added), ("changed", self.modified), ("removed", self.deleted)):
            if paths:
                shown = ", ".join(paths[:5]) + (f" … +{len(paths) - 5}" if len(paths) > 5 else "")
                parts.append(f"{label}: {shown}")
        return "; ".join(parts) or "no file changes"


@dataclass
class CorpusWatcher:
    """Blocks until the corpus folder changed and then settled; events where the platform has them, else polling.

    `every` is how often the folder is looked at without an event (the polling interval, and a safety
    re-check when events are used). A burst of changes (a folder copied in) gives one FolderChange, once
    nothing has moved for `debounce` seconds.
    """

    root: Path
    every: float
    debounce: float = DEFAULT_DEBOUNCE
    events: bool = True
    baseline: Snapshot = field(default_factory=dict)
    _events: Iterator[object] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.root.is_dir():
            raise WatchError(f"{self.root}: corpus folder not found, nothing to watch")
        if not self.baseline:
            self.baseline = snapshot(self.root)

    @property
    def mode(self) -> str:
        """'events' or 'polling' (what the next wait uses)."""
        return "events" if self.events else "polling"

    def wait(self, stop: threading.Event) -> FolderChange | None:
        """The next settled change of the folder; None once `stop` is set."""
        while not stop.is_set():
            now = snapshot(self.root)
            if now != self.baseline:
                settled = self._settle(now, stop)
                if settled is None:
                    return None
                change = FolderChange.between(self.baseline, settled)
                self.baseline = settled
                if change:
                    return change
                continue
            self._sleep(stop)
        return None

    def _settle(self, seen: Snapshot, stop: threading.Event) -> Snapshot | None:
        """Wait until the folder stays as it is for `debounce` seconds (copies in progress finish first)."""
        while not stop.wait(self.debounce):
            again = snapshot(self.root)
            if again == seen:
                return again
            seen = again
        return None

    def _sleep(self, stop: threading.Event) -> None:
        """Until an event arrives, `every` passes, or stop is set."""
        if self.events:
            try:
                if self._events is None:
                    self._events = self._open_events(stop)
                next(self._events)
                return
            except StopIteration:
                self._events = None
                return
            except (ImportError, OSError, RuntimeError) as exc:  # no watchfiles, or no inotify left: poll instead
                log.warning("watching %s by polling every %.0fs (filesystem events unavailable: %s)",
                            self.root, self.every, exc)
                self.events = False
                self._events = None
        stop.wait(self.every)

    def _open_events(self, stop: threading.Event) -> Iterator[object]:
        import watchfiles

        # One long-lived watcher: events between two waits are kept by it, not lost.
        return watchfiles.watch(
            self.root, watch_filter=None, stop_event=stop, rust_timeout=max(1, int(self.every * 1000)),
            yield_on_timeout=True, debounce=max(1, int(self.debounce * 1000)), step=50, raise_interrupt=True,
        )
