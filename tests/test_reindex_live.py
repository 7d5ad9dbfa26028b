"""A long-lived searcher follows new versions; a question in flight finishes on the version it started with."""

from __future__ import annotations

import threading
from pathlib import Path

from bench.corpusgen import write_corpus
from index.build import BuildOptions, update_index
from index.store import read_current
from retrieval.search import LiveSearcher, SearchConfig
from tests.fakes import HashEmbedder

QUESTION = "متى افتتحت مكتبة الزيتون الرقمية في المدينة القديمة؟"
OPEN_GATE = SearchConfig(min_dense=0, min_dense_with_words=0, min_dense_cross=0)


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
