"""A deterministic stand-in embedder for build-mechanics tests that make no retrieval-quality claim."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from index.arabic import terms


class HashEmbedder:
    """Hashes each text's normalised terms into a small normalised vector; counts every call.

    Fast and deterministic, so crash and incremental-build tests can run many builds; it says
    nothing about answer quality and is never used where quality is asserted.
    """

    def __init__(self, name: str = "test/hash-embedder", dim: int = 64, salt: str = "", fingerprint: str | None = None) -> None:
        self.name = name
        self.fingerprint = fingerprint  # stands for the hash of a real model's weight files
        self._dim = dim
        self.salt = salt.encode("utf-8")
        self.passage_calls = 0
        self.passages_encoded = 0
        self.query_calls = 0

    @property
    def dim(self) -> int:
        return self._dim

    def _vectors(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for term in terms(text) or [text]:
                h = int.from_bytes(hashlib.blake2b(self.salt + term.encode("utf-8"), digest_size=8).digest(), "little")
                out[i, h % self._dim] += 1.0 if (h >> 32) & 1 else -1.0
            norm = float(np.linalg.norm(out[i]))
            out[i] = out[i] / norm if norm else 1.0 / np.sqrt(self._dim)
        return out

    def encode_passages(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        self.passage_calls += 1
        self.passages_encoded += len(texts)
        return self._vectors(texts)

    def encode_queries(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        self.query_calls += 1
        return self._vectors(texts)
