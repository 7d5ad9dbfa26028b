"""Micro-batching of concurrent question embeddings: same vectors as one by one, fewer model calls."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from index.embedder import encode_questions
from retrieval.batching import BatchingEmbedder, QueryBatcher
from retrieval.search import SearchConfig, Searcher

QUESTIONS = [
    "كيف يستخدم تنظيم داعش الإنترنت؟",
    "من هو صاحب حساب شامي ويتنس؟",
    "ما قرار البنك المركزي بشأن أسعار الفائدة؟",
    "ماذا حدث في الميناء بعد الفيضان؟",
    "من فاز بكأس البطولة القارية؟",
    "What did the central bank decide?",
    "كم عدد المتابعين على تويتر؟",
    "متى أعلنت الشركة نتائجها؟",
] * 3


def test_many_threads_get_the_vectors_one_by_one_encoding_gives(embedder) -> None:  # noqa: ANN001
    expected = {q: encode_questions(embedder, [q])[0] for q in set(QUESTIONS)}
    results: dict[int, np.ndarray] = {}
    barrier = threading.Barrier(len(QUESTIONS))
    with QueryBatcher(embedder, max_batch=16, max_wait=0.05) as batcher:

        def ask(i: int) -> None:
            barrier.wait()
            results[i] = batcher.encode(QUESTIONS[i], timeout=120)

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(QUESTIONS))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # a text asked again while it waits joins that encode: every asker counted once, each text encoded
        assert batcher.encoded + batcher.joined == len(QUESTIONS) and batcher.encoded >= len(set(QUESTIONS))
        assert batcher.batches < len(QUESTIONS), "concurrent questions should share encoder calls"
    assert len(results) == len(QUESTIONS)
    for i, q in enumerate(QUESTIONS):
        assert results[i].dtype == np.float32
        np.testing.assert_allclose(results[i], expected[q], atol=2e-5)


def test_a_failing_batch_reaches_its_askers_and_the_worker_goes_on(embedder) -> None:  # noqa: ANN001
    with QueryBatcher(embedder, max_wait=0.0) as batcher:
        with pytest.raises(Exception):  # noqa: B017 - whatever the model raises for a non-text
            batcher.encode(None, timeout=60)  # type: ignore[arg-type]
        v = batcher.encode("سؤال بعد الخطأ", timeout=60)
    np.testing.assert_allclose(v, encode_questions(embedder, ["سؤال بعد الخطأ"])[0], atol=2e-5)


def test_closed_batcher_refuses_new_questions(embedder) -> None:  # noqa: ANN001
    batcher = QueryBatcher(embedder)
    batcher.close()
    with pytest.raises(RuntimeError, match="closed"):
        batcher.submit("سؤال")


async def test_async_askers_share_batches(embedder) -> None:  # noqa: ANN001
    with QueryBatcher(embedder, max_batch=8, max_wait=0.05) as batcher:
        vectors = await asyncio.gather(*(batcher.encode_async(q) for q in QUESTIONS[:8]))
        assert batcher.batches <= 2
    for q, v in zip(QUESTIONS[:8], vectors):
        np.testing.assert_allclose(v, encode_questions(embedder, [q])[0], atol=2e-5)


def test_searcher_through_the_batching_embedder_answers_the_same(built_index, searcher, embedder) -> None:  # noqa: ANN001
    batching = BatchingEmbedder(embedder)
    try:
        batched = Searcher(searcher.version, batching, SearchConfig())
        assert batching.dim == embedder.dim
        for q in QUESTIONS[:3]:
            a, b = searcher.answer(q), batched.answer(q)
            assert [h.quote.text for h in a.hits] == [h.quote.text for h in b.hits]
            assert [h.chunk_row for h in a.hits] == [h.chunk_row for h in b.hits]
        assert batching.batcher.encoded >= 3
    finally:
        batching.close()


def test_a_question_asked_again_reuses_its_vector_and_the_cache_stays_bounded(embedder) -> None:  # noqa: ANN001
    first, second, third = QUESTIONS[0], QUESTIONS[1], QUESTIONS[2]
    with QueryBatcher(embedder, max_batch=4, max_wait=0.0, cache=2) as batcher:
        v1 = batcher.encode(first, timeout=120)
        again = batcher.encode(first, timeout=120)
        assert batcher.encoded == 1 and batcher.cache_hits == 1  # the second asking ran no model
        np.testing.assert_allclose(again, encode_questions(embedder, [first])[0], atol=1e-5)
        assert again is v1 and not again.flags.writeable  # one shared, read-only vector
        batcher.encode(second, timeout=120)
        batcher.encode(third, timeout=120)  # the cache holds two: the least recently asked (first) goes
        assert len(batcher._cache) == 2 and first not in batcher._cache
        batcher.encode(first, timeout=120)
        assert batcher.encoded == 4
    with QueryBatcher(embedder, max_batch=4, max_wait=0.0) as plain:  # no cache unless asked for
        plain.encode(first, timeout=120)
        plain.encode(first, timeout=120)
        assert plain.encoded == 2 and plain.cache_hits == 0


def test_askers_of_a_text_already_queued_join_its_encode(embedder) -> None:  # noqa: ANN001
    started, release = threading.Event(), threading.Event()

    class Held:
        """The real embedder, held at its first call until released (so the next askers queue up)."""

        name, dim = embedder.name, embedder.dim

        def encode_queries(self, texts, batch_size=32):  # noqa: ANN001, ANN201
            started.set()
            release.wait(60)
            return embedder.encode_queries(texts, batch_size)

    with QueryBatcher(Held(), max_batch=8, max_wait=0.0) as batcher:  # type: ignore[arg-type]
        first = batcher.submit(QUESTIONS[0])
        assert started.wait(60)  # the worker is inside the encoder with the first question
        same = [batcher.submit(QUESTIONS[1]) for _ in range(3)]
        release.set()
        vectors = [f.result(60) for f in same]
        first.result(60)
    assert batcher.encoded == 2 and batcher.joined == 2 and batcher.batches == 2
    assert vectors[0] is vectors[1] is vectors[2] and not vectors[0].flags.writeable
    np.testing.assert_allclose(vectors[0], embedder.encode_queries([QUESTIONS[1]])[0], atol=2e-5)


def test_a_large_shared_batch_is_encoded_in_length_sorted_groups(embedder) -> None:  # noqa: ANN001
    from retrieval.batching import ENCODE_GROUP

    started, release = threading.Event(), threading.Event()
    calls: list[tuple[int, int]] = []  # (texts, batch_size) of each encoder call

    class Held:
        """The real embedder, held at its first call so the next 12 questions queue up as one batch."""

        name, dim = embedder.name, embedder.dim

        def encode_queries(self, texts, batch_size=32):  # noqa: ANN001, ANN201
            calls.append((len(texts), batch_size))
            started.set()
            release.wait(60)
            return embedder.encode_queries(texts, batch_size)

    distinct = list(dict.fromkeys(QUESTIONS))
    asked = distinct + [f"{q} ({i})" for i, q in enumerate(distinct[:5])]  # 13 distinct texts
    with QueryBatcher(Held(), max_batch=16, max_wait=0.0) as batcher:  # type: ignore[arg-type]
        first = batcher.submit(asked[0])
        assert started.wait(60)
        rest = [batcher.submit(q) for q in asked[1:]]
        release.set()
        vectors = [first.result(60)] + [f.result(60) for f in rest]
    # one shared call for the 12 queued questions, which the model runs in groups of ENCODE_GROUP (sorted by length)
    assert calls == [(1, 1), (12, ENCODE_GROUP)]
    for q, v in zip(asked, vectors):
        np.testing.assert_allclose(v, embedder.encode_queries([q])[0], atol=2e-5)  # Held has only encode_queries: float


def test_a_batching_embedder_on_a_shared_batcher_uses_its_cache_and_leaves_it_running(embedder) -> None:  # noqa: ANN001
    from index.embedder import model_fingerprint_of

    with QueryBatcher(embedder, max_batch=8, max_wait=0.0, cache=16) as shared:
        view = BatchingEmbedder(embedder, batcher=shared)
        words = view.encode_queries(["followers", "account"])  # e.g. an English question's words, from the searcher
        np.testing.assert_allclose(words[0], embedder.encode_queries(["followers"])[0], atol=2e-5)
        assert model_fingerprint_of(view) == model_fingerprint_of(embedder)  # the wrapped model's, for the serving check
        view.close()  # the shared batcher is its owner's to stop
        again = shared.encode("followers", timeout=60)
        assert shared.cache_hits == 1 and shared.encoded == 2
        np.testing.assert_array_equal(again, words[0])


def test_the_second_encoder_batched_gives_its_vectors_one_by_one_in_fewer_calls() -> None:
    from index.second_encoder import shared_encoder

    encoder = shared_encoder()
    texts = sorted(set(QUESTIONS))
    expected = {q: encoder.encode([q])[0] for q in texts}
    calls: list[int] = []

    def encode(batch: list[str]) -> np.ndarray:
        calls.append(len(batch))
        return encoder.encode(batch)

    with QueryBatcher(None, max_batch=len(texts), max_wait=10.0, encode=encode) as batcher:
        futures = [batcher.submit(q) for q in texts]  # the worker waits for more until the batch is full
        got = [f.result(60) for f in futures]
    assert calls == [len(texts)]  # one call for all of them
    for q, v in zip(texts, got):
        np.testing.assert_allclose(v, expected[q], atol=2e-5)


def test_a_searcher_given_the_second_encoders_vector_answers_as_when_it_encodes_it(searcher) -> None:  # noqa: ANN001
    from index.second_encoder import shared_encoder

    moved = 0
    for q in QUESTIONS[:8]:
        own = searcher.answer(q)
        vec = shared_encoder().encode([q])[0]
        given = searcher.answer(q, second_qvec=vec)
        assert [(h.source.article_id, h.quote.text) for h in given.hits] == [(h.source.article_id, h.quote.text) for h in own.hits]
        assert given.probability == pytest.approx(own.probability)
        moved += searcher.answer(q, second_qvec=-vec).probability != pytest.approx(own.probability)
    assert moved  # the vector given is the one scored with, not encoded again


def test_a_batcher_needs_an_embedder_or_an_encode_function() -> None:
    with pytest.raises(ValueError, match="embedder or an encode function"):
        QueryBatcher(None)


async def test_the_bot_searches_without_a_batched_second_vector_when_that_encoder_cannot_load() -> None:
    from bot.telegram import second_vector
    from index.second_encoder import SecondEncoderError

    def broken(texts: list[str]) -> np.ndarray:
        raise SecondEncoderError("the second encoder's package is missing")

    def other(texts: list[str]) -> np.ndarray:
        raise RuntimeError("not the encoder's own error")

    with QueryBatcher(None, max_wait=0.0, encode=broken) as batcher:
        assert await second_vector(batcher, "سؤال") is None  # the search encodes it and says what is wrong
    with QueryBatcher(None, max_wait=0.0, encode=other) as batcher:
        with pytest.raises(RuntimeError, match="not the encoder's own error"):
            await second_vector(batcher, "سؤال")
