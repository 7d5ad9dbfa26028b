"""The English word table (index/words.py): looked-up words are the words encoded, and a table that does not
belong to the model is never used."""

from __future__ import annotations

import json
import logging
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from index.embedder import DEFAULT_MODEL, SentenceTransformerEmbedder, local_model_dir
from index.words import (ARABIC_WORDS, FALLBACK_WORDS, WordTables, arabic_words_for, build_table, common_words, encode_words,
                         identity, load_table, table_path, word_table_of)
from retrieval.batching import BatchingEmbedder
from retrieval.query import analyse
from retrieval.translate import content_words, translate

QUESTIONS = [
    "How many followers did the Shami Witness account have?",
    "Which organisation recruited young men through Twitter?",
    "When was the account holder arrested by the police in India?",
]
WORDS = ["followers", "account", "police", "arrested", "Twitter", "India", "organisation", "young"]
ARABIC = ["في", "من", "الشرطة"]  # the Arabic words whose mean the table keeps (retrieval/centring.py)


class Counting:
    """The embedder with a count of the texts that reach the model (the table's point is that few do)."""

    def __init__(self, inner: SentenceTransformerEmbedder) -> None:
        self.inner = inner
        self.name = inner.name
        self.encoded: list[str] = []

    def encode_queries(self, texts, batch_size: int = 32) -> np.ndarray:  # noqa: ANN001
        self.encoded += list(texts)
        return self.inner.encode_queries(texts, batch_size)


@pytest.fixture()
def with_table(embedder, tmp_path: Path, monkeypatch):  # noqa: ANN001, ANN201
    """The session's model with a small word table of its own, in a temporary folder."""
    path = tmp_path / "words.npz"
    build_table(embedder, path, WORDS, ARABIC)
    monkeypatch.setattr(embedder, "word_tables", WordTables(path, embedder))
    return embedder


def test_looked_up_words_are_the_words_encoded_and_only_the_others_reach_the_model(with_table) -> None:  # noqa: ANN001
    words = ["police", "Ctenophora", "Twitter", "arrested", "cilia"]
    counting = Counting(with_table)
    got = encode_words(counting, words)
    assert counting.encoded == ["Ctenophora", "cilia"]  # the two words the table lacks, nothing else
    live = with_table.encode_queries(words)
    cosines = np.sum(got * live, axis=1)
    assert np.all(cosines > 0.9999), cosines  # float16 storage: the same vectors to ~1e-4
    assert got.dtype == np.float32 and got.shape == live.shape


def test_an_english_question_is_translated_to_the_same_terms_with_the_table(with_table, searcher) -> None:  # noqa: ANN001
    lexicon = searcher.version.lexicon()
    assert lexicon is not None and len(lexicon)
    table = word_table_of(with_table)
    assert table is not None
    for question in QUESTIONS:
        query = analyse(question)
        looked_up = len(content_words(query)) - len(table.lookup(content_words(query))[1])
        assert looked_up >= 1, question  # the table is really used for this question
        with_words = translate(query, lexicon, partial(encode_words, with_table), lambda t: True)
        live = translate(query, lexicon, with_table.encode_queries, lambda t: True)
        assert (with_words and with_words.terms) == (live and live.terms), question


def test_the_shared_batch_encodes_only_the_words_the_table_lacks(with_table) -> None:  # noqa: ANN001
    batching = BatchingEmbedder(with_table)
    try:
        vectors = encode_words(batching, ["followers", "Nairobi", "police"])
        assert batching.batcher.encoded == 1  # "Nairobi" went through the shared batch; the others were looked up
        assert np.sum(vectors[1] * with_table.encode_queries(["Nairobi"])[0]) > 0.9999
    finally:
        batching.close()


def test_a_table_made_for_another_model_or_damaged_is_not_used(embedder, tmp_path: Path, monkeypatch, caplog) -> None:  # noqa: ANN001
    path = tmp_path / "words.npz"
    build_table(embedder, path, WORDS[:3], ARABIC)
    with np.load(path) as data:
        words, vectors, meta = data["words"], data["vectors"], json.loads(str(data["meta"]))
    np.savez(path, words=words, vectors=vectors, meta=np.array(json.dumps({**meta, "fingerprint": "another model"})))
    monkeypatch.setattr(embedder, "word_tables", WordTables(path, embedder))
    counting = Counting(embedder)
    with caplog.at_level(logging.WARNING, logger="index.words"):
        encode_words(counting, WORDS[:3])
    assert counting.encoded == WORDS[:3]  # every word encoded: the stale table is ignored
    assert "words.npz: made for another fingerprint" in caplog.text

    # a table from before the Arabic words' mean (version 1) is one to remake, not to read
    np.savez(path, words=words, vectors=vectors, meta=np.array(json.dumps({**meta, "version": 1})))
    monkeypatch.setattr(embedder, "word_tables", WordTables(path, embedder))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="index.words"):
        encode_words(Counting(embedder), WORDS[:3])
    assert "words.npz: made for another version" in caplog.text

    path.write_bytes(b"not a table")
    monkeypatch.setattr(embedder, "word_tables", WordTables(path, embedder))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="index.words"):
        vectors = encode_words(Counting(embedder), ["police"])
    assert "words.npz: unreadable" in caplog.text and vectors.shape == (1, embedder.dim)


def test_common_words_hold_lower_capitalised_and_acronym_forms() -> None:
    words = common_words(2000, 2000, 2000)
    assert {"police", "Police", "government", "Government", "US", "UK"} <= set(words)
    assert len(words) == len(set(words)) and all(w.isalpha() and len(w) >= 2 for w in words)


def test_model_words_command_writes_checks_and_remakes_the_table(models_dir: Path, tmp_path: Path, monkeypatch, capsys) -> None:  # noqa: ANN001
    from bot.cli import cmd_model_words
    from bot.settings import Settings

    mine = tmp_path / "models"
    mine.mkdir()
    model = local_model_dir(DEFAULT_MODEL, models_dir)
    for folder in (model, model.with_name(model.name + "-onnx")):  # the session's model, seen from another models folder
        (mine / folder.name).symlink_to(folder, target_is_directory=True)
    monkeypatch.setenv("NEWSQA_MODELS_DIR", str(mine))
    settings = Settings(_env_file=None)
    assert cmd_model_words(settings, count=100) == 0
    path = table_path(local_model_dir(DEFAULT_MODEL, mine))
    assert "English word vectors" in capsys.readouterr().out and path.is_file()
    fresh = SentenceTransformerEmbedder(DEFAULT_MODEL, models_dir=mine)
    table = load_table(path, identity(fresh))
    assert {"people", "People"} <= set(table.rows) and word_table_of(fresh) is not None
    # a small table takes fewer Arabic words for its mean, never below the fallback's count
    assert FALLBACK_WORDS * 0.9 < table.means.arabic_count <= FALLBACK_WORDS == arabic_words_for(100)
    assert arabic_words_for(20_000) == ARABIC_WORDS and arabic_words_for(2_000) == 2_000
    assert cmd_model_words(settings, count=100) == 0
    assert "already at" in capsys.readouterr().out
    assert cmd_model_words(settings, force=True, count=150) == 0
    assert len(load_table(path, identity(fresh))) > len(table)
