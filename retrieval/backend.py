"""The search backend: what the answer pipeline asks of an index, whoever keeps it.

Candidates by dense vector and by BM25 terms under the same filters, each term's idf, and each chunk's
article. Two implementations: `LocalBackend` (FAISS + bm25s + SQLite files, the default) and
`QdrantBackend` (retrieval/qdrant_search.py, NEWSQA_BACKEND=qdrant). Records by row (chunks, articles,
sentence vectors) come from the loaded version itself (index/store.IndexVersion, index/qdrant_store.QdrantVersion).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from index.dense import DenseParams
from index.qdrant_store import QdrantVersion
from index.store import IndexVersion
from retrieval.candidates import LexicalSide, dense_candidates, filter_mask
from retrieval.query import Query, TermWeights
from retrieval.types import SearchFilters

Restriction = Any  # what `restrict` returns: a row mask, an engine filter, or None for no filter


class SearchBackend(Protocol):
    """Candidate generation over one index version."""

    def weigh(self, query: Query) -> TermWeights:
        """The question's terms weighted by their idf in this index."""
        ...

    def restrict(self, filters: SearchFilters | None) -> Restriction:
        """The filters in the backend's own form, computed once per question for both sides."""
        ...

    def lexical(self, query: Query, n: int, restriction: Restriction = None) -> list[tuple[int, float]]:
        """Top-n chunk rows by BM25, best first, ties by row."""
        ...

    def dense(self, qvec: np.ndarray, n: int, params: DenseParams, restriction: Restriction = None) -> list[tuple[int, float]]:
        """Top-n chunk rows by cosine similarity, best first."""
        ...

    def article_row(self, row: int) -> int:
        """The article row a chunk row belongs to."""
        ...


class LocalBackend:
    """FAISS, bm25s and SQLite files of one local version."""

    def __init__(self, version: IndexVersion) -> None:
        self.version = version
        self.lexicon = LexicalSide(version)
        self._chunk_article = np.asarray(version.chunk_article)

    def weigh(self, query: Query) -> TermWeights:
        """The question's terms weighted by idf in this version's bm25s index."""
        return self.lexicon.weigh(query)

    def restrict(self, filters: SearchFilters | None) -> np.ndarray | None:
        """A boolean mask over chunk rows."""
        return filter_mask(self.version, filters)

    def lexical(self, query: Query, n: int, restriction: np.ndarray | None = None) -> list[tuple[int, float]]:
        """bm25s's top-k under the mask."""
        return self.lexicon.search(query, n, restriction)

    def dense(self, qvec: np.ndarray, n: int, params: DenseParams, restriction: np.ndarray | None = None) -> list[tuple[int, float]]:
        """FAISS's top-k under the mask (approximate kinds re-scored exactly)."""
        return dense_candidates(self.version, qvec, n, params, restriction)

    def article_row(self, row: int) -> int:
        """From chunk_article.npy."""
        return int(self._chunk_article[row])


def backend_for(version: Any) -> SearchBackend:
    """The backend that searches a loaded version: Qdrant's for a QdrantVersion, else the local files'."""
    if isinstance(version, QdrantVersion):
        from retrieval.qdrant_search import QdrantBackend  # imports qdrant-client's models: only when used

        return QdrantBackend(version)
    return LocalBackend(version)
