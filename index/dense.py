"""The FAISS side of the index: which index type to build, how to load it cheaply, how to search it.

Exact search (`flat`) is fast enough up to FLAT_LIMIT vectors (a few ms per query on two cores);
beyond, `auto` builds an inverted-file index with 8-bit scalar-quantised codes (`ivf_sq8`): a
quarter of the float32 size, memory-mapped when served, with the best candidates re-scored
exactly from the memory-mapped vectors.npy so scores (and the no-answer gate) stay exact.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

FLAT_LIMIT = 200_000
KINDS = ("flat", "ivf_sq8", "hnsw_sq8", "ivf_pq", "hnsw")
APPROXIMATE_AUTO = "ivf_sq8"
DEFAULT_NPROBE = 48
DEFAULT_EF_SEARCH = 128
ADD_BATCH = 65_536


@dataclass(frozen=True, slots=True)
class DenseParams:
    """Search-time knobs of the approximate kinds (0 = the value stored in the index)."""

    nprobe: int = 0
    ef_search: int = 0
    exact_rerank: bool = True


def choose_kind(n_vectors: int, requested: str = "auto") -> str:
    """Exact search while it is fast enough; an approximate index beyond."""
    if requested in ("", "auto"):
        return "flat" if n_vectors <= FLAT_LIMIT else APPROXIMATE_AUTO
    if requested not in KINDS:
        raise ValueError(f"unknown FAISS index kind {requested!r} (NEWSQA_FAISS_INDEX: auto, {', '.join(KINDS)})")
    return requested


def ivf_lists(n_vectors: int) -> int:
    """Number of IVF cells: ~2·sqrt(n), so a cell holds ~sqrt(n)/2 vectors."""
    return int(min(65_536, max(16, 2 * math.isqrt(max(1, n_vectors)))))


def factory_string(kind: str, n_vectors: int, dim: int) -> str:
    """The faiss.index_factory description of a kind at this size."""
    # An IVF needs vectors to train on; tiny sets (tests, overrides) get fewer cells.
    nlist = min(ivf_lists(n_vectors), max(1, n_vectors // 39))
    if kind == "flat":
        return "Flat"
    if kind == "ivf_sq8":
        return f"IVF{nlist},SQ8"
    if kind == "ivf_pq":
        m = next(m for m in (dim // 8, dim // 6, dim // 4, dim // 2, dim) if m and dim % m == 0)
        return f"IVF{nlist},PQ{m}x8"
    if kind == "hnsw_sq8":
        return "HNSW32,SQ8"
    if kind == "hnsw":
        return "HNSW32,Flat"
    raise ValueError(f"unknown FAISS index kind {kind!r}")


def _training_sample(vectors: np.ndarray, nlist: int, seed: int = 0) -> np.ndarray:
    n = len(vectors)
    size = min(n, max(nlist * 40, 10_000), 200_000)
    if size >= n:
        return np.ascontiguousarray(vectors, dtype=np.float32)
    rows = np.sort(np.random.default_rng(seed).choice(n, size, replace=False))
    return np.ascontiguousarray(vectors[rows], dtype=np.float32)


def build_faiss(vectors: np.ndarray, kind: str = "auto"):  # noqa: ANN201 - faiss.Index
    """A FAISS inner-product index over L2-normalised vectors (inner product = cosine).

    `vectors` may be a memory map: it is trained on a sample and added in slices, so a build
    never holds more than one slice of float32 beside the index itself.
    """
    import faiss

    n, dim = vectors.shape
    kind = choose_kind(n, kind)
    index = faiss.index_factory(dim, factory_string(kind, n, dim), faiss.METRIC_INNER_PRODUCT)
    if kind.startswith("hnsw"):
        hnsw = _any(faiss.downcast_index(index)).hnsw
        hnsw.efConstruction = 80
        hnsw.efSearch = DEFAULT_EF_SEARCH
    if n and not index.is_trained:
        ivf = faiss.extract_index_ivf(index) if kind.startswith("ivf") else None
        if ivf is not None:
            ivf.cp.niter = 10  # coarse k-means: 10 rounds are plenty for cell assignment
            ivf.cp.max_points_per_centroid = 256
        index.train(_training_sample(vectors, ivf.nlist if ivf is not None else 1))
    if kind.startswith("ivf"):
        faiss.extract_index_ivf(index).nprobe = DEFAULT_NPROBE
    for start in range(0, n, ADD_BATCH):
        index.add(np.ascontiguousarray(vectors[start : start + ADD_BATCH], dtype=np.float32))
    return index


def write_faiss(index, path: Path) -> None:  # noqa: ANN001
    """Write the index file."""
    import faiss

    faiss.write_index(index, str(path))


def read_faiss(path: Path, mmap: bool = True):  # noqa: ANN201
    """Load an index, memory-mapped where FAISS allows it so start-up stays fast.

    IVF inverted lists are mapped with IO_FLAG_MMAP, flat and scalar-quantised code arrays with
    IO_FLAG_MMAP_IFC; what cannot be mapped (an HNSW graph) is read into memory.
    """
    import faiss

    if mmap:
        for flags in (
            faiss.IO_FLAG_MMAP | faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY,
            faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY,
        ):
            try:
                return faiss.read_index(str(path), flags)
            except RuntimeError:
                continue
    return faiss.read_index(str(path))


def set_search_threads(threads: int) -> None:
    """OpenMP threads FAISS uses (process-wide; called by the serving entry points, never at import).

    One question's search gains little from more threads, and on a busy two-core server the
    OpenMP barriers cost more than they save (10^5 flat: 48 ms with 2 threads, 14 ms with 1,
    measured under load); concurrent questions already run in parallel threads.
    """
    import faiss

    if threads > 0:
        faiss.omp_set_num_threads(threads)


def is_exact(index) -> bool:  # noqa: ANN001
    """Whether the index scores exactly (flat) rather than approximately."""
    import faiss

    return isinstance(faiss.downcast_index(index), faiss.IndexFlat)


def search_parameters(index, params: DenseParams, selector=None, share: float = 1.0):  # noqa: ANN001, ANN201
    """faiss.SearchParameters carrying nprobe/efSearch overrides and an id filter, or None.

    A filter that keeps only `share` of the rows widens the approximate search by 1/share (up
    to all cells), so a narrow date or outlet filter still finds its best rows.
    """
    import faiss

    inner = faiss.downcast_index(index)
    widen = 1.0 / max(share, 1e-9)
    p: Any  # faiss's stubs lack the HNSW search parameters
    if isinstance(inner, faiss.IndexIVF):
        p = faiss.SearchParametersIVF()
        p.nprobe = int(min(inner.nlist, math.ceil((params.nprobe or inner.nprobe) * widen)))
    elif isinstance(inner, faiss.IndexHNSW):
        p = _any(faiss).SearchParametersHNSW()
        p.efSearch = int(min(16_384, math.ceil((params.ef_search or inner.hnsw.efSearch) * widen)))
    elif selector is None:
        return None
    else:
        p = faiss.SearchParameters()
    if selector is not None:
        p.sel = selector
    return p


def search(
    index,  # noqa: ANN001
    qvec: np.ndarray,
    n: int,
    params: DenseParams = DenseParams(),
    allowed: np.ndarray | None = None,
    vectors: np.ndarray | None = None,
) -> list[tuple[int, float]]:
    """Top-n rows by cosine; approximate results are re-scored exactly from `vectors` when given.

    `allowed` restricts the search to those rows (filters). Re-scoring reads only the candidate
    rows (an array, or a RowReader that preads them), so exact scores cost ~100 rows per query.
    """
    import faiss

    if index.ntotal == 0:
        return []
    selector = None
    if allowed is not None:
        if len(allowed) == 0:
            return []
        selector = faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64))
        n = min(n, len(allowed))
    n = min(n, index.ntotal)
    q = np.ascontiguousarray(qvec, dtype=np.float32).reshape(1, -1)
    share = len(allowed) / index.ntotal if allowed is not None else 1.0
    sp = search_parameters(index, params, selector, share)
    scores, ids = index.search(q, n, params=sp) if sp is not None else index.search(q, n)
    keep = ids[0] >= 0
    ids, scores = ids[0][keep], scores[0][keep]
    if params.exact_rerank and vectors is not None and len(ids) and not is_exact(index):
        order = np.argsort(ids)
        exact = np.asarray(vectors[ids[order]], dtype=np.float32) @ q[0]
        scores = np.empty_like(exact)
        scores[order] = exact
        best = np.lexsort((ids, -scores))
        ids, scores = ids[best], scores[best]
    return [(int(i), float(s)) for i, s in zip(ids, scores)]


class RowReader:
    """Reads chosen rows of a .npy matrix with pread: exact re-scoring without mapping the file.

    A memory map would fault in the kernel's read-ahead around every row touched (hundreds of MB
    of resident pages after a few hundred queries over 10^6 vectors); pread leaves those pages in
    the shared page cache, outside the serving process's resident memory.
    """

    def __init__(self, path: Path) -> None:
        self._fd = -1
        fmt = np.lib.format
        with open(path, "rb") as handle:
            version = fmt.read_magic(handle)
            read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
            shape, fortran, dtype = read_header(handle)
            self.offset = handle.tell()
        if fortran or len(shape) != 2:
            raise ValueError(f"{path}: expected a C-ordered 2-d array")
        self.shape, self.dtype = shape, np.dtype(dtype)
        self.row_bytes = shape[1] * self.dtype.itemsize
        self._fd = os.open(path, os.O_RDONLY)

    def __len__(self) -> int:
        return self.shape[0]

    def read_range(self, start: int, stop: int) -> np.ndarray:
        """Rows start..stop-1 in one read."""
        n = max(0, int(stop) - int(start))
        if n and not (0 <= start and stop <= self.shape[0]):
            raise IndexError(f"rows {start}..{stop - 1} outside 0..{self.shape[0] - 1}")
        raw = os.pread(self._fd, n * self.row_bytes, self.offset + int(start) * self.row_bytes) if n else b""
        return np.frombuffer(raw, dtype=self.dtype).reshape(n, self.shape[1])

    def __getitem__(self, rows) -> np.ndarray:  # noqa: ANN001
        if isinstance(rows, slice):
            start, stop, step = rows.indices(self.shape[0])
            if step == 1:
                return self.read_range(start, stop)
        rows = np.atleast_1d(np.asarray(rows, dtype=np.int64))
        out = np.empty((len(rows), self.shape[1]), dtype=self.dtype)
        for i, r in enumerate(rows):
            if not 0 <= r < self.shape[0]:
                raise IndexError(f"row {r} outside 0..{self.shape[0] - 1}")
            out[i] = np.frombuffer(os.pread(self._fd, self.row_bytes, self.offset + int(r) * self.row_bytes), dtype=self.dtype)
        return out

    def close(self, _close=os.close) -> None:  # noqa: ANN001 - bound early: __del__ may run at shutdown
        """Close the file."""
        if self._fd >= 0:
            _close(self._fd)
            self._fd = -1

    def __del__(self) -> None:
        self.close()


def index_kind(index) -> str:  # noqa: ANN001
    """A short name for a loaded index's type, for status output."""
    import faiss

    return type(faiss.downcast_index(index)).__name__


def _any(value: object) -> Any:
    """`value` untyped, where faiss's bundled stubs miss attributes the library has."""
    return value
