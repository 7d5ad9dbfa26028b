"""Each stage of the answer pipeline on its own: query analysis, fusion, scoring, decision, diversification."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from index.build import BuildOptions, update_index
from index.store import open_current
from retrieval.candidates import Candidate
from retrieval.decide import decide
from retrieval.diversify import diversify
from retrieval.fusion import FusionMethod, fuse
from retrieval.query import QType, Script, analyse
from retrieval.scoring import PASSAGE_FEATURES, ParamsError, load_params, shipped_params
from retrieval.search import SearchConfig, Searcher

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "question,qtype,script",
    [
        ("كم عدد متابعي حساب شامي ويتنس؟", QType.HOW_MANY, Script.ARABIC),
        ("متى اعتقلت الشرطة مهدي؟", QType.WHEN, Script.ARABIC),
        ("في أي عام أقيم المؤتمر؟", QType.WHEN, Script.ARABIC),
        ("أين يعمل مهدي مسرور بسواس؟", QType.WHERE, Script.ARABIC),
        ("من هو رئيس الوزراء الهندي؟", QType.WHO, Script.ARABIC),
        ("ومن اعتقل المتهم؟", QType.WHO, Script.ARABIC),
        ("لماذا استقال الوزير؟", QType.WHY, Script.ARABIC),
        ("ما سبب الفيضانات؟", QType.WHY, Script.ARABIC),
        ("ما هي عاصمة أستراليا؟", QType.OTHER, Script.ARABIC),
        ("How many followers did the account have?", QType.HOW_MANY, Script.LATIN),
        ("In what year was the conference held?", QType.WHEN, Script.LATIN),
        ("Where does he work?", QType.WHERE, Script.LATIN),
        ("Who arrested him?", QType.WHO, Script.LATIN),
        ("Why did the minister resign?", QType.WHY, Script.LATIN),
        ("What did the company say about Twitter?", QType.OTHER, Script.LATIN),
    ],
)
def test_query_analysis_types_and_script(question: str, qtype: QType, script: Script) -> None:
    q = analyse(question)
    assert (q.qtype, q.script) == (qtype, script)
    assert q.text == question and q.terms and not q.content_free


def test_query_analysis_terms_numbers_and_years_once() -> None:
    q = analyse("كم قاربا تضرر في ميناء الصيادين عام ٢٠١٤ بعد ١٢٠ يوما؟")
    assert q.years == (2014,) and q.numbers == ("2014", "120")
    assert "في" not in q.terms and "ميناء" in q.words  # function words are not terms; words keep them
    assert q.norm == " ".join(q.words)


@pytest.mark.parametrize("question", ["؟؟!!", "🙂🔥👍", "\u200b\u200f\u202e\u2066", "...---...", " "])
def test_content_free_questions(question: str) -> None:
    assert analyse(question).content_free


def test_content_free_question_is_declined_before_any_search(searcher: Searcher, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[object] = []
    monkeypatch.setattr(searcher, "rank", lambda *a, **k: calls.append(a))
    answer = searcher.answer("؟؟ 🙂 \u200f")
    assert not answer.found and answer.declined == "content-free" and answer.hits == [] and calls == []


def _cand(row: int, article: int, lex: float | None, dense: float | None, lr: int | None = None, dr: int | None = None) -> Candidate:
    return Candidate(row, article, lr, lex, dr, dense)


def test_convex_fusion_ignores_the_lexical_side_when_the_corpus_knows_no_question_word() -> None:
    a, b, c = _cand(0, 0, 10.0, 0.80, 0, 1), _cand(1, 1, None, 0.85, None, 0), _cand(2, 2, 5.0, 0.70, 1, 2)
    fuse([a, b, c], "fused", known_share=0.0, lexical_weight=0.5)
    assert b.fused > a.fused > c.fused
    fuse([a, b, c], "fused", known_share=1.0, lexical_weight=0.5)
    assert a.fused > b.fused  # with every word known, a strong BM25 match counts
    fuse([a, b, c], "lexical", known_share=0.0, lexical_weight=0.5)
    assert a.fused == 1.0 and b.fused == 0.0
    fuse([a, b, c], "fused", known_share=1.0, lexical_weight=0.5, method=FusionMethod.RRF)
    assert a.fused == pytest.approx(1 / 61 + 1 / 62) and b.fused == pytest.approx(1 / 61)


def test_diversify_caps_an_article_only_while_others_compete() -> None:
    ranked = [_cand(r, art, None, None) for r, art in [(0, 7), (1, 7), (2, 7), (3, 8), (4, 7)]]
    everyone = [c.row for c in diversify(ranked, 2, lambda c: True)]
    assert everyone == [0, 1, 3, 2, 4]  # article 7 waits behind article 8, then fills the places
    alone = [c.row for c in diversify(ranked, 2, lambda c: c.article_row == 7)]
    assert alone == [0, 1, 2, 4]  # nothing else competes: the same article fills every place
    weak = [c.row for c in diversify(ranked, 2, lambda c: False)]
    assert weak == [0, 1, 2, 4]  # the best article's further passages fill places no other article competes for
    assert [c.row for c in diversify(ranked, 0, lambda c: True)] == [0, 1, 2, 3, 4]


def test_decision_threshold() -> None:
    model = shipped_params().decision(True)
    x = np.zeros(len(model.names))
    p = float(model.probs(x.reshape(1, -1))[0])
    assert decide(model, x, p - 1e-9).answer and not decide(model, x, p + 1e-9).answer


def test_shipped_params_reproduce_the_fitting_scripts_scores() -> None:
    raw = json.loads((ROOT / "retrieval" / "params.json").read_text(encoding="utf-8"))
    check = raw["check"]
    x = np.array(check["passage_features"])
    assert x.shape[1] == len(PASSAGE_FEATURES)
    np.testing.assert_allclose(shipped_params().passage.probs(x), check["passage_probs"], atol=1e-5)


def test_params_fitted_for_other_features_are_refused() -> None:
    raw = json.loads((ROOT / "retrieval" / "params.json").read_text(encoding="utf-8"))
    raw["passage"]["features"] = raw["passage"]["features"][:-1]
    with pytest.raises(ParamsError, match="re-fit"):
        load_params(json.dumps(raw))


@pytest.fixture(scope="module")
def demo_searcher(tmp_path_factory: pytest.TempPathFactory, embedder) -> Searcher:  # noqa: ANN001
    """The README's demo: the bundled article alone."""
    index_dir = tmp_path_factory.mktemp("demo-index")
    update_index(ROOT / "corpus", index_dir, embedder, BuildOptions())
    return Searcher(open_current(index_dir), embedder, SearchConfig())


def test_demo_question_quotes_the_17700_sentence_first(demo_searcher: Searcher) -> None:
    answer = demo_searcher.answer("كم عدد متابعي حساب شامي ويتنس؟")
    assert answer.found and "17700" in answer.hits[0].quote.text, [h.quote.text[:80] for h in answer.hits]
    spans = answer.hits[0].quote.highlights
    assert any(answer.hits[0].quote.text[a:b] == "17700" for a, b in spans)  # the figure asked for is highlighted


def test_one_article_fills_every_place(demo_searcher: Searcher) -> None:
    answer = demo_searcher.answer("كيف يستخدم تنظيم داعش الإنترنت لتجنيد الشباب؟", k=4)
    assert len(answer.hits) >= 3 and len({h.article_row for h in answer.hits}) == 1
