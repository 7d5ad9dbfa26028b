"""Diversification: a few quotes per article while other articles compete, never hiding an answer."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from retrieval.candidates import Candidate

DUPLICATE_JACCARD = 0.5  # a passage sharing half its terms with one already quoted is the same story told again


def diversify(ranked: Sequence[Candidate], per_article: int, competes: Callable[[Candidate], bool]) -> Iterator[Candidate]:
    """Candidates in the order to quote them.

    The first is always the best. Others must compete (be relevant on their own). An article
    gets at most `per_article` places while other competing articles wait; those held back
    follow afterwards, and then the best article's further passages, so with fewer articles
    than places the same article fills them.
    """
    if not ranked:
        return
    yield ranked[0]
    best = ranked[0].article_row
    count = {best: 1}
    held: list[Candidate] = []
    fill: list[Candidate] = []
    for cand in ranked[1:]:
        if not competes(cand):
            if cand.article_row == best:
                fill.append(cand)
            continue
        if per_article and count.get(cand.article_row, 0) >= per_article:
            held.append(cand)
            continue
        count[cand.article_row] = count.get(cand.article_row, 0) + 1
        yield cand
    yield from held
    yield from fill


def jaccard(a: frozenset[str] | set[str], b: frozenset[str] | set[str]) -> float:
    """Overlap of two term sets (0 when either is empty)."""
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)
