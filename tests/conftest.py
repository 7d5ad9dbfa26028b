"""Shared fixtures: the real multilingual model (provisioned offline once), a real index."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from index.build import BuildOptions, update_index
from index.embedder import DEFAULT_MODEL, SentenceTransformerEmbedder
from index.store import open_current
from retrieval.search import SearchConfig, Searcher

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_CORPUS = ROOT / "corpus"
TEST_CORPUS = ROOT / "tests" / "data" / "corpus"
SAMPLE_ARTICLE_TITLE = "داعش والانترنت... حرب افتراضية توازي المعركة على الأرض"


def pytest_configure(config: pytest.Config) -> None:
    """A throwaway data home for the whole run (never the user's), and ../shared out of sight.

    Subprocesses inherit both: a test proves the repository alone suffices, wherever it is cloned.
    """
    if "NEWSQA_HOME" not in os.environ:
        home = Path(tempfile.mkdtemp(prefix="newsqa-test-home-"))
        os.environ["NEWSQA_HOME"] = str(home)
        config.add_cleanup(lambda: shutil.rmtree(home, ignore_errors=True))
    os.environ.setdefault("NEWSQA_SHARED_DIR", str(Path(os.environ["NEWSQA_HOME"]) / "no-shared-folder"))
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:  # pytest -n: each worker its own data home inside the run's, the provisioned model shared by all
        run_home = Path(os.environ["NEWSQA_HOME"])
        home = run_home / worker
        home.mkdir(parents=True, exist_ok=True)
        (run_home / "models").mkdir(exist_ok=True)
        if not (home / "models").exists():
            (home / "models").symlink_to(run_home / "models", target_is_directory=True)
        os.environ["NEWSQA_HOME"] = str(home)


@pytest.fixture(scope="session")
def models_dir() -> Path:
    """Where the real e5 model lives: NEWSQA_MODELS_DIR, else the test data home's models/, provisioned once."""
    from tests.models import ensure_models

    return ensure_models(Path(os.environ.get("NEWSQA_MODELS_DIR") or Path(os.environ["NEWSQA_HOME"]) / "models"))


@pytest.fixture(scope="session")
def embedder(models_dir: Path) -> SentenceTransformerEmbedder:
    """The real multilingual-e5-small, loaded once per test session."""
    e = SentenceTransformerEmbedder(DEFAULT_MODEL, models_dir=models_dir)
    e.load()  # load now, not inside the first timed call
    return e


@pytest.fixture(scope="session")
def combined_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled sample article plus the short test articles, in one folder."""
    root = tmp_path_factory.mktemp("corpus")
    for src in (SAMPLE_CORPUS, TEST_CORPUS):
        for f in src.iterdir():
            shutil.copy(f, root / f.name)
    return root


@pytest.fixture(scope="session")
def built_index(tmp_path_factory: pytest.TempPathFactory, combined_corpus: Path, embedder) -> Path:  # noqa: ANN001
    """A real index (FAISS + SQLite + bm25s) built once from the combined corpus; treat as read-only."""
    index_dir = tmp_path_factory.mktemp("index")
    update_index(combined_corpus, index_dir, embedder, BuildOptions())
    return index_dir


@pytest.fixture(scope="session")
def searcher(built_index: Path, embedder) -> Searcher:  # noqa: ANN001
    """A searcher over the shared index, loaded from disk as a new process would."""
    return Searcher(open_current(built_index), embedder, SearchConfig())


# --- the bot tests' fixtures (tests/test_bot_*.py, tests/test_followup_bot.py) ----------------------------
@pytest.fixture
def one_torch_thread():  # noqa: ANN201 - a generator fixture
    """As `newsqa bot` runs: questions in parallel worker threads, one intra-op thread each."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
async def api():  # noqa: ANN201 - an async generator fixture
    """A fresh loopback Bot API server per test; every request it got must have been understood."""
    from tests.fake_bot_api import FakeBotAPI

    server = await FakeBotAPI().start()
    yield server
    await server.stop()
    server.assert_clean()


@pytest.fixture
def settings(api, built_index: Path, tmp_path: Path):  # noqa: ANN001, ANN201
    """Bot settings pointing at the fake server, the shared test index and a private state folder."""
    from tests.bot_harness import bot_settings

    return bot_settings(api, built_index, tmp_path)
