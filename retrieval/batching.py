"""Micro-batching of question embeddings: concurrent askers share one model call.

One encoder call for 8 short questions costs little more than for one, so under load a worker
thread takes whatever questions are queued (up to `max_batch`, waiting at most `max_wait`
for more once one has arrived) and encodes them together. `BatchingEmbedder` wraps an
Embedder so a Searcher (or the bot) gets this without changing its calls. A question asked
again (the same text: a story everyone is asking about) can reuse its vector from a small cache.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future

import numpy as np

from index.embedder import Embedder, encode_questions

_STOP = object()
# Texts per model call within one shared batch. The embedder sorts a call's texts by length, so groups of 8
# pad each question only to its neighbours in length, not to the batch's longest: the encoder's CPU per
# question falls ~13% for a batch of 16 distinct questions, and 8 is past the point where bigger calls pay.
# (Questions in Arabic go to the int8 model one at a time: index/embedder.py encode_questions.)
ENCODE_GROUP = 8


class QueryBatcher:
    """Encodes questions submitted from many threads in shared batches on one worker thread.

    The same text asked again while it waits joins the pending encode; once encoded, it may be kept in a small
    cache (`cache` vectors, least recently asked out first), so a question many people ask runs the model once.
    """

    def __init__(
        self,
        embedder: Embedder | None,
        max_batch: int = 32,
        max_wait: float = 0.002,
        cache: int = 0,
        encode: Callable[[list[str]], np.ndarray] | None = None,
    ) -> None:
        """`encode`, when given, replaces the embedder's question encoding (e.g. the second encoder's, in the bot)."""
        if embedder is None and encode is None:
            raise ValueError("QueryBatcher needs an embedder or an encode function")
        self.embedder = embedder
        self._encode_texts = encode
        self.max_batch = max(1, max_batch)
        self.max_wait = max(0.0, max_wait)
        self.cache_size = max(0, cache)
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._pending: dict[str, list[Future]] = {}  # texts queued or being encoded → who waits for them
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self._closed = False
        self.batches = 0  # number of encoder calls made (for benchmarks and tests)
        self.encoded = 0  # texts encoded
        self.joined = 0  # askers who joined a pending encode of the same text
        self.cache_hits = 0  # askers answered from the cache

    def submit(self, question: str) -> Future:
        """Queue one question; the future resolves to its float32 vector (at once when the cache has it)."""
        future: Future = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("QueryBatcher is closed")
            known = self._cache.get(question) if self.cache_size else None
            if known is not None:
                self._cache.move_to_end(question)
                self.cache_hits += 1
                future.set_result(known)
                return future
            waiting = self._pending.get(question)
            if waiting is not None:
                waiting.append(future)
                self.joined += 1
                return future
            self._pending[question] = [future]
            if self._worker is None:
                self._worker = threading.Thread(target=self._run, name="query-batcher", daemon=True)
                self._worker.start()
            self._queue.put(question)
        return future

    def encode(self, question: str, timeout: float | None = None) -> np.ndarray:
        """The vector of one question, blocking until its batch is done."""
        return self.submit(question).result(timeout)

    async def encode_async(self, question: str) -> np.ndarray:
        """The vector of one question, awaited without blocking the event loop."""
        return await asyncio.wrap_future(self.submit(question))

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            batch = [item]
            deadline = time.monotonic() + self.max_wait
            stop = False
            while len(batch) < self.max_batch:
                try:
                    nxt = self._queue.get(timeout=max(0.0, deadline - time.monotonic())) if self.max_wait else self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stop = True
                    break
                batch.append(nxt)
            self._encode(batch)
            if stop:
                return

    def _encode(self, batch: list[str]) -> None:
        with self._lock:  # from here on, an asker of these texts waits for the next encode (or the cache)
            groups = [(q, self._pending.pop(q, [])) for q in batch]
        live = [(q, fs) for q, all_fs in groups if (fs := [f for f in all_fs if f.set_running_or_notify_cancel()])]
        if not live:
            return
        try:
            texts = [q for q, _ in live]
            if self._encode_texts is not None:
                vectors = self._encode_texts(texts)
            else:
                vectors = encode_questions(self.embedder, texts, batch_size=min(len(live), ENCODE_GROUP))  # type: ignore[arg-type]
        except BaseException as exc:  # the askers get the error; the worker keeps serving
            for _, fs in live:
                for f in fs:
                    f.set_exception(exc)
            return
        self.batches += 1
        self.encoded += len(live)
        for (q, fs), v in zip(live, vectors):
            vec = np.array(v, dtype=np.float32)
            if self.cache_size or len(fs) > 1:
                vec.flags.writeable = False  # shared by every asker of the same text: nobody may change it
            if self.cache_size:
                with self._lock:
                    self._cache[q] = vec
                    while len(self._cache) > self.cache_size:
                        self._cache.popitem(last=False)
            for f in fs:
                f.set_result(vec)

    def close(self) -> None:
        """Finish what is queued, then stop the worker."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            worker = self._worker
        if worker is not None:
            self._queue.put(_STOP)
            worker.join()

    def __enter__(self) -> QueryBatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class BatchingEmbedder:
    """An Embedder whose query encodings go through a QueryBatcher (its own, or one shared with other callers);
    passages go straight through, and anything else (fingerprint, backend) is the wrapped model's."""

    def __init__(self, embedder: Embedder, max_batch: int = 32, max_wait: float = 0.002, batcher: QueryBatcher | None = None) -> None:
        self.inner = embedder
        self.name = embedder.name
        self._owns_batcher = batcher is None
        self.batcher = batcher if batcher is not None else QueryBatcher(embedder, max_batch, max_wait)

    def __getattr__(self, name: str) -> object:
        if name == "inner":  # not set yet (copying, unpickling): never recurse
            raise AttributeError(name)
        return getattr(self.inner, name)

    @property
    def dim(self) -> int:
        """Vector dimension of the wrapped model."""
        return self.inner.dim

    def encode_passages(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Passages are encoded directly (builds batch them already)."""
        return self.inner.encode_passages(texts, batch_size)

    def encode_questions(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Users' questions through the shared queue, like encode_queries (never around it to the wrapped model)."""
        return self.encode_queries(texts, batch_size)

    def encode_queries(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Each question joins the shared queue; returns when all of them are encoded."""
        futures = [self.batcher.submit(t) for t in texts]
        if not futures:
            return self.inner.encode_queries([], batch_size)
        return np.stack([f.result() for f in futures])

    def close(self) -> None:
        """Stop the batching worker (a shared one is its owner's to stop)."""
        if self._owns_batcher:
            self.batcher.close()
