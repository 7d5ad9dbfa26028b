"""Every bench script runs in its smallest (--smoke) mode and prints its figures.

Timings are never asserted (they depend on the machine); what is checked is that each script
finishes within its time limit and prints the figures and same-run ratios it exists for. (bench/ray_build.py's
smoke run is in tests/test_ray_build.py, with the other tests that start Ray.)
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bench_runner import NUMBER, run_bench

ROOT = Path(__file__).resolve().parent.parent
# The model provisioned into the test data home; XQuAD-ar comes from the shipped slice (../shared is hidden).
pytestmark = pytest.mark.usefixtures("models_dir")


@pytest.mark.timeout(200)
def test_build_throughput_prints_chunks_per_second_and_the_ratio() -> None:
    out = run_bench("build_throughput.py")
    assert re.search(rf"raw model\.encode : +{NUMBER}s +{NUMBER} chunks/s", out), out
    assert re.search(rf"index build +: +{NUMBER}s +{NUMBER} chunks/s", out), out
    assert re.search(rf"pipeline ratio \(raw s / build s\): {NUMBER}", out), out
    assert re.search(rf"speed-up new / today's default: {NUMBER}x", out), out
    assert re.search(rf"projected for 100,000 articles .* new default {NUMBER} h, today's default {NUMBER} h", out), out
    assert re.search(rf"late chunking +: +{NUMBER} chunks/s", out), out
    assert re.search(rf"today's default \(torch\) +{NUMBER}", out) and re.search(rf"onnx float \(before int8\) +{NUMBER}", out), out
    assert "new default: backend onnx-int8 on" in out, out  # the new default really is the int8 ONNX backend


@pytest.mark.timeout(200)
def test_query_latency_prints_every_stage_and_the_batching_ratio(built_index: Path) -> None:
    out = run_bench("query_latency.py", "--index-dir", str(built_index))
    for stage in ("embed", "lexical", "dense", "fusion", "quote", "total"):
        assert re.search(rf"ask {stage} .*p50 +{NUMBER} ms +p95 +{NUMBER} ms", out), (stage, out)
    assert re.search(rf"baseline +query embedding alone +p50 +{NUMBER} ms", out), out
    assert re.search(rf"ask p95 / embedding-alone p95: {NUMBER}", out), out
    assert re.search(rf"query embedding only: one-by-one {NUMBER} q/s .*micro-batched {NUMBER} q/s \(ratio {NUMBER}", out), out
    assert re.search(rf"whole answers: .*micro-batched {NUMBER} q/s \(ratio {NUMBER}", out), out
    assert "bot answers/s" in out


@pytest.mark.timeout(200)
def test_memory_prints_rss_by_stage(built_index: Path) -> None:
    out = run_bench("memory.py", "--index-dir", str(built_index))
    assert re.search(rf"^torch +{NUMBER} +{NUMBER} +{NUMBER} +{NUMBER} +{NUMBER} +{NUMBER} +{NUMBER} +{NUMBER}", out, re.M), out


@pytest.mark.timeout(200)
def test_query_latency_by_size_prints_each_stage_at_each_size() -> None:
    out = run_bench("query_latency.py", "--sizes", "300", "1000")
    for stage in ("analyse", "embed", "lexical", "dense", "fusion", "score", "decide", "quote", "total", "other"):
        assert re.search(rf"^ask {stage} +{NUMBER} / +{NUMBER} +{NUMBER} / +{NUMBER}$", out, re.M), (stage, out)
    assert re.search(rf"lexical p50 grows {NUMBER}x from 300 to 1,000 chunks", out), out
    assert "with stored sentence vectors" in out


def test_scale_prints_kind_recall_latency_and_memory() -> None:
    out = run_bench("scale.py")
    assert "SYNTHETIC" in out  # said plainly
    assert re.search(rf"recall@10 vs exact {NUMBER}", out), out
    assert re.search(rf"ask total +p50 +{NUMBER} ms +p95 +{NUMBER} ms", out), out
    assert re.search(rf"serving RSS: peak {NUMBER} MB \(model only {NUMBER} MB, ratio {NUMBER}\)", out), out
    assert re.search(r"^ +1,000 +flat +1\.000", out, re.M), out  # exact search at 10^3 is exact


@pytest.mark.timeout(200)
def test_onnx_speed_prints_throughput_and_quality_against_torch() -> None:
    out = run_bench("onnx_speed.py")
    assert re.search(rf"^torch +{NUMBER} chunks/s +MRR@10 {NUMBER}", out, re.M), out
    for backend in ("onnx", "onnx-int8"):
        ran = re.search(rf"^{backend} +{NUMBER} chunks/s +MRR@10 {NUMBER} .*ratio {NUMBER}x torch, MRR@10 [+-]{NUMBER}", out, re.M)
        assert ran or re.search(rf"^{backend} +SKIPPED: no ONNX export", out, re.M), out


def _tiny_dataset(root: Path) -> Path:
    """The bundled and test articles as passages.jsonl, with the known-item questions and their gold ids."""
    import json

    from index.articles import load_corpus
    from tests.test_known_items import KNOWN_ITEMS

    data = root / "tiny-dev"
    data.mkdir()
    articles = load_corpus(ROOT / "corpus").articles + load_corpus(ROOT / "tests" / "data" / "corpus").articles
    by_title = {a.title: a for a in articles}
    with (data / "passages.jsonl").open("w", encoding="utf-8") as f:
        for i, a in enumerate(articles):
            f.write(json.dumps({"id": f"p{i}", "title": a.title, "text": a.body}, ensure_ascii=False) + "\n")
    ids = {a.title: f"p{i}" for i, a in enumerate(articles)}
    with (data / "questions.jsonl").open("w", encoding="utf-8") as f:
        for n, (question, expected, source) in enumerate(KNOWN_ITEMS):
            assert source[0] in by_title
            row = {"id": f"q{n}", "question": question, "answers": [expected], "passage_id": ids[source[0]], "lang": "en" if question.isascii() else "ar"}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return data


@pytest.mark.timeout(400)
def test_fit_scoring_fits_prints_weights_and_writes_loadable_params(tmp_path: Path, models_dir: Path) -> None:
    from retrieval.scoring import DECISION_FEATURES, PASSAGE_FEATURES, load_params

    data = _tiny_dataset(tmp_path)
    out = tmp_path / "params.json"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "NEWSQA_MODELS_DIR": str(models_dir), "NEWSQA_INDEX_DIR": str(tmp_path / "index")}
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "fit_scoring.py"), "--smoke", "--data", str(data), "--out", str(out)],
                          capture_output=True, text=True, timeout=380, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    for name in (*PASSAGE_FEATURES, *DECISION_FEATURES):
        assert re.search(rf"^  {name} +[+-]{NUMBER}", proc.stdout, re.M), (name, proc.stdout)
    assert re.search(r"half B \(held out\): passage_auc", proc.stdout)
    params = load_params(out.read_text(encoding="utf-8"))
    assert 0.0 <= params.threshold < 1.0 and params.passage.weights.shape == (len(PASSAGE_FEATURES),)


@pytest.mark.timeout(200)
def test_verify_cost_prints_open_and_verify_times_and_their_ratios() -> None:
    out = run_bench("verify_cost.py")
    assert "SYNTHETIC" in out
    assert re.search(rf"^1000 chunks \({NUMBER} MiB on disk\):", out, re.M), out
    assert re.search(rf"plain open +{NUMBER} ms", out), out
    for label in ("open \\+ invariants", "open \\+ invariants \\+ checksums", "index verify \\(checksums\\)"):
        assert re.search(rf"{label} +{NUMBER} ms +ratio to plain open {NUMBER}", out), (label, out)


@pytest.mark.timeout(400)
def test_ablation_prints_one_row_per_stage_on_the_shipped_slice(tmp_path: Path, models_dir: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "NEWSQA_MODELS_DIR": str(models_dir), "NEWSQA_INDEX_DIR": str(tmp_path / "index")}
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "ablation.py"), "--smoke"], capture_output=True, text=True,
                          timeout=380, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "(smoke)" in proc.stdout
    assert re.search(r"^cpu: .+, (avx512_vnni|avx_vnni|avx512f|avx2|none of avx2/avx512)$", proc.stdout, re.M), proc.stdout[:600]
    cells, _, pooled = proc.stdout.partition("pooled over every set and language")
    rows = [line for line in cells.splitlines() if line.startswith("| ") and not line.startswith("| change")]
    assert len(rows) == 7, proc.stdout  # one per stage, one without the cross-lingual terms, one without centring
    cell = rf"{NUMBER} / {NUMBER} / {NUMBER} \({NUMBER}, ({NUMBER}|–)\)"  # + answered share, quoteR@3 among them
    assert all(len(re.findall(cell, row)) == 4 for row in rows), rows  # ar and en questions, halves A and B
    sums = [line for line in pooled.splitlines() if line.startswith("| ") and not line.startswith("| change")]
    assert len(sums) == 7 and all(len(re.findall(rf"{NUMBER} / {NUMBER} / {NUMBER} \(\d+ questions\)", r)) == 2 for r in sums), pooled


@pytest.mark.timeout(300)
def test_backends_prints_both_backends_figures() -> None:
    pytest.importorskip("qdrant_client")
    out = run_bench("backends.py", timeout=280)
    assert re.search(rf"local +{NUMBER}s +{NUMBER} chunks/s", out) and re.search(rf"qdrant +{NUMBER}s +{NUMBER} chunks/s \(LOCAL MODE", out), out
    assert re.search(rf"ratio qdrant-local-mode / local: {NUMBER}", out), out
    assert re.search(rf"dense top-10 identical \(rows, in order\): {NUMBER}", out), out
    assert re.search(rf"lexical top-10 overlap: mean {NUMBER}", out), out
    assert re.search(rf"qdrant +p50 +{NUMBER} ms +p95 +{NUMBER} ms \(LOCAL MODE", out), out
    assert re.search(r"bytes per chunk, Qdrant server \(COMPUTED", out) and re.search(rf"total +{NUMBER}", out.replace(",", "")), out
    assert re.search(rf"qdrant +A/\S+ {NUMBER}/{NUMBER}", out), out


@pytest.mark.timeout(300)
def test_cross_lingual_prints_the_lexicons_cost_at_build_and_answer_time() -> None:
    out = run_bench("cross_lingual.py")
    assert re.search(rf"build with lexicon +: +{NUMBER} s +\(x{NUMBER}\)", out), out
    assert re.search(rf"lexicon: {NUMBER} words embedded in {NUMBER} s", out), out
    assert re.search(rf"answer with +translation: p50 +{NUMBER} ms +p95 +{NUMBER} ms", out), out
    assert re.search(rf"answer p50 with / without: {NUMBER}", out), out


@pytest.mark.timeout(300)
def test_gpu_build_falls_back_without_a_gpu_and_runs_every_step_on_the_cpu() -> None:
    import torch

    if not torch.cuda.is_available():  # CI: the fallback line a build prints, and no figures
        assert "no GPU here: NEWSQA_DEVICE=cuda falls back to the CPU; nothing to measure" in run_bench("gpu_build.py")
    out = run_bench("gpu_build.py", "--device", "cpu")  # the dry run: every step of the GPU run, on the CPU
    for batch in (32, 128, 256, 512, 1024):
        assert re.search(rf"cpu fp32 \(dry run\) chunks, batch +{batch}: +{NUMBER}s +{NUMBER} chunks/s", out), out
    assert re.search(rf"sentences, batch 32: +{NUMBER}s +{NUMBER} sentences/s", out), out
    assert re.search(rf"late chunking: +{NUMBER}s +{NUMBER} chunks/s", out), out
    assert re.search(rf"GPU / CPU chunk encoding, same machine and run: {NUMBER}x", out), out
    assert "cosine min 1.0000" in out, out  # the same model on the same device: the same vectors
    assert re.search(rf"full build on the GPU, separate sentences: +{NUMBER}s +{NUMBER} chunks/s .*projected", out), out
    assert re.search(rf"full build on the GPU, late chunking: +{NUMBER}s +{NUMBER} chunks/s", out), out


@pytest.mark.timeout(120)
def test_analyser_speed_prints_both_ways_the_speed_up_and_that_the_terms_agree() -> None:
    out = run_bench("analyser_speed.py")
    assert re.search(rf"normalize per word uncached: +{NUMBER}s +{NUMBER} chunks/s", out), out
    assert re.search(rf"normalize per word cached +: +{NUMBER}s +{NUMBER} chunks/s", out), out
    assert re.search(rf"speed-up: {NUMBER}x  \(same terms: True\)", out), out


@pytest.mark.timeout(120)
def test_second_encoder_speed_prints_both_tokenizers_and_that_they_agree() -> None:
    out = run_bench("second_encoder_speed.py")
    for name in ("pure-Python", "sentencepiece"):
        assert re.search(rf"^{name} +: load +{NUMBER} s +chunks +{NUMBER} ms each +questions +{NUMBER} ms each$", out, re.M), (name, out)
    assert re.search(rf"ratio pure-Python / sentencepiece: load {NUMBER}x, chunks {NUMBER}x, questions {NUMBER}x", out), out
    same = re.search(r"same token ids: (\d+) of (\d+) texts", out)
    assert same and same.group(1) == same.group(2) and int(same.group(2)) > 0, out
    assert "same vectors: True" in out, out


@pytest.mark.timeout(200)
def test_onnx_load_prints_both_ways_and_that_the_vectors_agree() -> None:
    out = run_bench("onnx_load.py")
    for way in ("weights apart", "one file"):
        assert re.search(rf"^int8 +{way} *: open median +{NUMBER} s +process CPU +{NUMBER} s +peak RSS +{NUMBER} MB", out, re.M), (way, out)
    assert re.search(rf"int8 +ratio one file / weights apart, open: {NUMBER}x +same vector: True", out), out


@pytest.mark.timeout(200)
def test_one_shot_prints_both_ways_the_ratio_and_that_the_answers_agree(built_index: Path) -> None:
    out = run_bench("one_shot.py", "--index-dir", str(built_index))
    for name in ("as shipped", "transformers first"):
        assert re.search(rf"{name} +: median +{NUMBER}s +min +{NUMBER}s +\(1 ask\)", out), (name, out)
    assert re.search(rf"ratio transformers-first / as shipped: {NUMBER}x", out), out
    assert "same answers both ways: True" in out, out
