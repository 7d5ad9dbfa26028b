"""The index on disk: real FAISS, SQLite and bm25s files that load back and answer identically."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import faiss
import numpy as np
import pytest

from index.onnx_backend import INT8_RECIPE
from index.store import open_current, read_current
from retrieval.search import Searcher
from tests.conftest import ROOT

QUESTIONS = ["كم عدد متابعي حساب شامي ويتنس؟", "What is the central bank's new interest rate?", "فيضانات ميناء الصيادين"]


def test_files_on_disk_line_up(built_index: Path) -> None:
    version_dir = built_index / "versions" / read_current(built_index)
    manifest = json.loads((version_dir / "manifest.json").read_text(encoding="utf-8"))
    fingerprint, tokenizer = manifest["model"].pop("fingerprint"), manifest["model"].pop("tokenizer")
    assert manifest["model"] == {"name": "intfloat/multilingual-e5-small", "dim": 384, "backend": "onnx-int8", "int8_recipe": INT8_RECIPE}  # the default
    assert fingerprint.startswith("sha256:") and len(fingerprint) == 7 + 64  # the weight files' hash
    assert tokenizer.startswith("sha256:") and tokenizer != fingerprint  # the tokenizer files' hash
    assert manifest["analyser"]["version"] >= 1
    assert {"faiss-cpu", "sentence-transformers", "bm25s", "torch"} <= set(manifest["libraries"])
    index = faiss.read_index(str(version_dir / "dense.faiss"))
    db = sqlite3.connect(version_dir / "meta.sqlite")
    n_chunks = db.execute("SELECT count(*) FROM chunks").fetchone()[0]
    assert index.ntotal == n_chunks == manifest["counts"]["chunks"]
    # Each stored vector is the unit-length vector of its row; FAISS holds the same rows.
    vectors = np.load(version_dir / "vectors.npy")
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert np.allclose(index.reconstruct(5), vectors[5], atol=1e-6)
    # Chunk offsets slice the stored original bodies; sources come along.
    for start, end, body, _section in db.execute(
        'SELECT c.start, c."end", a.body, c.section FROM chunks c JOIN articles a ON a.row = c.article_row'
    ):
        assert 0 <= start < end <= len(body)
    assert db.execute("SELECT count(DISTINCT source) FROM articles").fetchone()[0] == 5


def test_reloaded_index_answers_identically(built_index: Path, searcher, embedder) -> None:  # noqa: ANN001
    fresh = Searcher(open_current(built_index), embedder)
    for q in QUESTIONS:
        a, b = searcher.answer(q, k=5).to_json(), fresh.answer(q, k=5).to_json()
        # Identical quotes, sources and order; scores equal up to float noise (earlier tests may change
        # torch's thread count, which changes the last bits of the question's vector).
        scores_a, scores_b = [h.pop("score") for h in a["hits"]], [h.pop("score") for h in b["hits"]]
        assert a == b
        assert scores_a == pytest.approx(scores_b, abs=1e-4)


def test_new_process_answers_identically(built_index: Path, searcher, models_dir: Path) -> None:
    """`newsqa ask --json` in a fresh interpreter gives the same JSON as this process."""
    for q in QUESTIONS[:2]:
        out = subprocess.run(
            [sys.executable, "-m", "bot.cli", "ask", q, "--json", "-k", "3", "--index-dir", str(built_index)],
            cwd=ROOT, capture_output=True, text=True, timeout=300,
            env={"PATH": "/usr/bin:/bin", "NEWSQA_MODELS_DIR": str(models_dir), "HF_HUB_OFFLINE": "1",
                 "NEWSQA_HOME": os.environ["NEWSQA_HOME"]},
        )
        assert out.returncode == 0, out.stderr
        got = json.loads(out.stdout)
        expected = searcher.answer(q, k=3).to_json()
        assert [h["quote"] for h in got["hits"]] == [h["quote"] for h in expected["hits"]]
        assert set(got) == {"question", "hits"}
        assert set(got["hits"][0]) == {"quote", "title", "source", "date", "article_id", "score"}
