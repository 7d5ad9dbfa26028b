"""An archive that keeps itself current: with NEWSQA_AUTO_UPDATE the bot watches NEWSQA_CORPUS_DIR, runs the
incremental update (build lock, hot switch-over and crash safety as for /reindex) once the folder settles, and
tells operators what was added or rejected. Also how /reindex words its report.
"""

from __future__ import annotations

import asyncio
import html
import logging
import threading
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

from bot.searching import CorpusInfo
from bot.texts import text
from index.build import BuildReport
from index.errors import ArticleError, NewsqaError
from index.watch import DEFAULT_DEBOUNCE, CorpusWatcher, FolderChange

log = logging.getLogger("newsqa.bot")

MAX_LISTED = 10  # rejected files named in one message; the rest are counted


def esc(s: str) -> str:
    """Escape text for HTML parse mode."""
    return html.escape(s, quote=False)


def report_message(report: BuildReport, info: CorpusInfo, lang: str, head: str,
                   rejected: Iterable[ArticleError] | None = None, **values: str) -> str:
    """An update's outcome for operators: the `head` text (its summary and state filled in), then the rejected files."""
    if report.switched:
        state = text("reindex_switched", lang, version=info.version, articles=info.articles, chunks=info.chunks)
    else:
        state = text("reindex_unchanged", lang, version=esc(str(report.version)))
    body = text(head, lang, summary=report.summary(), state=state, **values)
    if report.switched and report.full_rebuild_reason:  # e.g. the previous version was damaged
        body += f"\nfull rebuild: {esc(report.full_rebuild_reason)}"
    errors = list(report.rejected if rejected is None else rejected)
    if errors:
        lines = [esc(str(e)) for e in errors[:MAX_LISTED]]
        body += "\n" + text("reindex_rejected", lang) + "\n" + "\n".join(f"• {line}" for line in lines)
        if len(errors) > MAX_LISTED:
            body += f"\n… +{len(errors) - MAX_LISTED}"
    return body[:4096]


class RejectionMemory:
    """Rejections already told, so a broken file is announced once (and again only after it was fixed)."""

    def __init__(self) -> None:
        self._told: set[str] = set()

    def fresh(self, rejected: Iterable[ArticleError]) -> list[ArticleError]:
        """The rejections not told before; remembers all current ones, forgets the resolved."""
        errors = list(rejected)
        new = [e for e in errors if str(e) not in self._told]
        self._told = {str(e) for e in errors}
        return new


class AutoUpdate:
    """Watches the corpus folder from the bot's event loop; each settled change runs one incremental update."""

    def __init__(
        self,
        corpus_dir: Path,
        every: float,
        update: Callable[[], BuildReport],
        corpus_info: Callable[[], CorpusInfo],
        announce: Callable[[str], Awaitable[None]],
        lang: str,
        debounce: float = DEFAULT_DEBOUNCE,
        events: bool = True,
    ) -> None:
        self.corpus_dir = corpus_dir
        self.every = every
        self.update = update
        self.corpus_info = corpus_info
        self.announce = announce
        self.lang = lang
        self.debounce = debounce
        self.events = events
        self.rejections = RejectionMemory()
        self.state = "watching not started"
        self._stop = threading.Event()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        """Begin watching in the background (an update runs first, to catch up with changes made meanwhile)."""
        self._task = asyncio.get_running_loop().create_task(self.run(), name="newsqa-auto-update")

    async def stop(self) -> None:
        """Stop watching; an update in progress finishes first."""
        self._stop.set()
        task, self._task = self._task, None
        if task is not None:
            try:
                await task
            except Exception:  # already logged by run()
                pass

    async def run(self) -> None:
        """Update, then wait for the next settled change, until stopped."""
        try:
            watcher = await asyncio.to_thread(CorpusWatcher, self.corpus_dir, self.every, self.debounce, self.events)
        except NewsqaError as exc:
            log.error("automatic index updates are off: %s", exc)
            self.state = f"off: {exc}"
            await self.announce(text("auto_update_failed", self.lang, files=esc(str(self.corpus_dir)),
                                     error=esc(str(exc))))
            return
        change: FolderChange | None = None
        try:
            while not self._stop.is_set():
                await self.one_pass(change)
                self.state = f"watching {self.corpus_dir} ({watcher.mode}, every {self.every:g}s)"
                change = await asyncio.to_thread(watcher.wait, self._stop)
                if change is None:
                    return
                log.info("corpus folder changed (%s): updating the index", change.summary())
        except Exception:  # the watcher itself failed: say so; /reindex still works
            log.exception("watching %s stopped", self.corpus_dir)
            self.state = "stopped by an error (see log)"

    async def one_pass(self, change: FolderChange | None) -> None:
        """One incremental update; operators hear of a new version or of newly rejected files."""
        files = esc(change.summary()) if change is not None else esc(str(self.corpus_dir))
        try:
            report = await asyncio.to_thread(self.update)
        except NewsqaError as exc:
            log.warning("automatic index update failed: %s", exc)
            self.state = f"failed: {exc}"
            await self.announce(text("auto_update_failed", self.lang, files=files, error=esc(str(exc))))
            return
        except Exception:
            log.exception("automatic index update failed")
            self.state = "failed (see log)"
            await self.announce(text("auto_update_failed", self.lang, files=files, error=text("error", self.lang)))
            return
        fresh = self.rejections.fresh(report.rejected)
        log.info("automatic index update: %s", report.summary())
        if not report.switched and not (fresh and change is not None):
            return  # nothing new to tell (rejections found at start-up are logged, told when they change)
        info = await asyncio.to_thread(self.corpus_info)
        await self.announce(report_message(report, info, self.lang, "auto_update_done", fresh, files=files))
