"""What a span of text offers an answer (index/evidence.py), with the sentences quotes are made of kept in memory."""

from __future__ import annotations

from functools import lru_cache

from index.evidence import NEAR_WORDS, SpanEvidence, analyse_span

__all__ = ["NEAR_WORDS", "SpanEvidence", "analyse_span", "span_evidence"]

EVIDENCE_CACHE = 8192  # sentence runs whose analysis is kept: popular passages come back question after question


@lru_cache(maxsize=EVIDENCE_CACHE)
def span_evidence(text: str) -> SpanEvidence:
    """analyse_span, kept for the sentences quotes are made of (whole chunks are kept by the searcher, per row)."""
    return analyse_span(text)
