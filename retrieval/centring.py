"""A question in another language moved towards Arabic before its vector meets the corpus.

multilingual-e5 places a text partly by its language: every English question carries a component that no Arabic
passage has, which keeps English questions further from the Arabic passage that answers them (XQuAD-ar half A,
dense MRR@10: .847 for the English questions, .927 for the same questions in Arabic). The difference between the
mean vectors of common English and common Arabic words, both encoded as a question's words are (the word table
beside the model, index/words.py), estimates that component; part of it is taken off the question's vector. An
Arabic question is left as it is. Centring each language on its mean is how Libovický et al. (2020) made mBERT's
vectors language-neutral. Both means come from general word lists, never from the corpus: a corpus's own words
would also carry its topic and pull every English question towards it (with the bundled one-article corpus, an
off-topic question about baking bread was then answered).
"""

from __future__ import annotations

import numpy as np

# Share of the language offset taken off. XQuAD-ar English questions, half A, dense MRR@10:
# 0 .847, .3 .855, .5 .861, .7 .857, 1 .857 (bench/RESULTS.md, "Language centring").
CENTRE_WEIGHT = 0.5
MIN_ENGLISH_WORDS = 1_000  # fewer words place a language poorly (the table has ~40,000; 300 random ones do as well)
MIN_ARABIC_WORDS = 1_000  # the same for the Arabic mean (the table keeps that of 5,000)


def language_offset(english: np.ndarray | None, arabic_mean: np.ndarray | None, arabic_words: int) -> np.ndarray | None:
    """Mean English word vector minus the mean Arabic word vector (float32), None when either rests on too few words."""
    if english is None or arabic_mean is None or len(english) < MIN_ENGLISH_WORDS or arabic_words < MIN_ARABIC_WORDS:
        return None
    return (mean_vector(english) - np.asarray(arabic_mean, dtype=np.float64)).astype(np.float32)


def mean_vector(vectors: np.ndarray, block: int = 65_536) -> np.ndarray:
    """The mean row of a (possibly float16) matrix, summed in float64 blocks."""
    total = np.zeros(vectors.shape[1], dtype=np.float64)
    for start in range(0, len(vectors), block):
        total += np.asarray(vectors[start : start + block], dtype=np.float64).sum(axis=0)
    return total / max(len(vectors), 1)


def centred(qvec: np.ndarray, offset: np.ndarray, weight: float = CENTRE_WEIGHT) -> np.ndarray:
    """The question's vector with `weight` of the offset taken off, unit length again (a new array)."""
    moved = np.asarray(qvec, dtype=np.float32) - np.float32(weight) * offset
    norm = float(np.linalg.norm(moved))
    return (moved / norm if norm > 0 else moved).astype(np.float32)
