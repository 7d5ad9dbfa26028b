"""Cross-lingual terms: a question in another script turned into the corpus's own Arabic terms, for BM25.

An English question shares no word with Arabic news, so BM25 alone says nothing and only the dense side
ranks it. Each content word of the question is embedded and matched to the index's lexicon (the corpus's
words and their vectors, index/lexicon.py); the terms whose word is close enough make a lexical query.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np
from bm25s.stopwords import STOPWORDS_EN_PLUS

from index.lexicon import LexiconReader
from retrieval.query import Query

# Measured on half A of XQuAD-ar's English questions (bench/RESULTS.md, "Cross-lingual terms"):
TRANSLATIONS_PER_WORD = 3  # corpus terms kept per question word
MIN_SIMILARITY = 0.85  # cosine a corpus word needs with the question's word (e5's word vectors sit high: unrelated ≈ .75-.8)
MAX_WORDS = 16  # content words of one question embedded at most (a pasted paragraph is not a question)

_LATIN_WORD_RE = re.compile(r"[^\W\d_]+|\d+")
_QUESTION_WORDS = frozenset("what which who whom whose when where why how many much does did do".split())


def content_words(query: Query) -> list[str]:
    """The question's words worth translating: no function words, no question words, each once."""
    seen: dict[str, None] = {}
    for word in _LATIN_WORD_RE.findall(query.text):
        low = word.lower()
        if low in STOPWORDS_EN_PLUS or low in _QUESTION_WORDS or (len(low) < 2 and not low.isdigit()):
            continue
        seen.setdefault(word, None)
    return list(seen)[:MAX_WORDS]


def translate(
    query: Query,
    lexicon: LexiconReader | None,
    encode: Callable[[Sequence[str]], np.ndarray],
    known: Callable[[str], bool],
) -> Query | None:
    """The question with its terms replaced by the corpus terms its words mean; None when there is nothing to do.

    Figures and words the corpus already uses as written (a Latin name, a year) are kept as they are.
    """
    if query.arabic or lexicon is None or not len(lexicon):
        return None
    words = content_words(query)
    kept = [t for t in query.terms if known(t) and t not in query.pairs]
    to_embed = [w for w in words if not w.isdigit()]
    found: list[str] = []
    if to_embed:
        for matches in lexicon.nearest(encode(to_embed), TRANSLATIONS_PER_WORD, MIN_SIMILARITY):
            found.extend(term for term, _ in matches)
    new_terms = tuple(dict.fromkeys([*kept, *found]))
    if not found:
        return None
    return replace(query, terms=new_terms, pairs={})
