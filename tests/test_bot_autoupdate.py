"""An archive that keeps itself current: the bot (NEWSQA_AUTO_UPDATE) and `newsqa index watch` pick up a file
dropped into the corpus folder; a malformed one is reported and nothing else changes."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bot.texts import AR, text
from index.store import VERSIONS, open_current, read_current
from tests.bot_harness import OPERATOR_ID, bot_settings, running_bot
from tests.reindex_helpers import ctrl_c_as_usual

pytestmark = [pytest.mark.timeout(300), pytest.mark.usefixtures("one_torch_thread")]

ROOT = Path(__file__).resolve().parent.parent
GIRAFFE_Q = "كم تزن الزرافة التي ولدت في حديقة الحيوان؟"
GIRAFFE_SOURCE = "ولادة زرافة نادرة في حديقة الحيوان بالعاصمة — جريدة الساحل — 2024-06-01 10:00"
GIRAFFE = (
    "ولادة زرافة نادرة في حديقة الحيوان بالعاصمة\nجريدة الساحل\n2024-06-01 10:00\n"
    "أعلنت حديقة الحيوان في العاصمة ولادة زرافة بيضاء نادرة، وقال مدير الحديقة إن الزرافة الصغيرة "
    "تزن 55 كيلوغراما وإن الزوار سيتمكنون من رؤيتها بعد أسبوعين.\n"
)
BROKEN = "عنوان فقط\n"


@pytest.fixture
def writable_index(built_index, combined_corpus, tmp_path):
    index_dir, corpus = tmp_path / "index", tmp_path / "corpus"
    shutil.copytree(built_index, index_dir)
    shutil.copytree(combined_corpus, corpus)
    return index_dir, corpus


def drop(corpus: Path, name: str, content: str) -> None:
    """Put a file into the corpus folder as a copy would: written beside it under a hidden name, then renamed in."""
    tmp = corpus / f".{name}.part"
    tmp.write_text(content, encoding="utf-8")
    os.replace(tmp, corpus / name)


async def until(condition, timeout: float = 60.0, what: str = "condition") -> None:
    """Poll `condition` until it holds, failing after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout}s"
        await asyncio.sleep(0.05)


async def test_bot_updates_itself_when_the_corpus_changes_and_reports_to_operators(api, writable_index, tmp_path,
                                                                                   embedder):
    index_dir, corpus = writable_index
    settings = bot_settings(api, index_dir, tmp_path, corpus_dir=corpus, auto_update="1s")
    auto = lambda r: r.chat_id == OPERATOR_ID and r.text.startswith("تحديث تلقائي")  # noqa: E731
    async with running_bot(settings, embedder) as newsbot:
        await until(lambda: newsbot.auto_update.state.startswith("watching"), what="the first pass")
        assert not api.calls("sendMessage")  # nothing changed since the index was built: nothing to tell
        api.push_message(GIRAFFE_Q, user_id=401)
        [before] = await api.wait_for("sendMessage")
        assert before.text == text("no_answer", AR)

        drop(corpus, "zoo-giraffe.txt", GIRAFFE)
        [added] = await api.wait_for("sendMessage", where=auto, timeout=120)
        api.push_message(GIRAFFE_Q, user_id=402)
        [after] = await api.wait_for("sendMessage", where=lambda r: r.chat_id == 402)

        versions = sorted(p.name for p in (index_dir / VERSIONS).iterdir())
        drop(corpus, "broken.txt", BROKEN)
        await api.wait_for("sendMessage", 2, where=auto, timeout=120)
        rejected = api.successes("sendMessage", chat_id=OPERATOR_ID)[-1]
        api.push_message(GIRAFFE_Q, user_id=403)
        [still] = await api.wait_for("sendMessage", where=lambda r: r.chat_id == 403)
        api.push_message("/stats", user_id=OPERATOR_ID)
        [stats] = await api.wait_for("sendMessage", where=lambda r: r.text.startswith("<b>Index</b>"))
    assert f"<b>Auto update</b> watching {corpus} (events, every 1s)" in stats.text
    info = open_current(index_dir)
    switched = text("reindex_switched", AR, version="v000002", articles=7, chunks=info.n_chunks)
    info.close()
    assert added.text == text("auto_update_done", AR, files="new: zoo-giraffe.txt",
                              summary="added 1, changed 0, removed 0, unchanged 6, rejected 0", state=switched)
    assert added.params["parse_mode"] == "HTML"
    assert GIRAFFE_SOURCE in after.text and "55" in after.text
    assert rejected.text.startswith(text(
        "auto_update_done", AR, files="new: broken.txt", summary="added 0, changed 0, removed 0, unchanged 7, rejected 1",
        state=text("reindex_unchanged", AR, version="v000002"),
    ) + "\n" + text("reindex_rejected", AR) + "\n• broken.txt: line 1: ")
    # the malformed file changed nothing: same version, same folders, same answers
    assert read_current(index_dir) == "v000002"
    assert sorted(p.name for p in (index_dir / VERSIONS).iterdir()) == versions
    assert still.text == after.text
    assert len([r for r in api.successes("sendMessage") if auto(r)]) == 2


async def test_a_bad_auto_update_interval_is_refused(api, built_index, tmp_path):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="NEWSQA_AUTO_UPDATE: not a duration: 'often'"):
        bot_settings(api, built_index, tmp_path, auto_update="often")
    assert bot_settings(api, built_index, tmp_path, auto_update="off").auto_update_seconds is None
    assert bot_settings(api, built_index, tmp_path, auto_update="10m").auto_update_seconds == 600


def test_index_watch_command_picks_up_new_files_and_reports_bad_ones(writable_index, models_dir):
    index_dir, corpus = writable_index
    env = {**os.environ, "NEWSQA_MODELS_DIR": str(models_dir), "NEWSQA_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "index", "watch", "--corpus", str(corpus), "--index-dir", str(index_dir),
         "--every", "1s", "--debounce", "1s", "--poll"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=ctrl_c_as_usual,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)
    reader.start()

    def wait_line(needle: str, timeout: float = 120.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [line for line in list(lines) if needle in line]
            if found:
                return found[-1]
            assert proc.poll() is None, f"watch exited {proc.returncode}: {proc.stderr.read()}"
            time.sleep(0.05)
        raise AssertionError(f"no line with {needle!r} within {timeout}s; got {lines}")

    try:
        first = wait_line("stays current")  # the start-up pass: nothing to do
        assert "added 0, changed 0, removed 0, unchanged 6, rejected 0; v000001 stays current" in first
        drop(corpus, "zoo-giraffe.txt", GIRAFFE)
        line = wait_line("now at v000002")
        assert "added 1, changed 0, removed 0, unchanged 6, rejected 0 after new: zoo-giraffe.txt" in line
        version = open_current(index_dir)
        assert version.n_articles == 7 and version.manifest["build"]["embedded_chunks"] >= 1
        version.close()
        drop(corpus, "broken.txt", BROKEN)
        rejected = wait_line("rejected: broken.txt")
        assert rejected.startswith("  rejected: broken.txt: line 1: ")
        assert "rejected 1 after new: broken.txt; v000002 stays current" in wait_line("after new: broken.txt")
        assert read_current(index_dir) == "v000002"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            rc = proc.wait(timeout=60)
        finally:
            proc.kill()
    assert rc == 0
    assert "watching" in (err := proc.stderr.read()) and "polling" in err and "stopped watching" in err
