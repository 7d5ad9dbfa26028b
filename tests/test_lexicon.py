"""Cross-lingual terms: the index keeps its words with their vectors, and an English question reaches the Arabic terms it means."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from index.arabic import terms
from index.build import BuildOptions, update_index
from index.lexicon import LEXICON_FILE, Lexicon, build_lexicon, load_lexicon, save_lexicon, surface_words
from index.store import open_current
from retrieval.query import analyse
from retrieval.scoring import shipped_params
from retrieval.search import SearchConfig, Searcher
from retrieval.translate import content_words

SAMPLE_CORPUS = Path(__file__).resolve().parent.parent / "corpus"


def unit(*xs: float) -> np.ndarray:
    v = np.array(xs, dtype=np.float32)
    return v / np.linalg.norm(v)


def test_surface_words_keep_the_most_written_form_of_each_known_term() -> None:
    texts = ["الانتخابات والانتخابات في الانتخابات", "انتخابات مبكرة"]
    words = surface_words(texts, {"انتخاب", "مبكر"})
    assert words == {"انتخاب": "الانتخابات", "مبكر": "مبكرة"}
    assert surface_words(texts, {"مبكر"}) == {"مبكر": "مبكرة"}  # terms outside the vocabulary are left out


def test_nearest_keeps_the_closest_terms_above_the_threshold_best_first() -> None:
    vecs = np.stack([unit(1, 0, 0), unit(0.9, 0.1, 0), unit(0, 1, 0), unit(0.7, 0.7, 0)]).astype(np.float16)
    lex = Lexicon(np.array(["a", "b", "c", "d"]), np.array(["A", "B", "C", "D"]), vecs)
    got = lex.nearest(np.stack([unit(1, 0, 0), unit(0, 0, 1)]), k=2, min_similarity=0.5)
    assert [t for t, _ in got[0]] == ["a", "b"]
    assert got[0][0][1] == pytest.approx(1.0, abs=1e-3)
    assert got[1] == []  # nothing close to the third axis


def test_nearest_equals_a_full_scan_with_ties_ordered_by_row() -> None:
    rng = np.random.default_rng(7)
    vecs = rng.normal(size=(300, 16)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    vecs[[40, 41, 250]] = vecs[12]  # the same word vector four times: ties at rows 12, 40, 41, 250
    vecs = vecs.astype(np.float16)
    lex = Lexicon(np.array([f"t{i}" for i in range(300)]), np.array([f"w{i}" for i in range(300)]), vecs)
    queries = np.concatenate([vecs[[12]].astype(np.float32), rng.normal(size=(5, 16)).astype(np.float32)])
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    sims = queries @ vecs.astype(np.float32).T
    for k in (1, 3, 5):
        for i, got in enumerate(lex.nearest(queries, k=k, min_similarity=0.2)):
            order = sorted((r for r in range(300) if sims[i, r] >= 0.2), key=lambda r: (-round(float(sims[i, r]), 5), r))[:k]
            assert [t for t, _ in got] == [f"t{r}" for r in order]
            assert [s for _, s in got] == pytest.approx([float(sims[i, r]) for r in order], abs=1e-5)
    assert [t for t, _ in lex.nearest(queries[:1], k=3, min_similarity=0.5)[0]] == ["t12", "t40", "t41"]


def test_english_content_words_drop_function_and_question_words() -> None:
    assert content_words(analyse("How many followers does the Shami Witness account have?")) == ["followers", "Shami", "Witness", "account"]
    assert content_words(analyse("When was it founded in 1990?")) == ["founded", "1990"]


def test_an_update_embeds_only_the_words_it_has_not_seen(embedder) -> None:  # noqa: ANN001
    old_text, new_text = "اعتقلت الشرطة رجلا في بنغالور", "حساب على تويتر"
    first, n1 = build_lexicon([old_text], set(terms(old_text)), embedder)
    assert n1 == len(first) == len(set(terms(old_text))) >= 3
    second, n2 = build_lexicon([old_text, new_text], set(terms(old_text + " " + new_text)), embedder, first)
    assert n2 == len(set(terms(new_text))) >= 2 and len(second) == n1 + n2
    row = list(second.terms).index("شرط")
    np.testing.assert_array_equal(second.vectors[row], first.vectors[list(first.terms).index("شرط")])  # reused, not re-embedded


def test_a_lexicon_survives_a_round_trip(tmp_path: Path, embedder) -> None:  # noqa: ANN001
    lex, _ = build_lexicon(["حساب على تويتر"], {"حساب", "تويتر"}, embedder)
    save_lexicon(lex, tmp_path / LEXICON_FILE)
    back = load_lexicon(tmp_path / LEXICON_FILE)
    assert list(back.terms) == list(lex.terms) and list(back.words) == list(lex.words)
    np.testing.assert_array_equal(back.vectors, lex.vectors)


@pytest.fixture(scope="module")
def sample_index(tmp_path_factory: pytest.TempPathFactory, embedder) -> Path:  # noqa: ANN001
    index_dir = tmp_path_factory.mktemp("lexicon-index")
    update_index(SAMPLE_CORPUS, index_dir, embedder, BuildOptions())
    return index_dir


def test_the_build_keeps_a_lexicon_of_every_term_it_can_name(sample_index: Path) -> None:
    version = open_current(sample_index)
    lex = version.lexicon()
    assert lex is not None and version.manifest["lexicon"]["count"] == len(lex) > 500
    assert lex.vectors.dtype == np.float16 and lex.vectors.shape == (len(lex), version.dim)
    assert set(lex.terms) <= set(version.bm25.vocab_dict)  # type: ignore[union-attr]
    assert "شاميويتنس" in set(lex.terms)


def test_an_english_question_reaches_the_arabic_terms_it_means(sample_index: Path, embedder) -> None:  # noqa: ANN001
    searcher = Searcher(open_current(sample_index), embedder, SearchConfig())
    query = analyse("How many followers does the Shami Witness account have?")
    weights = searcher.backend.weigh(query)
    assert weights.known_share == 0.0  # not one English word is the corpus's
    translated = searcher.translated(query, weights)
    assert translated is not None and {"حساب", "شاميويتنس"} <= set(translated.terms)
    rows = [r for r, _ in searcher.lexical(translated, 5)]
    assert rows and any("شامي" in searcher.version.chunk_text(r) for r in rows[:3])
    assert searcher.lexical(query, 5) == []  # the English words alone find nothing
    assert searcher.translated(analyse("كم عدد متابعي حساب شامي ويتنس؟"), weights) is None  # Arabic is matched as written


def test_without_translation_the_searcher_scores_with_the_fit_made_without_it(sample_index: Path, embedder) -> None:  # noqa: ANN001
    version = open_current(sample_index)
    assert Searcher(version, embedder, SearchConfig()).params is shipped_params("onnx-int8", True)
    off = Searcher(version, embedder, SearchConfig(translate=False))
    assert off.params is shipped_params("onnx-int8", False)
    assert "NEWSQA_LEXICON=false " in off.params.raw["command"]
    assert off.translated(analyse("How many followers does the Shami Witness account have?"), off.backend.weigh(analyse("x"))) is None


def test_an_index_from_before_lexicons_gets_one_on_the_next_update_without_re_embedding(tmp_path: Path, embedder) -> None:  # noqa: ANN001
    index_dir = tmp_path / "index"
    update_index(SAMPLE_CORPUS, index_dir, embedder, BuildOptions(lexicon=False))
    old = open_current(index_dir)
    assert old.lexicon() is None and not (old.path / LEXICON_FILE).exists()
    assert Searcher(old, embedder, SearchConfig()).params is shipped_params("onnx-int8", False)
    report = update_index(SAMPLE_CORPUS, index_dir, embedder, BuildOptions())
    assert report.switched and report.embedded_chunks == 0
    new = open_current(index_dir)
    assert new.name != old.name and new.lexicon() is not None
    manifest = json.loads((new.path / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["lexicon"]["embedded"] == manifest["lexicon"]["count"]
    again = update_index(SAMPLE_CORPUS, index_dir, embedder, BuildOptions())
    assert not again.switched  # nothing changed, the lexicon is there: nothing written


def test_adding_an_article_embeds_only_its_new_words(tmp_path: Path, embedder) -> None:  # noqa: ANN001
    corpus = tmp_path / "corpus"
    shutil.copytree(SAMPLE_CORPUS, corpus)
    index_dir = tmp_path / "index"
    update_index(corpus, index_dir, embedder, BuildOptions())
    (corpus / "new.txt").write_text(
        "زلزال في المحيط\nوكالة الأنباء\n2024-05-01 10:00\n\nضرب زلزال بقوة ست درجات سواحل الجزيرة فجر الأربعاء، ولم ترد أنباء عن ضحايا.\n",
        encoding="utf-8",
    )
    update_index(corpus, index_dir, embedder, BuildOptions())
    lexicon = open_current(index_dir).manifest["lexicon"]
    assert 0 < lexicon["embedded"] < 15 < lexicon["count"]
