"""Users' Arabic questions go through the int8 model, one at a time; English questions and words keep the float one."""

from __future__ import annotations

import numpy as np

from index.embedder import DEFAULT_MODEL, SentenceTransformerEmbedder, encode_questions
from index.onnx_backend import OnnxEncoder
from retrieval.batching import QueryBatcher

ARABIC = ["كم عدد متابعي حساب شامي ويتنس؟", "ما قرار البنك المركزي بشأن أسعار الفائدة؟", "من فاز بكأس البطولة القارية؟"]
ENGLISH = ["How many boats were damaged in the harbour?", "What did the central bank decide?"]


def test_arabic_questions_take_the_int8_model_alone_and_english_ones_the_float_model(embedder) -> None:  # noqa: ANN001
    assert embedder.backend == "onnx-int8" and embedder.onnx_arabic_questions is not None  # the default
    int8 = OnnxEncoder(embedder.onnx.folder, int8=True)
    mixed = [ARABIC[0], ENGLISH[0], ARABIC[1], ENGLISH[1], ARABIC[2]]
    got = encode_questions(embedder, mixed)
    float_vectors = embedder.encode_queries(mixed)
    for i, q in enumerate(mixed):
        if q in ARABIC:
            alone = int8.encode(["query: " + q], 1)[0]
            np.testing.assert_array_equal(got[i], alone)  # not merely close: the batch around it changes nothing
            assert 0.97 < float(got[i] @ float_vectors[i]) < 0.99999  # the int8 model's vector, near the float one
        else:
            np.testing.assert_allclose(got[i], float_vectors[i], atol=2e-5)
    # words (the lexicon, an English question's words) keep the float model whatever their script
    np.testing.assert_array_equal(embedder.encode_queries(["متابعي"])[0], embedder.onnx_queries.encode(["query: متابعي"], 1)[0])


def test_the_setting_off_gives_float_vectors_and_another_cache_key(models_dir) -> None:  # noqa: ANN001
    on = SentenceTransformerEmbedder(DEFAULT_MODEL, models_dir=models_dir)
    off = SentenceTransformerEmbedder(DEFAULT_MODEL, models_dir=models_dir, arabic_questions_int8=False)
    np.testing.assert_array_equal(encode_questions(off, ARABIC), off.encode_queries(ARABIC))
    assert not np.array_equal(encode_questions(on, ARABIC), encode_questions(off, ARABIC))
    assert on.cache_key != off.cache_key  # cached evaluation vectors of one are never read for the other
    assert SentenceTransformerEmbedder.from_spec(off.spec()).arabic_questions_int8 is False


def test_the_bot_batcher_gives_each_question_the_vector_it_gets_alone(embedder) -> None:  # noqa: ANN001
    asked = ARABIC + ENGLISH
    with QueryBatcher(embedder, max_batch=16, max_wait=0.05) as batcher:
        futures = [batcher.submit(q) for q in asked]
        vectors = [f.result(60) for f in futures]
    for q, v in zip(asked, vectors):
        np.testing.assert_allclose(v, encode_questions(embedder, [q])[0], atol=2e-5)


def test_an_int8_passage_vector_is_its_text_alone_whatever_it_is_encoded_with(embedder) -> None:  # noqa: ANN001
    assert embedder.backend == "onnx-int8" and embedder.onnx.per_call == 1
    texts = ["فيضانات تغمر ميناء الصيادين وتوقف الملاحة ثلاثة أيام", "قصير", "رفع البنك المركزي سعر الفائدة " * 20]
    together = embedder.encode_passages(texts, 32)
    for i, text in enumerate(texts):
        np.testing.assert_array_equal(together[i], embedder.encode_passages([text])[0])  # not merely close
