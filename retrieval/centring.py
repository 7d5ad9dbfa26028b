"""A question in another language moved towards Arabic before its vector meets the corpus.

multilingual-e5 places a text partly by its language: every English question carries a component that no Arabic
passage has, which keeps English questions further from the Arabic passage that answers them (XQuAD-ar half A,
dense MRR@10: .847 for the English questions, .927 for the same questions in Arabic). The difference between the
mean vectors of common English and common Arabic words, both encoded as a question's words are (the word table
beside the model, index/words.py; without one, the 1,000 most frequent words of each, encoded once), estimates
that component; part of it is taken off the question's vector. An Arabic question is left as it is. Centring
each language on its mean is how Libovický et al. (2020) made mBERT's vectors language-neutral. Both means come
from general word lists, never from the corpus: a corpus's own words would also carry its topic and pull every
English question towards it (with the bundled one-article corpus, an off-topic question about baking bread was
then answered).
"""

from __future__ import annotations

import numpy as np

from index.words import LanguageMeans

# Share of the language offset taken off. XQuAD-ar English questions, half A, dense MRR@10:
# 0 .847, .3 .855, .5 .861, .7 .857, 1 .857 (bench/RESULTS.md, "Language centring").
CENTRE_WEIGHT = 0.5
MIN_ENGLISH_WORDS = 500  # fewer words place a language poorly (300 random ones of the table's 40,000 did as well)
MIN_ARABIC_WORDS = 500  # the same for Arabic (the table keeps the mean of 5,000; 1,000 did as well)


def language_offset(means: LanguageMeans | None) -> np.ndarray | None:
    """Mean English word vector minus the mean Arabic word vector (float32), None when either rests on too few words."""
    if means is None or means.english_count < MIN_ENGLISH_WORDS or means.arabic_count < MIN_ARABIC_WORDS:
        return None
    return (np.asarray(means.english, dtype=np.float64) - np.asarray(means.arabic, dtype=np.float64)).astype(np.float32)


def centred(qvec: np.ndarray, offset: np.ndarray, weight: float = CENTRE_WEIGHT) -> np.ndarray:
    """The question's vector with `weight` of the offset taken off, unit length again (a new array)."""
    moved = np.asarray(qvec, dtype=np.float32) - np.float32(weight) * offset
    norm = float(np.linalg.norm(moved))
    return (moved / norm if norm > 0 else moved).astype(np.float32)
