"""A long-lived searcher follows new versions; a question in flight finishes on the version it started with."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from bench.corpusgen import correct_article, write_corpus
from index.build import BuildOptions, update_index
from index.errors import ModelMismatchError
from index.store import open_current, read_current
from retrieval.search import LiveSearcher, SearchConfig
from tests.fakes import HashEmbedder

QUESTION = "متى افتتحت مكتبة الزيتون الرقمية في المدينة القديمة؟"
OPEN_GATE = SearchConfig(threshold=0.0)


class GatedEmbedder(HashEmbedder):
    """Holds the next question inside the searcher (after it picked its version) until released."""

    def __init__(self) -> None:
        super().__init__()
        self.armed = False
        self.entered = threading.Event()
        self.release = threading.Event()

    def encode_queries(self, texts, batch_size=32):  # noqa: ANN001, ANN202
        if self.armed:
            self.armed = False
            self.entered.set()
            assert self.release.wait(30)
        return super().encode_queries(texts, batch_size)


def test_live_searcher_switches_while_in_flight_question_finishes_on_old_version(tmp_path: Path) -> None:
    corpus, index_dir = tmp_path / "corpus", tmp_path / "index"
    write_corpus(corpus, 20)
    update_index(corpus, index_dir, HashEmbedder(), BuildOptions())
    embedder = GatedEmbedder()
    live = LiveSearcher(index_dir, embedder, OPEN_GATE, check_every=0)
    on_v1 = live.answer(QUESTION, k=3).to_json()
    assert live.get().version.name == "v000001"

    embedder.armed = True
    in_flight: dict = {}
    worker = threading.Thread(target=lambda: in_flight.update(answer=live.answer(QUESTION, k=3).to_json()))
    worker.start()
    assert embedder.entered.wait(10)  # the question is mid-way, holding v000001's searcher

    (corpus / "library.txt").write_text(
        "افتتاح مكتبة الزيتون الرقمية\nجريدة الصباح\n2024-06-01 09:00\n"
        "افتتحت مكتبة الزيتون الرقمية في المدينة القديمة صباح السبت بحضور أهالي المدينة.\n",
        encoding="utf-8",
    )
    assert update_index(corpus, index_dir, HashEmbedder(), BuildOptions()).version == "v000002"
    assert read_current(index_dir) == "v000002"

    fresh = live.answer(QUESTION, k=3)  # no restart: the next question sees the new version
    assert live.get().version.name == "v000002"
    assert fresh.hits[0].source.title == "افتتاح مكتبة الزيتون الرقمية"

    embedder.release.set()
    worker.join(10)
    assert in_flight["answer"] == on_v1  # finished on v000001, exactly as it would have before
    assert all(h["title"] != "افتتاح مكتبة الزيتون الرقمية" for h in in_flight["answer"]["hits"])


def test_live_searcher_keeps_answering_when_new_version_is_unloadable(tmp_path: Path) -> None:
    corpus, index_dir = tmp_path / "corpus", tmp_path / "index"
    write_corpus(corpus, 10)
    update_index(corpus, index_dir, HashEmbedder(), BuildOptions())
    live = LiveSearcher(index_dir, HashEmbedder(), OPEN_GATE, check_every=0)
    before = live.answer(QUESTION, k=3).to_json()
    (index_dir / "versions" / "v000009").mkdir()  # no manifest: an incomplete version
    (index_dir / "CURRENT").write_text("v000009\n")
    assert live.answer(QUESTION, k=3).to_json() == before
    assert live.get().version.name == "v000001"


def test_live_searcher_never_mixes_models(tmp_path: Path) -> None:
    corpus, index_dir = tmp_path / "corpus", tmp_path / "index"
    write_corpus(corpus, 10)
    update_index(corpus, index_dir, HashEmbedder(), BuildOptions())
    with pytest.raises(ModelMismatchError, match="built with test/hash-embedder"):
        LiveSearcher(index_dir, HashEmbedder(name="test/other"), OPEN_GATE).get()
    live = LiveSearcher(index_dir, HashEmbedder(), OPEN_GATE, check_every=0)
    assert live.get().version.name == "v000001"
    # An operator rebuilds with another model: the searcher, still on the old model, keeps the old version.
    update_index(corpus, index_dir, HashEmbedder(name="test/other", salt="B"), BuildOptions())
    assert read_current(index_dir) == "v000002"
    assert live.get().version.name == "v000001"


def test_readers_never_see_a_half_written_version(tmp_path: Path) -> None:
    corpus, index_dir = tmp_path / "corpus", tmp_path / "index"
    write_corpus(corpus, 30)
    update_index(corpus, index_dir, HashEmbedder(), BuildOptions())
    errors: list[BaseException] = []
    seen: set[str] = set()
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            try:
                version = open_current(index_dir)
                (n,) = version.db.execute("SELECT count(*) FROM articles").fetchone()
                assert n == version.n_articles and version.faiss.ntotal == version.n_chunks
                seen.add(version.name)
                version.close()
            except BaseException as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(1, 7):
            correct_article(corpus / f"art-{i:05d}.txt")
            update_index(corpus, index_dir, HashEmbedder(), BuildOptions(keep_versions=2))
    finally:
        done.set()
        reader.join(10)
    assert not errors, errors[:3]
    assert len(seen) >= 2  # the reader really followed the switches
