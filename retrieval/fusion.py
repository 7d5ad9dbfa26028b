"""Fusion: one ordering of the candidates from their lexical and dense evidence."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from retrieval.candidates import Candidate


class FusionMethod(StrEnum):
    """CONVEX is the documented default (measured better); RRF is kept for comparison."""

    CONVEX = "convex"
    RRF = "rrf"


RRF_K = 60  # the usual reciprocal-rank constant (Cormack et al. 2009)


def fuse(
    cands: Sequence[Candidate], mode: str, known_share: float, lexical_weight: float, method: FusionMethod = FusionMethod.CONVEX
) -> None:
    """Set each candidate's `fused` score.

    Convex: a mix of min-max-normalised dense similarity (blended with the best sentence's, where
    computed) and max-normalised BM25. The lexical side's weight shrinks with the share of the
    question's words the corpus knows, so an English question over Arabic news ranks by meaning.
    """
    if not cands:
        return
    w = {"lexical": 1.0, "dense": 0.0}.get(mode, lexical_weight * known_share)
    if method is FusionMethod.RRF:
        w_lex = 1.0 if mode == "lexical" else known_share
        for c in cands:
            lex = w_lex / (RRF_K + c.lexical_rank + 1) if c.lexical_rank is not None else 0.0
            den = 1.0 / (RRF_K + c.dense_rank + 1) if c.dense_rank is not None and mode != "lexical" else 0.0
            c.fused = lex + den
        return
    adjusted = [blended_dense(c) for c in cands]
    if any(c.unit_score is not None for c in cands):
        # Candidates whose sentences were not scored may not overtake those that were.
        floor = min(a for c, a in zip(cands, adjusted) if c.unit_score is not None and a is not None)
        adjusted = [min(a, floor) if a is not None and c.unit_score is None else a for c, a in zip(cands, adjusted)]
    dense = [d for d in adjusted if d is not None]
    lex_max = max((c.lexical_score for c in cands if c.lexical_score is not None), default=0.0) or 1.0
    d_min, d_max = (min(dense), max(dense)) if dense else (0.0, 1.0)
    span = d_max - d_min
    for c, cd in zip(cands, adjusted):
        d = 0.0 if cd is None else ((cd - d_min) / span if span > 1e-6 else 1.0)
        lx = 0.0 if c.lexical_score is None else c.lexical_score / lex_max
        c.fused = (1.0 - w) * d + w * lx


def blended_dense(c: Candidate) -> float | None:
    """A chunk's similarity averaged with its best sentence's: one sentence usually answers."""
    if c.dense_score is None:
        return None
    return (c.dense_score + c.unit_score) / 2 if c.unit_score is not None else c.dense_score
