"""Indexes record how their text was analysed and which weights made their vectors; both are enforced."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from bench.corpusgen import write_corpus
from bot.cli import main
from index import arabic, build
from index.build import BuildOptions, update_index
from index.embedder import weights_fingerprint
from index.errors import AnalyserMismatchError, ModelMismatchError
from index.integrity import seal_manifest
from index.store import open_current
from retrieval.search import LiveSearcher
from tests.fakes import HashEmbedder

WEIGHTS_A = "sha256:" + "a" * 64
WEIGHTS_B = "sha256:" + "b" * 64


@pytest.fixture
def built(tmp_path: Path) -> tuple[Path, Path]:
    corpus, index_dir = tmp_path / "corpus", tmp_path / "index"
    write_corpus(corpus, 12)
    update_index(corpus, index_dir, HashEmbedder(fingerprint=WEIGHTS_A), BuildOptions())
    return corpus, index_dir


def test_manifest_records_analyser_version_and_weights(built) -> None:
    _, index_dir = built
    manifest = open_current(index_dir).manifest
    assert manifest["analyser"] == {"version": arabic.ANALYSER_VERSION}
    assert manifest["model"]["fingerprint"] == WEIGHTS_A


def test_a_new_analyser_version_rebuilds_in_full(built, monkeypatch: pytest.MonkeyPatch) -> None:
    corpus, index_dir = built
    same = HashEmbedder(fingerprint=WEIGHTS_A)
    assert not update_index(corpus, index_dir, same, BuildOptions()).switched  # nothing changed: nothing done
    monkeypatch.setattr(build, "ANALYSER_VERSION", arabic.ANALYSER_VERSION + 1)
    report = update_index(corpus, index_dir, same, BuildOptions())
    assert report.switched and report.full_rebuild_reason == (
        f"text analyser changed (version {arabic.ANALYSER_VERSION} → {arabic.ANALYSER_VERSION + 1})"
    )
    assert report.embedded_chunks == report.total_chunks > 0
    assert open_current(index_dir).manifest["analyser"]["version"] == arabic.ANALYSER_VERSION + 1


def test_other_weights_rebuild_in_full_on_update(built) -> None:
    corpus, index_dir = built
    report = update_index(corpus, index_dir, HashEmbedder(fingerprint=WEIGHTS_B), BuildOptions())
    assert report.switched and "embedding model weights changed" in report.full_rebuild_reason
    assert report.embedded_chunks == report.total_chunks > 0


def test_serving_refuses_other_weights_in_one_line(built) -> None:
    _, index_dir = built
    with pytest.raises(ModelMismatchError, match="built with other weights of test/hash-embedder") as info:
        LiveSearcher(index_dir, HashEmbedder(fingerprint=WEIGHTS_B)).get()
    assert "\n" not in str(info.value) and "newsqa index update" in str(info.value)
    assert LiveSearcher(index_dir, HashEmbedder(fingerprint=WEIGHTS_A)).get().version.name == "v000001"


def test_serving_refuses_another_analyser_version(built, monkeypatch: pytest.MonkeyPatch) -> None:
    _, index_dir = built
    monkeypatch.setattr(arabic, "ANALYSER_VERSION", arabic.ANALYSER_VERSION + 1)
    with pytest.raises(AnalyserMismatchError, match="text analyser version"):
        LiveSearcher(index_dir, HashEmbedder(fingerprint=WEIGHTS_A)).get()


def test_ask_refuses_an_index_built_from_other_weights(built_index: Path, models_dir: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    copy = tmp_path / "index"
    shutil.copytree(built_index, copy)
    manifest_path = next((copy / "versions").glob("v*/manifest.json"))
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    assert manifest["model"]["fingerprint"].startswith("sha256:")  # the real model's weights were hashed
    manifest["model"]["fingerprint"] = WEIGHTS_B  # as if the hub's full-precision copy had built it
    manifest_path.write_text(json.dumps(seal_manifest(manifest)), encoding="utf-8")  # a consistent manifest, not damage
    monkeypatch.setenv("NEWSQA_MODELS_DIR", str(models_dir))
    assert main(["ask", "كم عدد متابعي حساب شامي ويتنس؟", "--index-dir", str(copy)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("newsqa: index version v000001 was built with other weights") and "\n" not in err


def test_weights_fingerprint_hashes_contents_and_caches_by_size_and_mtime(tmp_path: Path) -> None:
    model = tmp_path / "model"
    (model / "onnx").mkdir(parents=True)
    (model / "config.json").write_text("{}")
    weights = model / "model.safetensors"
    weights.write_bytes(b"\x01" * 4096)
    (model / "onnx" / "model.bin").write_bytes(b"derived export, not the weights")
    cache = tmp_path / "cache" / "fingerprints.json"
    first = weights_fingerprint(model, cache)
    assert first and first.startswith("sha256:") and cache.is_file()
    stat = weights.stat()
    weights.write_bytes(b"\x02" * 4096)  # same size; put the old mtime back: the cache answers
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert weights_fingerprint(model, cache) == first
    assert weights_fingerprint(model, None) != first  # without the cache, the contents decide
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert weights_fingerprint(model, cache) != first
    assert weights_fingerprint(tmp_path / "config-only", None) is None


def test_another_tokenizer_rebuilds_in_full_but_serving_goes_on(tmp_path: Path) -> None:
    """The same weights fed text cut another way make other vectors: the next update re-embeds, the bot keeps answering."""
    corpus, index_dir = tmp_path / "corpus", tmp_path / "index"
    write_corpus(corpus, 12)
    old = HashEmbedder(fingerprint=WEIGHTS_A)  # an index from before tokenizer fingerprints: none recorded
    update_index(corpus, index_dir, old, BuildOptions())
    assert open_current(index_dir).manifest["model"]["tokenizer"] is None

    new = HashEmbedder(fingerprint=WEIGHTS_A)
    new.tokenizer_fingerprint = "sha256:" + "1" * 64
    assert LiveSearcher(index_dir, new).get().version.name == "v000001"  # serving never refuses over the tokenizer
    report = update_index(corpus, index_dir, new, BuildOptions())
    assert report.full_rebuild_reason == "the tokenizer was not recorded (an index from before tokenizer fingerprints)"
    assert report.embedded_chunks == report.total_chunks > 0
    assert open_current(index_dir).manifest["model"]["tokenizer"] == new.tokenizer_fingerprint
    assert not update_index(corpus, index_dir, new, BuildOptions()).switched  # the same tokenizer: nothing to do

    new.tokenizer_fingerprint = "sha256:" + "2" * 64
    report = update_index(corpus, index_dir, new, BuildOptions())
    assert report.full_rebuild_reason == "the tokenizer changed (sha256:111111111111 → sha256:222222222222)"
    assert report.embedded_chunks == report.total_chunks > 0
