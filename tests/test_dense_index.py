"""FAISS kind selection, approximate-vs-exact recall, memory-mapped loading and exact re-scoring."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from index import dense
from index.dense import DenseParams, build_faiss, choose_kind, read_faiss, search, write_faiss
from index.store import IndexVersion, open_current
from retrieval.search import SearchConfig, Searcher


def clustered(n: int, dim: int = 64, clusters: int = 50, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors around random centres (like topical news), and queries near some of them."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    x = centres[rng.integers(0, clusters, n)] + 0.35 * rng.standard_normal((n, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q = x[rng.integers(0, n, 40)] + 0.2 * rng.standard_normal((40, dim)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return x, q


def exact_top10(x: np.ndarray, q: np.ndarray) -> list[set[int]]:
    return [set(np.argsort(-(x @ v), kind="stable")[:10].tolist()) for v in q]


def test_auto_kind_is_exact_up_to_the_limit_then_approximate() -> None:
    assert choose_kind(1_000) == "flat"
    assert choose_kind(dense.FLAT_LIMIT) == "flat"
    assert choose_kind(dense.FLAT_LIMIT + 1) == "ivf_sq8"
    assert choose_kind(10**6) == "ivf_sq8"
    assert choose_kind(10**6, "flat") == "flat"  # the setting overrides the size rule
    assert choose_kind(100, "hnsw_sq8") == "hnsw_sq8"
    with pytest.raises(ValueError, match="NEWSQA_FAISS_INDEX"):
        choose_kind(100, "annoy")


def test_ivf_cells_grow_with_the_corpus() -> None:
    assert dense.ivf_lists(10**6) == 2000
    assert dense.ivf_lists(10**4) < dense.ivf_lists(10**6)
    assert dense.factory_string("ivf_sq8", 10**6, 384) == "IVF2000,SQ8"
    assert dense.factory_string("ivf_pq", 10**6, 384) == "IVF2000,PQ48x8"


@pytest.mark.parametrize("kind,faiss_type", [("flat", "IndexFlatIP"), ("ivf_sq8", "IndexIVFScalarQuantizer"),
                                             ("hnsw_sq8", "IndexHNSWSQ"), ("hnsw", "IndexHNSWFlat")])
def test_each_kind_round_trips_memory_mapped_and_finds_the_exact_neighbours(tmp_path: Path, kind: str, faiss_type: str) -> None:
    x, q = clustered(6000)
    np.save(tmp_path / "vectors.npy", x)
    vectors = np.load(tmp_path / "vectors.npy", mmap_mode="r")
    write_faiss(build_faiss(vectors, kind), tmp_path / "dense.faiss")
    index = read_faiss(tmp_path / "dense.faiss")
    assert dense.index_kind(index) == faiss_type
    assert index.ntotal == len(x)
    truth = exact_top10(x, q)
    got = [[r for r, _ in search(index, v, 100, vectors=vectors)][:10] for v in q]
    recall = np.mean([len(t & set(g)) / 10 for t, g in zip(truth, got)])
    assert recall >= 0.95, f"{kind}: recall@10 {recall:.3f} against exact search"
    # Scores handed back are exact cosines (re-scored from the vectors), so the no-answer gate sees true values.
    rows_scores = search(index, q[0], 10, vectors=vectors)
    for row, score in rows_scores:
        assert score == pytest.approx(float(x[row] @ q[0]), abs=1e-5)


def test_ivf_recall_rises_with_nprobe_and_rescoring(tmp_path: Path) -> None:
    x, q = clustered(20_000, clusters=200, seed=1)
    index = build_faiss(x, "ivf_sq8")
    truth = exact_top10(x, q)

    def recall(params: DenseParams, n: int) -> float:
        return float(np.mean([len(t & {r for r, _ in search(index, v, n, params, vectors=x)[:10]}) / 10 for t, v in zip(truth, q)]))

    low = recall(DenseParams(nprobe=1, exact_rerank=False), 10)
    served = recall(DenseParams(), 100)
    assert served >= 0.95
    assert low < served


def test_filtered_search_returns_only_allowed_rows() -> None:
    x, q = clustered(5000)
    allowed = np.arange(100, 200)
    for kind in ("flat", "ivf_sq8"):
        hits = search(build_faiss(x, kind), q[0], 20, allowed=allowed, vectors=x)
        assert hits and all(100 <= r < 200 for r, _ in hits)
        best = int(allowed[np.argmax(x[allowed] @ q[0])])
        assert hits[0][0] == best


def test_narrow_filter_on_an_approximate_index_still_finds_its_best_rows() -> None:
    x, q = clustered(20_000, clusters=200, seed=2)
    allowed = np.sort(np.random.default_rng(3).choice(len(x), 60, replace=False))
    index = build_faiss(x, "ivf_sq8")
    for v in q[:10]:
        want = allowed[np.argsort(-(x[allowed] @ v), kind="stable")[:10]].tolist()
        got = [r for r, _ in search(index, v, 100, allowed=allowed, vectors=x)][:10]
        assert got == want


@pytest.mark.parametrize("kind", ["flat", "ivf_sq8"])
def test_indexes_are_memory_mapped_not_read_into_memory(tmp_path: Path, kind: str) -> None:
    import faiss

    x, q = clustered(30_000, dim=128)
    path = tmp_path / f"{kind}.faiss"
    write_faiss(build_faiss(x, kind), path)
    index = read_faiss(path)
    maps = Path("/proc/self/maps").read_text()
    assert str(path) in maps, "the index file should be mapped, not copied into memory"
    if kind == "ivf_sq8":
        assert type(faiss.downcast_InvertedLists(faiss.extract_index_ivf(index).invlists)).__name__ == "OnDiskInvertedLists"
    assert search(index, q[0], 5, vectors=x)[0][0] == int(np.argmax(x @ q[0]))


def test_settings_choose_and_validate_the_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from bot.settings import Settings

    monkeypatch.setenv("NEWSQA_FAISS_INDEX", "ivf_sq8")
    monkeypatch.setenv("NEWSQA_FAISS_NPROBE", "64")
    s = Settings(_env_file=None)
    assert s.build_options().faiss_kind == "ivf_sq8"
    assert s.search_config().nprobe == 64
    monkeypatch.setenv("NEWSQA_FAISS_INDEX", "bogus")
    with pytest.raises(ValidationError, match="NEWSQA_FAISS_INDEX"):
        Settings(_env_file=None)


def test_searcher_over_an_approximate_index_ranks_like_the_exact_one(built_index: Path, embedder, tmp_path: Path) -> None:  # noqa: ANN001
    exact = open_current(built_index)
    copy = tmp_path / exact.name
    shutil.copytree(exact.path, copy)
    write_faiss(build_faiss(np.load(copy / "vectors.npy", mmap_mode="r"), "ivf_sq8"), copy / "dense.faiss")
    approx = IndexVersion(copy, verify="none")  # dense.faiss replaced on purpose: its checksum no longer matches
    assert dense.index_kind(approx.faiss) == "IndexIVFScalarQuantizer"
    a, b = Searcher(exact, embedder, SearchConfig()), Searcher(approx, embedder, SearchConfig())
    for question in ("كيف يستخدم تنظيم داعش الإنترنت؟", "ما قرار البنك المركزي بشأن أسعار الفائدة؟"):
        qvec = embedder.encode_queries([question])[0]
        ea, eb = a.dense(qvec, 10), b.dense(qvec, 10)
        assert [r for r, _ in ea] == [r for r, _ in eb]
        assert [s for _, s in ea] == pytest.approx([s for _, s in eb], abs=1e-5)
        assert [h.quote.text for h in a.answer(question, qvec=qvec).hits] == [h.quote.text for h in b.answer(question, qvec=qvec).hits]


def test_row_reader_reads_exactly_the_rows_asked_for(tmp_path: Path) -> None:
    x, _ = clustered(1000)
    np.save(tmp_path / "vectors.npy", x)
    reader = dense.RowReader(tmp_path / "vectors.npy")
    rows = [999, 0, 517, 517]
    np.testing.assert_array_equal(reader[rows], x[rows])
    assert len(reader) == 1000
    with pytest.raises(IndexError, match="row 1000"):
        reader[[1000]]
    reader.close()
