"""Micro-batching of concurrent question embeddings: same vectors as one by one, fewer model calls."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

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
    expected = {q: embedder.encode_queries([q])[0] for q in set(QUESTIONS)}
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
        assert batcher.encoded == len(QUESTIONS)
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
    np.testing.assert_allclose(v, embedder.encode_queries(["سؤال بعد الخطأ"])[0], atol=2e-5)


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
        np.testing.assert_allclose(v, embedder.encode_queries([q])[0], atol=2e-5)


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
