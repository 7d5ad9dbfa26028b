"""newsqa as a user or a service runs it: from any folder, models and index in the data home, no hub.

The hub is pointed at a loopback port that counts connections: a model on disk must cause none.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bot.settings import Settings
from tests.conftest import ROOT

QUESTION = "كم عدد متابعي حساب شامي ويتنس؟"


class CountingHub:
    """A loopback port standing in for the Hugging Face hub: accepts, counts and drops every connection."""

    def __init__(self, answer: bool = True) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.answer = answer
        self._held: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            if self.answer:
                conn.close()
            else:
                self._held.append(conn)  # a black hole: never answers

    def close(self) -> None:
        self.sock.close()
        for conn in self._held:
            conn.close()


def closed_port() -> int:
    s = socket.create_server(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def newsqa(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 300) -> tuple[subprocess.CompletedProcess, float]:
    """Run the installed `newsqa` command (or the module) in `cwd` with exactly `env`; returns it and its seconds."""
    script = Path(sys.executable).parent / "newsqa"
    cmd = [str(script)] if script.is_file() else [sys.executable, "-m", "bot.cli"]
    started = time.monotonic()
    proc = subprocess.run([*cmd, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    return proc, time.monotonic() - started


def user_env(tmp_path: Path, home: Path, hub: str) -> dict[str, str]:
    """A user's environment: no NEWSQA_* path variables besides the data home, the hub at `hub`, no offline flag."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path / "user"),
        "NEWSQA_HOME": str(home),
        "HF_ENDPOINT": hub,
        "HF_HOME": str(tmp_path / "hf-cache"),
        "TOKENIZERS_PARALLELISM": "false",
        "NEWSQA_TERMINAL_BIDI": "off",
    }
    (tmp_path / "user").mkdir(exist_ok=True)
    return env


@pytest.mark.timeout(600)
def test_provision_build_ask_and_status_from_another_folder_without_the_hub(tmp_path: Path) -> None:
    home, elsewhere = tmp_path / "data-home", tmp_path / "somewhere" / "else"
    elsewhere.mkdir(parents=True)
    hub = CountingHub()
    try:
        env = user_env(tmp_path, home, hub.url)
        provisioned, _ = newsqa(["model", "provision", "--words", "300"], elsewhere, env)  # a few words prove the step; scripts/install.sh makes the full table
        assert provisioned.returncode == 0, provisioned.stderr
        assert (home / "models" / "multilingual-e5-small" / "model.safetensors").is_file()
        assert not list(elsewhere.iterdir())  # nothing written where the command started

        corpus = tmp_path / "articles"
        shutil.copytree(ROOT / "corpus", corpus)
        built, _ = newsqa(["index", "update", "--corpus", str(corpus)], elsewhere, env)
        assert built.returncode == 0, built.stderr
        assert (home / "index" / "CURRENT").is_file()

        asked, seconds = newsqa(["ask", QUESTION], elsewhere, env)
        assert asked.returncode == 0, asked.stderr
        assert "شامي ويتنس" in asked.stdout and "شبكة النبأ" in asked.stdout
        assert seconds < 30, f"ask took {seconds:.1f}s"

        status, _ = newsqa(["index", "status"], elsewhere, env)
        assert status.returncode == 0, status.stderr
        assert f"home:     {home}" in status.stdout
        assert f"models:   {home / 'models'} (model: {home / 'models' / 'multilingual-e5-small'})" in status.stdout
        assert f"index at: {home / 'index'}" in status.stdout and "version v000001" in status.stdout
        words = home / "models" / "multilingual-e5-small-words.npz"  # provision encoded the common English words once
        assert f"English words: {words}" in status.stdout
        info = json.loads(newsqa(["index", "status", "--json"], elsewhere, env)[0].stdout)
        assert info["locations"]["data_home"] == str(home) and info["model"]["fingerprint"].startswith("sha256:")
        assert info["locations"]["word_table"] == str(words)
        assert not list(elsewhere.iterdir())
        assert hub.connections == 0, "a model on disk was looked up on the hub"
    finally:
        hub.close()


@pytest.mark.parametrize("hub_kind", ["closed port", "silent server"])
def test_an_absent_model_fails_fast_saying_how_to_provide_it(tmp_path: Path, hub_kind: str) -> None:
    hub = CountingHub(answer=False) if hub_kind == "silent server" else None
    try:
        env = user_env(tmp_path, tmp_path / "empty-home", hub.url if hub else f"http://127.0.0.1:{closed_port()}")
        proc, seconds = newsqa(["index", "update", "--corpus", str(ROOT / "corpus")], tmp_path, env, timeout=60)
    finally:
        if hub:
            hub.close()
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    err = proc.stderr.strip()
    assert err.startswith("newsqa: cannot load embedding model 'intfloat/multilingual-e5-small'") and "\n" not in err
    assert "newsqa model provision" in err and "NEWSQA_EMBEDDING_MODEL" in err
    assert seconds < 10, f"failing took {seconds:.1f}s"


def test_env_files_from_the_data_home_and_the_current_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in [v for v in os.environ if v.startswith("NEWSQA_")]:
        monkeypatch.delenv(var)
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir()
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    (cwd / ".env").write_text(f"NEWSQA_HOME={home}\nNEWSQA_TOP_K=4\n")
    (home / ".env").write_text("NEWSQA_TOP_K=9\nNEWSQA_PER_ARTICLE=3\nNEWSQA_INDEX_DIR=relative/index\n")
    s = Settings()
    assert s.home == home and s.env_files_read == (home / ".env", cwd / ".env")
    assert s.top_k == 4 and s.per_article == 3  # ./.env wins over the data home's
    assert s.index_dir == Path("relative/index")  # a path the user gives is relative to the current folder
    assert s.models_dir == home / "models"
    monkeypatch.setenv("NEWSQA_TOP_K", "7")
    assert Settings().top_k == 7  # the environment wins over both


@pytest.mark.skipif(sys.platform != "linux", reason="XDG_DATA_HOME is how Linux names the per-user data folder")
def test_defaults_live_in_the_data_home_never_the_current_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in [v for v in os.environ if v.startswith("NEWSQA_")]:
        monkeypatch.delenv(var)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    s = Settings()
    assert s.home == tmp_path / "xdg" / "newsqa"
    assert (s.index_dir, s.models_dir) == (s.home / "index", s.home / "models")
    assert s.bot_state_path == s.home / "index" / "bot-state.sqlite"
