"""The FAISS side of the index: which index type to build, and how to load it cheaply."""

from __future__ import annotations

from pathlib import Path

import numpy as np

FLAT_LIMIT = 200_000


def choose_kind(n_vectors: int, requested: str = "auto") -> str:
    """Exact search while it is fast enough; an approximate index beyond."""
    if requested != "auto":
        return requested
    return "flat" if n_vectors <= FLAT_LIMIT else "hnsw"


def build_faiss(vectors: np.ndarray, kind: str = "auto"):  # noqa: ANN201 - faiss.Index
    """A FAISS inner-product index over L2-normalised vectors (inner product = cosine)."""
    import faiss

    n, dim = vectors.shape
    kind = choose_kind(n, kind)
    if kind == "flat":
        index = faiss.IndexFlatIP(dim)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        index.hnsw.efSearch = 128
    else:
        raise ValueError(f"unknown FAISS index kind {kind!r} (flat, hnsw or auto)")
    if n:
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def write_faiss(index, path: Path) -> None:  # noqa: ANN001
    """Write the index file."""
    import faiss

    faiss.write_index(index, str(path))


def read_faiss(path: Path, mmap: bool = True):  # noqa: ANN201
    """Load an index, memory-mapped where FAISS allows it so start-up stays fast."""
    import faiss

    if mmap:
        try:
            return faiss.read_index(str(path), faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
        except RuntimeError:
            pass
    return faiss.read_index(str(path))


def index_kind(index) -> str:  # noqa: ANN001
    """A short name for a loaded index's type, for status output."""
    return type(index).__name__
