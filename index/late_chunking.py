"""Sentence vectors from the chunk's own forward pass ("late chunking"): mean-pool each sentence's tokens.

The chunk is encoded once; each of its sentences gets the mean of the contextual token vectors that
fall inside its character span, L2-normalised like a sentence-transformers vector. Only valid for
mean-pooled models (the chunk vector is then the same mean over all tokens).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def pool_spans(
    hidden: np.ndarray, offsets: np.ndarray, mask: np.ndarray, spans: Sequence[tuple[int, int]], shift: int = 0
) -> np.ndarray:
    """One normalised vector per character span [a, b) of the text (+ shift for a prompt before it).

    hidden: (tokens, dim) contextual vectors; offsets: (tokens, 2) character offsets from the tokenizer;
    mask: (tokens,) attention mask. A span that no token covers (cut off by truncation) gets a NaN row.
    """
    out = np.full((len(spans), hidden.shape[1]), np.nan, dtype=np.float32)
    starts, ends = offsets[:, 0], offsets[:, 1]
    real = mask.astype(bool) & (ends > starts)  # special and padding tokens have empty offsets
    for k, (a, b) in enumerate(spans):
        inside = real & (starts < b + shift) & (ends > a + shift)
        if inside.any():
            v = hidden[inside].mean(axis=0)
            out[k] = v / max(float(np.linalg.norm(v)), 1e-12)
    return out


def mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The sentence-transformers mean pooling of one text (every attended token, specials included), normalised."""
    m = mask.astype(bool)
    v = hidden[m].mean(axis=0) if m.any() else np.zeros(hidden.shape[1], dtype=np.float32)
    return (v / max(float(np.linalg.norm(v)), 1e-12)).astype(np.float32)
