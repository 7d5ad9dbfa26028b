"""Sentence vectors stored at build time: answering encodes only the question, and updates reuse them."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from index.build import BuildOptions, update_index
from index.store import open_current
from retrieval.quote import quote_units
from retrieval.search import Searcher
from tests.conftest import TEST_CORPUS


class CountingEmbedder:
    """The real embedder, counting what it is asked to encode."""

    def __init__(self, inner) -> None:  # noqa: ANN001
        self.inner, self.name, self.passages, self.queries = inner, inner.name, 0, 0

    @property
    def dim(self) -> int:
        return self.inner.dim

    def encode_passages(self, texts, batch_size: int = 32):  # noqa: ANN001, ANN201
        self.passages += len(texts)
        return self.inner.encode_passages(texts, batch_size)

    def encode_queries(self, texts, batch_size: int = 32):  # noqa: ANN001, ANN201
        self.queries += len(texts)
        return self.inner.encode_queries(texts, batch_size)


def test_stored_sentence_vectors_serve_answers_without_encoding(tmp_path: Path, embedder) -> None:  # noqa: ANN001
    corpus = tmp_path / "corpus"
    shutil.copytree(TEST_CORPUS, corpus)
    counting = CountingEmbedder(embedder)
    opts = BuildOptions(sentence_vectors=True)
    report = update_index(corpus, tmp_path / "idx", counting, opts)
    version = open_current(tmp_path / "idx")
    vecs, offsets = version.sentence_vectors()
    assert len(offsets) == version.n_chunks + 1 and len(vecs) == offsets[-1] > version.n_chunks
    assert counting.passages == report.embedded_chunks + len(vecs)

    stored = Searcher(version, counting)
    counting.passages = counting.queries = 0
    answer = stored.answer("كم قاربا تضرر في فيضانات ميناء الصيادين؟")
    assert answer.found and any("120 قاربا" in h.quote.text for h in answer.hits)
    assert counting.passages == 0 and counting.queries == 1  # only the question was encoded

    # The stored vectors are the ones a searcher would otherwise compute on first need.
    rows = list(range(version.n_chunks))
    from_build = stored.unit_vectors(rows)

    for r, v in zip(rows, from_build):
        chunk = version.chunk(r)
        body = version.article(chunk.article_row).body
        fresh = embedder.encode_passages([body[a:b] for a, b in quote_units(body, chunk.start, chunk.end)])
        assert v.shape == fresh.shape and np.allclose(v, fresh, atol=2e-3)

    # An update that changes one article re-encodes only that article's chunks and sentences.
    path = corpus / "harbour-flood.txt"
    path.write_text(path.read_text(encoding="utf-8").replace("40 مليون", "45 مليون"), encoding="utf-8")
    counting.passages = 0
    again = update_index(corpus, tmp_path / "idx", counting, opts)
    assert again.changed == 1 and again.unchanged == 4
    new_version = open_current(tmp_path / "idx")
    nv, no = new_version.sentence_vectors()
    flood_rows = [r for r in range(new_version.n_chunks) if new_version.article(new_version.chunk(r).article_row).title.startswith("فيضانات")]
    flood_sentences = sum(int(no[r + 1] - no[r]) for r in flood_rows)
    assert counting.passages == again.embedded_chunks + flood_sentences
