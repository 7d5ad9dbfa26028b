"""Candidates from Qdrant: dense and sparse (BM25) queries with payload filters, in one round trip.

Fusion, scoring and quoting stay on the client (retrieval/search.py), identical for both backends: the
fitted passage model needs each side's own rank and score, which the engine's server-side RRF would hide.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from index.dense import DenseParams
from index.qdrant_store import CHUNK_FIELDS, QdrantVersion, epoch_minutes
from index.sparse import idf, query_vector
from retrieval.query import Query, TermWeights, weigh
from retrieval.types import SearchFilters

NOTHING = "nothing"  # a filter no article passes (an outlet the index does not hold)


class QdrantBackend:
    """Candidate generation against one version's chunks collection."""

    def __init__(self, version: QdrantVersion) -> None:
        self.version = version
        self.client = version.client
        self.unknown_idf = idf(0, max(1, version.n_chunks))

    def weigh(self, query: Query) -> TermWeights:
        """idf from the version's terms collection (one request for all the question's terms)."""
        dfs = self.version.document_frequencies(list(query.terms))
        return weigh(query, lambda t: self.version.idf(dfs[t]) if t in dfs else None, self.unknown_idf)

    def restrict(self, filters: SearchFilters | None) -> Any:
        """A Qdrant payload filter on date (minutes), outlet and article id; None for no filter."""
        from qdrant_client import models

        if filters is None or not filters.active:
            return None
        must: list[Any] = []
        if filters.since is not None or filters.until is not None:
            last = filters.last_minute
            must.append(models.FieldCondition(key="date", range=models.Range(
                gte=epoch_minutes(filters.since) if filters.since is not None else None,
                lte=epoch_minutes(last) if last is not None else None,
            )))
        if filters.sources:  # the outlets the index holds that the filter admits, matched exactly by the engine
            names = [s for s in self.version.manifest.get("sources", []) if filters.admits_source(s)]
            if not names:
                return NOTHING
            must.append(models.FieldCondition(key="source", match=models.MatchAny(any=names)))
        must_not = []
        if filters.exclude_articles:
            must_not.append(models.FieldCondition(key="article_id", match=models.MatchAny(any=list(filters.exclude_articles))))
        return models.Filter(must=must or None, must_not=must_not or None)

    def lexical(self, query: Query, n: int, restriction: Any = None) -> list[tuple[int, float]]:
        """The sparse side: BM25 document weights × the engine's IDF × how often the question uses each term."""
        from qdrant_client import models

        if restriction == NOTHING or not query.terms or n <= 0:
            return []
        ids, values = query_vector(query.terms)
        got = self.client.query_points(
            self.version.chunks, query=models.SparseVector(indices=ids, values=values), using="bm25",
            query_filter=restriction, limit=n, with_payload=CHUNK_FIELDS,
        )
        return self._hits(got.points, positive=True)

    def dense(self, qvec: np.ndarray, n: int, params: DenseParams, restriction: Any = None) -> list[tuple[int, float]]:
        """The dense side: inner product over unit vectors (cosine); exact unless the index is large."""
        from qdrant_client import models

        if restriction == NOTHING or n <= 0:
            return []
        search = models.SearchParams(hnsw_ef=params.ef_search or None)
        got = self.client.query_points(
            self.version.chunks, query=np.asarray(qvec, dtype=np.float32).tolist(), using="dense",
            query_filter=restriction, limit=n, with_payload=CHUNK_FIELDS, search_params=search,
        )
        return self._hits(got.points)

    def _hits(self, points: list[Any], positive: bool = False) -> list[tuple[int, float]]:
        hits = []
        for p in points:
            if positive and p.score <= 0:
                continue
            self.version.remember_chunk(int(p.id), p.payload)
            hits.append((int(p.id), float(p.score)))
        return sorted(hits, key=lambda h: (-h[1], h[0]))

    def article_row(self, row: int) -> int:
        """From the chunk's payload (remembered from the hit)."""
        return self.version.chunk(row).article_row
