"""The corpus's own words with their vectors: lets a question in another language reach the Arabic terms it means.

multilingual-e5 puts "election" near "الانتخابات" and "Tesla" near "تسلا". Each BM25 term of the index is
kept with the word the corpus writes it as most often and that word's vector; a question in English is
turned into the corpus's terms by nearest neighbours (retrieval/translate.py) and matched by BM25 like an
Arabic one. Word vectors depend on the word alone, so an update embeds only the words it has not seen.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Protocol

import numpy as np

from index.arabic import raw_words, terms
from index.embedder import Embedder

LEXICON_FILE = "lexicon.npz"
ADD_BLOCK = 65_536  # lexicon rows handed to FAISS at once (bounds the float32 copy made on the way in)
TIE_MARGIN = 8  # neighbours fetched beyond k, so equal cosines at the k-th place are ordered by row (by term on Qdrant)


class LexiconReader(Protocol):
    """What answering asks of a version's lexicon, wherever it is kept: `Lexicon` (lexicon.npz, local files) or
    index/qdrant_store.QdrantLexicon (a collection searched by the engine); both rank alike, ties by term."""

    def __len__(self) -> int: ...

    def nearest(self, queries: np.ndarray, k: int, min_similarity: float) -> list[list[tuple[str, float]]]:
        """For each query vector, up to k (term, cosine) whose word reaches min_similarity, best first."""
        ...


@dataclass(frozen=True)
class Lexicon:
    """BM25 terms, the corpus word each stands for, and that word's unit vector (float16), row by row."""

    terms: np.ndarray  # str
    words: np.ndarray  # str
    vectors: np.ndarray  # float16 [n, dim]

    def __len__(self) -> int:
        return len(self.terms)

    @cached_property
    def _index(self):  # noqa: ANN202 - a faiss index
        """The vectors in a FAISS float16 flat index, made on first use: the same cosines, compared without a
        float32 copy (scanning 6,348 words for 5 question words: 0.4 ms instead of 4.2 with numpy)."""
        import faiss

        index = faiss.IndexScalarQuantizer(self.vectors.shape[1], faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT)
        for start in range(0, len(self), ADD_BLOCK):
            index.add(np.asarray(self.vectors[start : start + ADD_BLOCK], dtype=np.float32))
        return index

    def nearest(self, queries: np.ndarray, k: int, min_similarity: float) -> list[list[tuple[str, float]]]:
        """For each query vector, up to k terms whose word's cosine reaches min_similarity, best first (ties by row)."""
        out: list[list[tuple[str, float]]] = [[] for _ in range(len(queries))]
        if not len(self) or not len(queries):
            return out
        wanted = min(len(self), k + TIE_MARGIN)  # a few more than k, so that ties at the k-th place go by row
        sims, rows = self._index.search(np.ascontiguousarray(queries, dtype=np.float32), wanted)
        for i in range(len(out)):
            found = sorted((-float(s), int(r)) for s, r in zip(sims[i], rows[i]) if r >= 0 and s >= min_similarity)
            out[i] = [(str(self.terms[r]), -neg) for neg, r in found[:k]]
        return out


def surface_words(texts: Iterable[str], vocabulary: set[str]) -> dict[str, str]:
    """Each term of `vocabulary` → the single word the texts write it as most often."""
    term_of: dict[str, str | None] = {}
    counts: dict[str, Counter[str]] = {}
    for text in texts:
        for word in raw_words(text):
            term = term_of.get(word, "")
            if term == "":
                found = terms(word)
                term = term_of[word] = found[0] if len(found) == 1 and found[0] in vocabulary else None
            if term is not None:
                counts.setdefault(term, Counter())[word] += 1
    return {t: c.most_common(1)[0][0] for t, c in counts.items()}


def build_lexicon(
    texts: Iterable[str], vocabulary: set[str], embedder: Embedder, previous: Lexicon | None = None, batch_size: int = 256
) -> tuple[Lexicon, int]:
    """The lexicon of an index whose chunks are `texts`, and how many words had to be embedded (the rest reused)."""
    words_of = surface_words(texts, vocabulary)
    order = sorted(words_of)
    words = [words_of[t] for t in order]
    dim = embedder.dim
    vectors = np.zeros((len(words), dim), dtype=np.float16)
    known: dict[str, int] = {}
    if previous is not None and previous.vectors.shape[1:] == (dim,):
        known = {str(w): i for i, w in enumerate(previous.words)}
    todo = [i for i, w in enumerate(words) if w not in known]
    for i, w in enumerate(words):
        if w in known:
            vectors[i] = previous.vectors[known[w]]  # type: ignore[union-attr]
    if todo:
        # "query: " for every word: the side a question's words are encoded on
        vectors[todo] = embedder.encode_queries([words[i] for i in todo], batch_size=batch_size).astype(np.float16)
    return Lexicon(np.array(order, dtype=str), np.array(words, dtype=str), vectors), len(todo)


def save_lexicon(lexicon: Lexicon, path: Path) -> None:
    """Write the lexicon as one .npz (no pickles)."""
    with path.open("wb") as fh:
        np.savez(fh, terms=lexicon.terms, words=lexicon.words, vectors=lexicon.vectors)


def load_lexicon(path: Path) -> Lexicon:
    """Read a lexicon written by save_lexicon."""
    with np.load(path, allow_pickle=False) as data:
        return Lexicon(data["terms"], data["words"], data["vectors"])
