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
    """The `separate` method (an embedder without late chunking): every sentence encoded on its own."""
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
        # int8 dynamic quantisation scales activations per batch, so the same text in another batch
        # differs slightly: the same vector up to that, not bit for bit
        assert v.shape == fresh.shape and float(np.min((v * fresh).sum(axis=1))) > 0.98

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


class LateCountingEmbedder(CountingEmbedder):
    """The real embedder with late chunking, counting forward passes over passages."""

    late_chunking = True

    def encode_passages_with_spans(self, texts, spans, batch_size: int = 32):  # noqa: ANN001, ANN201
        self.passages += len(texts)
        return self.inner.encode_passages_with_spans(texts, spans, batch_size)


def test_late_chunked_sentence_vectors_come_from_the_chunk_pass_and_line_up(tmp_path: Path, embedder) -> None:  # noqa: ANN001
    corpus = tmp_path / "corpus"
    shutil.copytree(TEST_CORPUS, corpus)
    counting = LateCountingEmbedder(embedder)
    report = update_index(corpus, tmp_path / "idx", counting, BuildOptions(sentence_vectors=True, late_chunking=True))
    version = open_current(tmp_path / "idx")
    assert version.manifest["sentences"]["method"] == "late-chunking"
    vecs, offsets = version.sentence_vectors()
    assert len(vecs) == offsets[-1] > version.n_chunks
    assert counting.passages == report.embedded_chunks  # one forward pass per chunk, no second pass per sentence

    # Each pooled vector belongs to its own span: each sentence encoded alone is nearest its own pooled vector
    # (pooled vectors all lean towards the chunk's topic, so it is read per sentence, not per pooled vector).
    searcher = Searcher(version, counting)
    checked = 0
    for r in range(version.n_chunks):
        chunk = version.chunk(r)
        body = version.article(chunk.article_row).body
        units = quote_units(body, chunk.start, chunk.end)
        if len(units) < 2:
            continue
        pooled = searcher.unit_vectors([r])[0]
        alone = embedder.encode_passages([body[a:b] for a, b in units])
        sims = pooled @ alone.T
        assert list(np.argmax(sims, axis=0)) == list(range(len(units))), (r, sims.round(3))
        checked += len(units)
    assert checked >= 3

    # An index whose sentence vectors were made the other way is rebuilt, not mixed.
    again = update_index(corpus, tmp_path / "idx", counting, BuildOptions(sentence_vectors=True))
    assert again.switched and again.full_rebuild_reason == "sentence vectors made another way (late-chunking → separate)"


def test_late_chunking_pools_exactly_the_tokens_of_each_span(embedder) -> None:  # noqa: ANN001
    """Pooled by hand from the same forward pass: the tokens whose characters lie in the span, and no others."""
    from index.late_chunking import pool_spans

    text = "قال الوزير إن 30 شخصا قتلوا، وأضاف أن فرق الإنقاذ ما زالت تعمل."
    cut = text.index("،") + 1
    spans = [(0, cut), (cut + 1, len(text))]
    passages, units = embedder.encode_passages_with_spans([text], [spans])
    prompt = embedder._prompts.get("passage") or ""
    ((rows, hidden, mask, offsets),) = list(embedder.onnx.token_states([prompt + text]))
    first = [k for k, (a, b) in enumerate(offsets[0]) if b > a and a < cut + len(prompt) and b > len(prompt)]
    by_hand = hidden[0][first].mean(axis=0)
    assert np.allclose(units[0][0], by_hand / np.linalg.norm(by_hand), atol=1e-5)
    assert np.allclose(pool_spans(hidden[0], offsets[0], mask[0], spans, len(prompt)), units[0], atol=1e-6)
    assert abs(float(passages[0] @ embedder.encode_passages([text])[0]) - 1) < 1e-3  # the chunk vector is unchanged
