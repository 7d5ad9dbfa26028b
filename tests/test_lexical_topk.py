"""Lexical candidates come from bm25s's top-k retrieval (filters as its weight mask), not from scoring every chunk."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from index.store import open_current
from retrieval.candidates import LexicalSide
from retrieval.query import analyse

QUESTIONS = (
    "كم قاربا تضرر في فيضانات ميناء الصيادين؟",
    "كم عدد متابعي حساب شامي ويتنس؟",
    "ما علاقة داعش بالانترنت والتجنيد؟",
    "متى افتتحت المكتبة؟",
    "who won the match",  # no term the corpus knows
)


def test_top_k_with_and_without_filters_returns_what_full_scoring_returns(built_index: Path) -> None:
    version = open_current(built_index)
    lexical = LexicalSide(version)
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
