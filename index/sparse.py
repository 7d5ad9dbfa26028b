"""BM25 as sparse vectors: our own Arabic terms, hashed to ids, weighted on the client, IDF left to the engine.

A search engine that scores sparse vectors with an IDF modifier (Qdrant's `Modifier.IDF`) computes
Σ query_value · idf(term) · document_value. With document values set to BM25's term-frequency part,
tf / (tf + k1·(1 − b + b·len/avg_len)), and query values to how often the question uses the term, that
sum is bm25s's "lucene" BM25 (the local backend's), term for term: both use idf = ln(1 + (N − df + .5)/(df + .5)).

Terms become ids by hashing (no vocabulary to keep in step across builders and machines); two terms
sharing an id (a few in a million at 10^6 distinct terms) only pool their document frequencies.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Iterable, Sequence

# bm25s's defaults (the local backend builds with them), so both backends rank alike.
K1 = 1.5
B = 0.75


def term_id(term: str) -> int:
    """A stable 32-bit id for a term (sparse indices are uint32)."""
    return int.from_bytes(hashlib.blake2b(term.encode("utf-8"), digest_size=4).digest(), "little")


def document_vector(doc_terms: Sequence[str], avg_len: float) -> tuple[list[int], list[float]]:
    """(indices, values) of a document: BM25's term-frequency part of each distinct term."""
    counts = Counter(term_id(t) for t in doc_terms)
    norm = K1 * (1 - B + B * len(doc_terms) / max(avg_len, 1e-9))
    ids = sorted(counts)
    return ids, [counts[i] / (counts[i] + norm) for i in ids]


def query_vector(query_terms: Iterable[str]) -> tuple[list[int], list[float]]:
    """(indices, values) of a question: how often it uses each term (bm25s sums a repeated term again)."""
    counts = Counter(term_id(t) for t in query_terms)
    ids = sorted(counts)
    return ids, [float(counts[i]) for i in ids]


def idf(df: int, n: int) -> float:
    """BM25's (Lucene's) inverse document frequency; Qdrant's IDF modifier computes the same."""
    return math.log1p((n - df + 0.5) / (df + 0.5))
