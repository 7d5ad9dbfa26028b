"""Language centring (retrieval/centring.py): an English question is searched with its vector moved towards
Arabic, an Arabic one as asked, and nothing moves without enough words to place both languages."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from index.embedder import encode_questions
from index import words
from index.words import FALLBACK_WORDS, LanguageMeans, WordTables, build_table, language_means_of, word_table_of
from retrieval import centring
from retrieval.centring import centred, language_offset
from retrieval.search import Searcher

ENGLISH = "How many followers did the Shami Witness account have?"
ARABIC = "كم عدد متابعي حساب شامي ويتنس؟"
WORDS = ["followers", "account", "police", "arrested", "Twitter", "India", "organisation", "young", "war", "news"]
ARABIC_WORDS = ["في", "من", "على", "الحرب", "الشرطة", "حساب", "تنظيم", "الدولة"]


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def test_the_offset_needs_enough_words_on_both_sides() -> None:
    rng = np.random.default_rng(0)
    english, arabic = unit(rng.normal(size=8) + 1.0).astype(np.float32), unit(rng.normal(size=8) - 1.0).astype(np.float32)
    enough = LanguageMeans(english, centring.MIN_ENGLISH_WORDS, arabic, centring.MIN_ARABIC_WORDS)
    offset = language_offset(enough)
    assert offset is not None and offset.dtype == np.float32 and np.allclose(offset, english - arabic, atol=1e-6)
    assert language_offset(replace(enough, english_count=centring.MIN_ENGLISH_WORDS - 1)) is None  # a test's few words
    assert language_offset(replace(enough, arabic_count=centring.MIN_ARABIC_WORDS - 1)) is None
    assert language_offset(None) is None


def test_a_centred_vector_is_unit_length_nearer_the_corpus_and_a_new_array() -> None:
    rng = np.random.default_rng(2)
    english_mean, corpus_mean = unit(rng.normal(size=16)), unit(rng.normal(size=16))
    question = unit(english_mean + 0.3 * rng.normal(size=16)).astype(np.float32)
    question.flags.writeable = False  # the bot shares one vector among everyone who asked the same
    moved = centred(question, (english_mean - corpus_mean).astype(np.float32), 0.5)
    assert moved is not question and moved.dtype == np.float32
    assert abs(float(np.linalg.norm(moved)) - 1.0) < 1e-6
    assert float(moved @ corpus_mean) > float(question @ corpus_mean)  # towards the corpus's language
    assert float(moved @ english_mean) < float(question @ english_mean)  # away from the question's own
    assert np.array_equal(centred(question, np.zeros(16, np.float32), 0.5), question)


@pytest.fixture()
def with_table(embedder, tmp_path: Path, monkeypatch):  # noqa: ANN001, ANN201
    """The session's model with a small word table of its own, counted as enough to place both languages."""
    path = tmp_path / "words.npz"
    build_table(embedder, path, WORDS, ARABIC_WORDS)
    monkeypatch.setattr(embedder, "word_tables", WordTables(path, embedder))
    monkeypatch.setattr(centring, "MIN_ENGLISH_WORDS", len(WORDS))
    monkeypatch.setattr(centring, "MIN_ARABIC_WORDS", len(ARABIC_WORDS))
    return embedder


def test_the_table_keeps_the_arabic_words_mean(with_table) -> None:  # noqa: ANN001
    table = word_table_of(with_table)
    assert table is not None and table.means.arabic_count == len(ARABIC_WORDS)
    live = with_table.encode_queries(ARABIC_WORDS).mean(axis=0)
    assert np.allclose(table.means.arabic, live, atol=1e-5)


def test_an_english_question_is_searched_centred_and_an_arabic_one_as_asked(with_table, searcher) -> None:  # noqa: ANN001
    mine = Searcher(searcher.version, with_table, searcher.config, searcher.params)
    table = word_table_of(with_table)
    assert table is not None
    offset = mine.language_offset()
    assert offset is not None
    assert np.allclose(offset, table.vectors.astype(np.float64).mean(axis=0) - table.means.arabic, atol=1e-5)

    english, arabic = encode_questions(with_table, [ENGLISH, ARABIC])
    ranking = mine.rank(ENGLISH, qvec=english)
    assert ranking.qvec is not None
    assert np.allclose(ranking.qvec, centred(english, offset), atol=1e-6)
    assert not np.allclose(ranking.qvec, english, atol=1e-3)  # it really moved
    # every stage after the dense search reads the centred vector: the scored chunks' best sentences too
    scored = [c for c in ranking.candidates if c.unit_score is not None]
    assert scored
    best = scored[0]
    assert best.unit_score == pytest.approx(float(np.max(mine.unit_vectors([best.row])[0] @ ranking.qvec)), abs=1e-5)

    assert np.array_equal(mine.rank(ARABIC, qvec=arabic).qvec, arabic)  # the corpus's own language: as asked
    off = Searcher(searcher.version, with_table, replace(searcher.config, centre=0.0), searcher.params)
    assert np.array_equal(off.rank(ENGLISH, qvec=english).qvec, english)


class Plain:
    """An embedder without word lists of its own (as the tests' hashing embedder): it wraps nothing."""

    def __init__(self, inner) -> None:  # noqa: ANN001
        self.name, self.dim, self._inner = inner.name, inner.dim, inner

    def encode_queries(self, texts, batch_size: int = 32) -> np.ndarray:  # noqa: ANN001
        return self._inner.encode_queries(texts, batch_size)

    def encode_passages(self, texts, batch_size: int = 32) -> np.ndarray:  # noqa: ANN001
        return self._inner.encode_passages(texts, batch_size)


def test_without_a_table_the_commonest_words_are_encoded_once(embedder, searcher, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(words, "_ENCODED_MEANS", {})  # as in a new process
    tables = WordTables(None, embedder)
    monkeypatch.setattr(embedder, "word_tables", tables)
    encoded: list[int] = []
    real = embedder.encode_queries
    monkeypatch.setattr(embedder, "encode_queries", lambda texts, batch_size=32: encoded.append(len(texts)) or real(texts, batch_size))
    means = language_means_of(embedder)
    assert means is not None and FALLBACK_WORDS * 0.9 <= means.english_count <= FALLBACK_WORDS
    assert FALLBACK_WORDS * 0.9 <= means.arabic_count <= FALLBACK_WORDS and sum(encoded) == means.english_count + means.arabic_count
    assert language_means_of(embedder) is means and len(encoded) == 2  # once per process, not per question
    monkeypatch.setattr(embedder, "word_tables", WordTables(None, embedder))  # another embedder of the same model
    assert language_means_of(embedder) is means and len(encoded) == 2
    mine = Searcher(searcher.version, embedder, searcher.config, searcher.params)
    (english,) = encode_questions(embedder, [ENGLISH])
    assert not np.allclose(mine.rank(ENGLISH, qvec=english).qvec, english, atol=1e-3)


def test_an_embedder_without_word_lists_is_not_centred(embedder, searcher) -> None:  # noqa: ANN001
    plain = Plain(embedder)
    mine = Searcher(searcher.version, plain, searcher.config, searcher.params)  # type: ignore[arg-type]
    assert language_means_of(plain) is None and mine.language_offset() is None
    (english,) = plain.encode_queries([ENGLISH])
    assert np.array_equal(mine.rank(ENGLISH, qvec=english).qvec, english)
