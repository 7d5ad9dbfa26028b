"""The eval command: hand-computed figures on a tiny dataset, the --json shape, and that every
metric collapses when retrieval is broken (index rows shuffled)."""

from __future__ import annotations

from dataclasses import replace

import json
from pathlib import Path

import numpy as np
import pytest

from bot.cli import main
from index.build import BuildOptions, update_index
from index.store import open_current
from retrieval.evaluate import (
    DatasetError,
    Question,
    contains_answer,
    evaluate,
    load_dataset,
    load_passages,
    select,
    split_of,
)
from retrieval.search import SearchConfig, Searcher

TINY = Path(__file__).resolve().parent / "data" / "eval-tiny"
METRICS = {"n", "ansR@1", "ansR@5", "ansR@20", "MRR@10", "quoteR@3", "quoteR@1", "quote_chars_mean", "quote_chars_max", "latency_ms_mean", "latency_ms_p95", "embed_ms_mean",
           "answered", "quoteR@3|answered"}


@pytest.fixture(scope="module")
def tiny_json(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> dict:
    """`newsqa eval tests/data/eval-tiny --json`, run once through the real CLI."""
    import subprocess
    import sys

    index_dir = tmp_path_factory.mktemp("eval-index")
    env = {"NEWSQA_MODELS_DIR": str(models_dir), "PATH": "/usr/bin:/bin", "NEWSQA_THREADS": "2"}
    proc = subprocess.run(
        [sys.executable, "-m", "bot.cli", "eval", str(TINY), "--json", "--index-dir", str(index_dir)],
        capture_output=True, text=True, env=env, cwd=Path(__file__).resolve().parent.parent, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_eval_json_shape(tiny_json: dict) -> None:
    assert set(tiny_json) == {"lexical", "dense", "fused"}
    for mode, metrics in tiny_json.items():
        assert set(metrics) == METRICS, mode
        assert metrics["n"] == 5


def test_eval_tiny_dataset_hand_computed(tiny_json: dict) -> None:
    # 5 questions; q4's answer occurs in no passage, so 4/5 answers can be found at any depth.
    # 4 questions name a gold passage and each is ranked first: MRR@10 = (1+1+1+1)/4.
    for mode, m in tiny_json.items():
        assert m["ansR@1"] == pytest.approx(0.8), mode
        assert m["ansR@5"] == pytest.approx(0.8), mode
        assert m["ansR@20"] == pytest.approx(0.8), mode
        assert m["MRR@10"] == pytest.approx(1.0), mode
        assert m["quoteR@3"] == pytest.approx(0.8), mode
        assert 0 < m["quote_chars_max"] <= 400
        assert m["latency_ms_p95"] >= 0


def test_eval_text_table(tmp_path: Path, models_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("NEWSQA_MODELS_DIR", str(models_dir))
    monkeypatch.chdir(tmp_path)
    assert main(["eval", str(TINY), "--limit", "2", "--mode", "lexical", "--index-dir", str(tmp_path / "ix")]) == 0
    out = capsys.readouterr().out
    assert "2 questions" in out and "lexical" in out and "MRR@10" in out and "dense" not in out


def test_eval_failures_lists_missed_questions(tmp_path: Path, models_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("NEWSQA_MODELS_DIR", str(models_dir))
    ix = str(tmp_path / "ix")
    assert main(["eval", str(TINY), "--mode", "fused", "--failures", "5", "--index-dir", ix]) == 0
    out = capsys.readouterr().out
    missed = [line for line in out.splitlines() if line.startswith("- ")]
    assert "missed: 1 of 5 questions" in out and len(missed) == 1  # q4's answer is in no passage
    assert "expected:" in out and "quoted [" in out
    assert main(["eval", str(TINY), "--mode", "fused", "--failures", "--json", "--index-dir", ix]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"fused", "questions"} and set(data["fused"]) == METRICS
    rows = {r["id"]: r for r in data["questions"]}
    assert len(rows) == 5 and sum(not r["quote_hit"] for r in rows.values()) == 1
    assert all({"question", "answers", "quotes", "gold_rank", "declined"} <= set(r) for r in rows.values())
    # the two figures quoteR@3 splits into: how often the decision answers, and how often what it quotes holds the answer
    shown = [r for r in rows.values() if r["declined"] is None]
    assert data["fused"]["answered"] == pytest.approx(len(shown) / 5, abs=1e-4)
    assert data["fused"]["quoteR@3|answered"] == pytest.approx(sum(r["quote_hit"] for r in shown) / len(shown), abs=1e-4)
    assert data["fused"]["quoteR@3"] == pytest.approx(data["fused"]["answered"] * data["fused"]["quoteR@3|answered"], abs=1e-3)


def test_eval_bad_dataset_names_file(tmp_path: Path, models_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("NEWSQA_MODELS_DIR", str(models_dir))
    (tmp_path / "passages.jsonl").write_text('{"id": "p1", "text": "نص"}\n', encoding="utf-8")
    (tmp_path / "questions.jsonl").write_text('{"id": "q1", "question": "سؤال؟", "answers": []}\n', encoding="utf-8")
    assert main(["eval", str(tmp_path), "--index-dir", str(tmp_path / "ix")]) == 1
    err = capsys.readouterr().err
    assert "questions.jsonl:1" in err and "answers" in err
    with pytest.raises(DatasetError, match="neither passages.jsonl nor a corpus"):
        (tmp_path / "empty").mkdir()
        load_dataset(tmp_path / "empty", tmp_path / "questions.jsonl")


def test_split_is_deterministic_and_balanced() -> None:
    qs = [Question(f"id-{i}", "q", ("a",)) for i in range(1000)]
    a, b = select(qs, "A"), select(qs, "B")
    assert len(a) + len(b) == 1000 and 400 < len(a) < 600
    assert not {q.id for q in a} & {q.id for q in b}
    assert split_of("56beb4343aeaaa14008c925b") == split_of("56beb4343aeaaa14008c925b")
    assert select(qs, "A", limit=3) == a[:3]


def test_answer_matching_is_normalised() -> None:
    assert contains_answer("أعلنت الهيئة إغلاق  الميناء", ["اعلنت الهيئه اغلاق الميناء"])
    assert not contains_answer("أعلنت الهيئة", ["الميناء"])


# --- broken retrieval must show in every metric --------------------------------------------

_CITIES = ["زندار", "قوربان", "ميلاش", "تاروك", "بيسان", "كوفار", "دلمير", "صافور", "نيراس", "هوبال",
           "جرمان", "ليتار", "فاسين", "رودان", "سيمار", "غالون", "ماريد", "توفان", "عقران", "بلقيس"]
_GOODS = ["الزجاج", "الحرير", "الفخار", "النحاس", "الصابون", "السجاد", "الورق", "العطور", "الجلود", "الخزف",
          "التمور", "الزيتون", "البن", "الملح", "القطن", "الصوف", "الفضة", "الذهب", "العسل", "الخشب"]


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory, embedder) -> tuple[Searcher, list[Question]]:
    """20 one-sentence passages, each a made-up city, its craft and a year; one question each."""
    root = tmp_path_factory.mktemp("synthetic")
    rows, questions = [], []
    for i, (city, good) in enumerate(zip(_CITIES, _GOODS)):
        year = 1700 + 7 * i
        rows.append({"id": f"s{i}", "text": f"تشتهر مدينة {city} بصناعة {good} منذ عام {year}، ويعمل فيها مئات الحرفيين."})
        questions.append(Question(f"q{i}", f"منذ أي عام تشتهر مدينة {city} بصناعة {good}؟", (str(year),), f"s{i}"))
    path = root / "passages.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    update_index(root, root / "index", embedder, BuildOptions(), corpus=load_passages(path, "synthetic"))
    return Searcher(open_current(root / "index"), embedder, SearchConfig()), questions


class ShuffledSearcher(Searcher):
    """A searcher whose stored rows no longer match the lexical and dense indexes."""

    def __init__(self, base: Searcher) -> None:
        # The fitted re-ranker reads the stored text of the rows it scores: scoring all 20 rows of this
        # tiny set would undo the shuffle, so it sees only the (wrong) top two, as in a large corpus.
        super().__init__(base.version, base.embedder, replace(base.config, scored=2))
        n = base.version.n_chunks
        self.perm = np.roll(np.arange(n), n // 2)
        self.inverse = np.argsort(self.perm)

    def lexical(self, question, n, mask=None):
        return [(int(self.perm[r]), s) for r, s in super().lexical(question, n, mask)]

    def dense(self, qvec, n, mask=None):
        return [(int(self.perm[r]), s) for r, s in super().dense(qvec, n, mask)]

    def unit_vectors(self, rows, query=None):
        # Sentence vectors are part of the index too: row r now holds another chunk's.
        return super().unit_vectors([int(self.inverse[r]) for r in rows], query)


def test_every_metric_collapses_when_index_rows_are_shuffled(synthetic: tuple[Searcher, list[Question]]) -> None:
    searcher, questions = synthetic
    qvecs = searcher.embedder.encode_queries([q.question for q in questions])
    good = evaluate(searcher, questions, qvecs=qvecs)
    broken = evaluate(ShuffledSearcher(searcher), questions, qvecs=qvecs)
    for mode in ("lexical", "dense", "fused"):
        assert good[mode]["MRR@10"] >= 0.9, (mode, good[mode])
        assert good[mode]["ansR@1"] >= 0.9 and good[mode]["quoteR@3"] >= 0.9, (mode, good[mode])
        # ansR@20 covers every passage of this tiny set, so it cannot tell; the rest must.
        assert broken[mode]["MRR@10"] <= 0.2, (mode, broken[mode])
        assert broken[mode]["ansR@1"] <= 0.1 and broken[mode]["ansR@5"] <= 0.3, (mode, broken[mode])
        assert broken[mode]["quoteR@3"] <= 0.2, (mode, broken[mode])


class _NoEncoding:
    """An embedder that must not be asked to encode (the cache has to serve)."""

    def __init__(self, real) -> None:
        self.name, self.dim = real.name, real.dim

    def encode_passages(self, texts, batch_size=32):
        raise AssertionError("sentence vectors should have come from the cache")

    encode_queries = encode_passages


def test_sentence_vectors_cache_round_trip(synthetic: tuple[Searcher, list[Question]], tmp_path: Path) -> None:
    searcher, _ = synthetic
    cache = tmp_path / "units.npz"
    searcher.warm_units(cache)
    assert cache.is_file()
    fresh = Searcher(searcher.version, _NoEncoding(searcher.embedder), searcher.config)
    fresh.warm_units(cache)
    rows = list(range(searcher.version.n_chunks))
    for a, b in zip(searcher.unit_vectors(rows), fresh.unit_vectors(rows)):
        assert np.array_equal(a, b) and len(a) >= 1


def test_eval_on_a_corpus_folder(tmp_path: Path, models_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    from tests.conftest import TEST_CORPUS

    monkeypatch.setenv("NEWSQA_MODELS_DIR", str(models_dir))
    shutil.copytree(TEST_CORPUS, tmp_path / "ds" / "corpus")
    (tmp_path / "ds" / "questions.jsonl").write_text(
        '{"id": "a", "question": "كم قاربا تضرر في ميناء الصيادين؟", "answers": ["120"]}\n'
        '{"id": "b", "question": "بكم رفع البنك المركزي سعر الفائدة الرئيسي؟", "answers": ["ربع نقطة مئوية"]}\n',
        encoding="utf-8",
    )
    assert main(["eval", str(tmp_path / "ds"), "--json", "--index-dir", str(tmp_path / "ix")]) == 0
    out = json.loads(capsys.readouterr().out)
    for mode, m in out.items():
        assert m["ansR@1"] == 1.0 and m["quoteR@3"] == 1.0, (mode, m)
        assert m["MRR@10"] is None  # no passage_id given: no gold-passage metric
