"""Lexical candidates come from bm25s's top-k retrieval (filters as its weight mask), not from scoring every chunk."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from index.store import open_current
from retrieval import candidates
from retrieval.candidates import LexicalSide, lexical_backend
from retrieval.query import analyse

QUESTIONS = (
    "كم قاربا تضرر في فيضانات ميناء الصيادين؟",
    "كم عدد متابعي حساب شامي ويتنس؟",
    "ما علاقة داعش بالانترنت والتجنيد؟",
    "متى افتتحت المكتبة؟",
    "who won the match",  # no term the corpus knows
)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_top_k_with_and_without_filters_returns_what_full_scoring_returns(built_index: Path, backend: str) -> None:
    if backend == "numba":
        pytest.importorskip("numba")
    version = open_current(built_index)
    lexical = LexicalSide(version)
    lexical.backend = backend  # bm25s's backend for large indexes, tried here on the small one
    rng = np.random.default_rng(7)
    compared = 0
    for question in QUESTIONS:
        query = analyse(question)
        for mask in (None, rng.random(version.n_chunks) < 0.5, np.zeros(version.n_chunks, dtype=bool)):
            for n in (3, 10, 100):
                got = lexical.search(query, n, mask)
                want = lexical.search_all(query, n, mask)
                assert [r for r, _ in got] == [r for r, _ in want], (question, n)
                assert np.allclose([s for _, s in got], [s for _, s in want], rtol=1e-5)
                if mask is not None:
                    assert all(mask[r] for r, _ in got)  # a filtered-out chunk never comes back
                compared += len(got)
    assert compared > 50  # the questions really hit the index


def test_large_indexes_use_the_numba_backend_and_small_ones_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("numba")
    assert lexical_backend(1_000) == "numpy"  # small: numba's first call would compile for seconds
    assert lexical_backend(candidates.NUMBA_MIN_CHUNKS) == "numba"
    monkeypatch.setitem(sys.modules, "numba", None)  # numba not installed
    assert lexical_backend(candidates.NUMBA_MIN_CHUNKS) == "numpy"


def test_a_large_index_side_compiles_numba_when_loaded_and_answers_as_full_scoring(built_index: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("numba")
    monkeypatch.setattr(candidates, "NUMBA_MIN_CHUNKS", 1)  # the small test index counts as large
    lexical = LexicalSide(open_current(built_index))  # numba's first call happens here, on loading
    assert lexical.backend == "numba"
    query = analyse(QUESTIONS[0])
    got, want = lexical.search(query, 10), lexical.search_all(query, 10)
    assert got and [r for r, _ in got] == [r for r, _ in want]
    assert np.allclose([s for _, s in got], [s for _, s in want], rtol=1e-5)
