"""Builds on Ray: the same index as the plain build, only changed articles re-embedded, loopback only, clear errors.

Every test that starts Ray is in this file, so `pytest -n --dist loadfile` (scripts/test.sh) runs them one at a time.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from bot.cli import main
from index.build import BuildOptions, update_index
from index.errors import RayBuildError
from index.store import open_current
from retrieval.search import SearchConfig, Searcher
from tests.bench_runner import NUMBER, run_bench

QUESTIONS = (
    "كم عدد متابعي حساب شامي ويتنس؟",
    "Who is the American coordinator of the international coalition?",
    "كم أصبح سعر الفائدة بعد قرار البنك المركزي؟",
    "How many boats were damaged by the harbour flood?",
)
OPTS = BuildOptions(sentence_vectors=True)  # sentence vectors too: both of a build's encodings go through Ray
LOOPBACK_ADDRESSES = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}


@pytest.mark.timeout(600)
@pytest.mark.usefixtures("models_dir")
def test_ray_build_bench_prints_chunks_per_second_plain_and_on_ray_and_the_ratio() -> None:
    """First in this file, before the module's own Ray instance starts: the bench starts and stops its own.

    It takes ~80 s on an idle 2-core machine but 280 s and more beside other workers: the limit is for a hang only."""
    pytest.importorskip("ray.data")
    out = run_bench("ray_build.py", timeout=560)
    for name in ("plain", "ray", "ray, warm"):
        assert re.search(rf"{re.escape(name)} +: +{NUMBER}s +{NUMBER} chunks/s", out), (name, out)
    assert re.search(rf"ratio ray / plain: {NUMBER}x", out), out
    assert re.search(r"largest vector difference ray vs plain: [0-9.e+-]+", out), out


@pytest.fixture(scope="module")
def ray_instance() -> Iterator[object]:
    """One local Ray instance (2 CPUs, loopback only) for the whole module, started as the build starts its own."""
    pytest.importorskip("ray.data")
    from index.ray_embed import ray_session

    address = os.environ.pop("RAY_ADDRESS", None)  # never a cluster someone has configured
    try:
        with ray_session(num_cpus=2) as ray:
            yield ray
    finally:
        if address is not None:
            os.environ["RAY_ADDRESS"] = address


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory, combined_corpus: Path, embedder, ray_instance) -> tuple[Path, Path]:  # noqa: ANN001
    """The combined corpus built twice: plain, and with its embedding on Ray."""
    plain, on_ray = tmp_path_factory.mktemp("plain-index"), tmp_path_factory.mktemp("ray-index")
    a = update_index(combined_corpus, plain, embedder, OPTS)
    b = update_index(combined_corpus, on_ray, embedder, BuildOptions(sentence_vectors=True, ray=True))
    assert a.switched and b.switched and a.embedded_chunks == b.embedded_chunks == a.total_chunks > 0
    return plain, on_ray


def test_local_instance_listens_on_loopback_only(ray_instance) -> None:  # noqa: ANN001
    import psutil

    ray = ray_instance
    assert ray.util.get_node_ip_address() == "127.0.0.1"
    nodes = ray.nodes()
    assert nodes and {n["NodeManagerAddress"] for n in nodes} == {"127.0.0.1"}
    ours = {p.pid for p in psutil.Process().children(recursive=True)} | {os.getpid()}
    listening = [c for c in psutil.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN and c.pid in ours]
    assert listening, "no listening socket of Ray's processes found"
    assert {c.laddr.ip for c in listening} <= LOOPBACK_ADDRESSES, sorted({c.laddr.ip for c in listening})


def test_same_rows_and_vectors_as_the_plain_build(builds) -> None:  # noqa: ANN001
    plain, on_ray = (open_current(p) for p in builds)
    try:
        rows = 'SELECT row, id, article_row, ord, section, start, "end" FROM chunks ORDER BY row'
        assert plain.db.execute(rows).fetchall() == on_ray.db.execute(rows).fetchall()
        articles = "SELECT row, id, content_hash FROM articles ORDER BY row"
        assert plain.db.execute(articles).fetchall() == on_ray.db.execute(articles).fetchall()
        a, b = np.asarray(plain.vectors), np.asarray(on_ray.vectors)
        assert a.shape == b.shape and float(np.abs(a - b).max()) <= 1e-5
        (sa, oa), (sb, ob) = plain.sentence_vectors(), on_ray.sentence_vectors()
        assert np.array_equal(oa, ob)
        assert float(np.abs(np.asarray(sa, np.float32) - np.asarray(sb, np.float32)).max()) <= 2e-3  # stored as float16
        assert plain.manifest["model"] == on_ray.manifest["model"]
        assert plain.manifest["sentences"] == on_ray.manifest["sentences"]
    finally:
        plain.close()
        on_ray.close()


def test_same_answers_as_the_plain_build(builds, embedder) -> None:  # noqa: ANN001
    def answers(index_dir: Path) -> list[list[tuple[str, str]]]:
        version = open_current(index_dir)
        try:
            searcher = Searcher(version, embedder, SearchConfig())
            return [[(h.source.article_id, h.quote.text) for h in searcher.answer(q, k=5).hits] for q in QUESTIONS]
        finally:
            version.close()

    plain, on_ray = answers(builds[0]), answers(builds[1])
    assert all(plain) and plain == on_ray


def test_update_on_ray_embeds_only_the_changed_article(
    builds, tmp_path: Path, combined_corpus: Path, models_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys  # noqa: ANN001
) -> None:
    import index.build

    corpus, index_dir = tmp_path / "corpus", tmp_path / "index"
    shutil.copytree(combined_corpus, corpus)
    shutil.copytree(builds[1], index_dir)
    before = open_current(index_dir)
    old = dict(zip((r[0] for r in before.db.execute("SELECT id FROM chunks ORDER BY row")), np.asarray(before.vectors).copy()))
    before.close()
    flood = corpus / "harbour-flood.txt"
    flood.write_text(flood.read_text(encoding="utf-8").rstrip() + "\n\nوأعلنت السلطات إعادة فتح الميناء صباح الأحد.\n", encoding="utf-8")

    sent: list[int] = []
    real = index.build.encode_passages_on_ray

    def spy(embedder, texts, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        sent.append(len(texts))
        return real(embedder, texts, *args, **kwargs)

    monkeypatch.setattr(index.build, "encode_passages_on_ray", spy)
    monkeypatch.setenv("NEWSQA_MODELS_DIR", str(models_dir))
    monkeypatch.setenv("NEWSQA_SENTENCE_VECTORS", "true")
    assert main(["index", "update", "--ray", "--no-progress", "--corpus", str(corpus), "--index-dir", str(index_dir)]) == 0
    out = capsys.readouterr().out
    assert "added 0, changed 1, removed 0" in out

    after = open_current(index_dir)
    try:
        rows = after.db.execute(
            "SELECT c.id, a.path FROM chunks c JOIN articles a ON a.row = c.article_row ORDER BY c.row"
        ).fetchall()
        changed = [row for row, (_, path) in enumerate(rows) if path.endswith("harbour-flood.txt")]
        _, offsets = after.sentence_vectors()
        their_sentences = sum(int(offsets[r + 1] - offsets[r]) for r in changed)
        assert after.manifest["build"]["embedded_chunks"] == len(changed) > 0 and their_sentences >= len(changed)
        assert sent == [len(changed) + their_sentences]  # the chunks and their sentences in one pipeline, nothing else
        vectors = np.asarray(after.vectors)
        for row, (cid, path) in enumerate(rows):
            if not path.endswith("harbour-flood.txt"):
                assert np.array_equal(vectors[row], old[cid]), cid  # carried over bit for bit
    finally:
        after.close()


def test_late_chunking_on_ray_is_refused_clearly(tmp_path: Path, combined_corpus: Path, embedder, ray_instance) -> None:  # noqa: ANN001
    opts = BuildOptions(sentence_vectors=True, late_chunking=True, ray=True)
    with pytest.raises(RayBuildError, match="late chunking"):
        update_index(combined_corpus, tmp_path / "index", embedder, opts)
    assert not (tmp_path / "index" / "CURRENT").exists()


def test_without_ray_the_cli_says_how_to_install_it(
    tmp_path: Path, combined_corpus: Path, monkeypatch: pytest.MonkeyPatch, capsys  # noqa: ANN001
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if it were not installed
    code = main(["index", "build", "--ray", "--corpus", str(combined_corpus), "--index-dir", str(tmp_path / "index")])
    err = capsys.readouterr().err
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err
    assert "pip install 'newsqa[ray]'" in lines[0] and "NEWSQA_EXTRAS=dev,ray bash scripts/install.sh" in lines[0]
    assert not (tmp_path / "index").exists()  # said before any work


def test_the_address_comes_from_the_flag_the_setting_or_ray_address(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.settings import Settings
    from index.ray_embed import ray_address

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert ray_address(None) is None
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:6379")
    assert ray_address(None) == "127.0.0.1:6379" and ray_address("127.0.0.1:7000") == "127.0.0.1:7000"
    monkeypatch.setenv("NEWSQA_RAY_ADDRESS", "ray://127.0.0.1:10001")
    assert Settings(_env_file=None).build_options().ray_address == "ray://127.0.0.1:10001"


def test_an_unreachable_cluster_is_said_within_seconds() -> None:
    import socket

    from index.ray_embed import _check_reachable, _host_port

    assert _host_port("ray://127.0.0.1:10001") == ("127.0.0.1", 10001) and _host_port("auto") is None
    with socket.socket() as s:  # a port nothing listens on: bound, never listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        with pytest.raises(RayBuildError, match=f"cannot reach the Ray cluster at 127.0.0.1:{port}"):
            _check_reachable(_host_port(f"127.0.0.1:{port}"))


def test_a_qdrant_build_on_ray_answers_as_the_plain_one(
    builds, tmp_path: Path, models_dir: Path, combined_corpus: Path, monkeypatch: pytest.MonkeyPatch, capsys  # noqa: ANN001
) -> None:
    """Built on Ray into Qdrant (its local mode) by the CLI, it answers as the module's plain build on local files does.

    (The two backends give the same answers from the same build: tests/test_backends.py.)"""
    import json

    pytest.importorskip("qdrant_client")
    monkeypatch.setenv("NEWSQA_MODELS_DIR", str(models_dir))
    on_ray = str(tmp_path / "ray")
    monkeypatch.setenv("NEWSQA_BACKEND", "qdrant")
    assert main(["index", "build", "--ray", "--no-progress", "--corpus", str(combined_corpus), "--index-dir", on_ray]) == 0
    capsys.readouterr()
    got, lexicons = {}, {}
    for name, index_dir, backend in (("ray", on_ray, "qdrant"), ("plain", str(builds[0]), "local")):
        monkeypatch.setenv("NEWSQA_BACKEND", backend)
        assert main(["index", "status", "--json", "--index-dir", index_dir]) == 0
        lexicon = json.loads(capsys.readouterr().out)["lexicon"]  # written on Ray's path too
        lexicons[name] = {k: lexicon[k] for k in ("count", "embedded")}  # (its seconds differ)
        got[name] = []
        for q in QUESTIONS[:2]:  # one Arabic, one English (all four are compared on the local backend above)
            assert main(["ask", q, "--json", "--index-dir", index_dir]) == 0
            got[name].append([(h["article_id"], h["quote"]) for h in json.loads(capsys.readouterr().out)["hits"]])
    assert all(got["plain"]) and got["plain"] == got["ray"]
    assert lexicons["plain"] == lexicons["ray"] and lexicons["ray"]["count"] == lexicons["ray"]["embedded"] > 0
