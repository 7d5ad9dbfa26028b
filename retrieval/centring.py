"""A question in another language moved towards the corpus's language before its vector meets the corpus.

multilingual-e5 places a text partly by its language: every English question carries a component that no Arabic
passage has, which keeps English questions further from the Arabic passage that answers them (XQuAD-ar half A,
dense MRR@10: .847 for the English questions, .927 for the same questions in Arabic). The difference between
the two languages' mean word vectors estimates that component. Both means come from words encoded as a question's
words are: the English word table beside the model (index/words.py) and the corpus's own lexicon
(index/lexicon.py). Part of the difference is taken off the question's vector; an Arabic question is left as it
is. Centring each language on its mean is how Libovický et al. (2020) made mBERT's vectors language-neutral.
"""

from __future__ import annotations

import numpy as np

# Share of the language offset taken off. XQuAD-ar English questions, half A, dense MRR@10:
# 0 .847, .3 .855, .5 .861, .7 .857, 1 .857 (bench/RESULTS.md, "Language centring").
CENTRE_WEIGHT = 0.5
MIN_TABLE_WORDS = 1_000  # fewer English words estimate the language poorly (the full table has ~40,000)
MIN_LEXICON_WORDS = 100  # measured: the means of 100 random corpus words give the gain of all 6,348


def language_offset(english: np.ndarray | None, corpus: np.ndarray | None) -> np.ndarray | None:
    """Mean English word vector minus the corpus's mean word vector (float32), None when either side is too small."""
    if english is None or corpus is None or len(english) < MIN_TABLE_WORDS or len(corpus) < MIN_LEXICON_WORDS:
        return None
    return (mean_vector(english) - mean_vector(corpus)).astype(np.float32)


def mean_vector(vectors: np.ndarray, block: int = 65_536) -> np.ndarray:
    """The mean row of a (possibly float16, possibly memory-mapped) matrix, summed in float64 blocks."""
    total = np.zeros(vectors.shape[1], dtype=np.float64)
    for start in range(0, len(vectors), block):
        total += np.asarray(vectors[start : start + block], dtype=np.float64).sum(axis=0)
    return total / max(len(vectors), 1)


def centred(qvec: np.ndarray, offset: np.ndarray, weight: float = CENTRE_WEIGHT) -> np.ndarray:
    """The question's vector with `weight` of the offset taken off, unit length again (a new array)."""
    moved = np.asarray(qvec, dtype=np.float32) - np.float32(weight) * offset
    norm = float(np.linalg.norm(moved))
    return (moved / norm if norm > 0 else moved).astype(np.float32)
