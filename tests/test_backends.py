"""One test body, two backends: the local files (FAISS + bm25s + SQLite) and Qdrant (local mode, in-process).

Both are built from the same corpus with the same model; the answers, the dense side and the lexical
side must agree, and versions, switch-over, incremental updates and pruning must behave alike.
"""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from index.build import BuildOptions, BuildReport, update_index
from index.errors import IndexCorruptError
from index.lexicon import Lexicon
from index.second_encoder import SecondEncoder
from index.store import IndexReader, LocalStore, list_versions
from retrieval.query import analyse
from retrieval.search import LiveSearcher, Searcher
from retrieval.types import SearchFilters

pytest.importorskip("qdrant_client")

from index.qdrant_build import update_qdrant  # noqa: E402
from index.qdrant_store import QdrantStore, connect  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TEST_CORPUS = ROOT / "tests" / "data" / "corpus"
OPTS = BuildOptions(sentence_vectors=True)

KNOWN = [  # question → words the first quote must hold (the same on both backends)
    ("كم عدد متابعي حساب شامي ويتنس؟", "17700"),
    ("بكم رفع البنك المركزي سعر الفائدة؟", "الفائدة"),
    ("كم يوما توقفت الملاحة في ميناء الصيادين؟", "الملاحة"),
    ("What is the capacity of the new solar power plant?", "1500"),
]
ENGLISH = [  # matched by BM25 through the Arabic terms their words mean (the version's lexicon), on both backends
    "What is the capacity of the new solar power plant?",
    "How many boats were damaged by the harbour flood?",
    "How much did the central bank raise interest rates?",
    "How many followers does the Shami Witness account have?",
    "software for children",
]


class Backend:
    """Build, update and open one index, whichever backend keeps it."""

    def __init__(self, kind: str, root: Path) -> None:
        self.kind, self.root = kind, root
        self.index_dir = root / "index"
        self.store = QdrantStore(connect(path=":memory:"), prefix="t") if kind == "qdrant" else None

    def build(self, corpus: Path, embedder: Any, opts: BuildOptions = OPTS) -> BuildReport:
        if self.store is not None:
            return update_qdrant(corpus, self.store, embedder, self.index_dir, opts)
        return update_index(corpus, self.index_dir, embedder, opts)

    def open(self) -> IndexReader:
        return self.store.open_current() if self.store is not None else LocalStore(self.index_dir).open_current()

    def current(self) -> str | None:
        return self.store.current_name() if self.store is not None else LocalStore(self.index_dir).current_name()

    def versions(self) -> list[str]:
        return self.store.list_versions() if self.store is not None else list_versions(self.index_dir)


def lexicon_words(version: IndexReader) -> set[str]:
    """The corpus words a version's lexicon holds, whichever backend keeps it."""
    lexicon = version.lexicon()
    assert lexicon is not None
    stored = lexicon if isinstance(lexicon, Lexicon) else lexicon.read()  # type: ignore[attr-defined]
    return {str(w) for w in stored.words}


def corpus_of(root: Path, *names: str, sample: bool = False) -> Path:
    """A corpus folder holding these test articles (and the bundled sample article)."""
    folder = root / "corpus"
    folder.mkdir(exist_ok=True)
    for name in names:
        shutil.copy(TEST_CORPUS / name, folder / name)
    if sample:
        for f in (ROOT / "corpus").iterdir():
            shutil.copy(f, folder / f.name)
    return folder


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, embedder) -> dict[str, Searcher]:  # noqa: ANN001
    """The same corpus built into both backends, with a searcher over each."""
    root = tmp_path_factory.mktemp("backends")
    corpus = corpus_of(root, *[f.name for f in TEST_CORPUS.iterdir()], sample=True)
    out = {}
    for kind in ("local", "qdrant"):
        b = Backend(kind, root / kind)
        report = b.build(corpus, embedder)
        assert report.switched and not report.rejected
        out[kind] = Searcher(b.open(), embedder)
    return out


@pytest.mark.parametrize("question,expected", KNOWN)
def test_the_same_quoted_answer_on_both_backends(pair: dict[str, Searcher], question: str, expected: str) -> None:
    local, qdrant = (pair[k].answer(question, k=3) for k in ("local", "qdrant"))
    assert local.found and qdrant.found
    assert [(h.source.article_id, h.quote.text) for h in local.hits] == [(h.source.article_id, h.quote.text) for h in qdrant.hits]
    assert expected in qdrant.hits[0].quote.text


@pytest.mark.parametrize("question", [q for q, _ in KNOWN] + ["من فاز بالكأس؟", "software for children"])
def test_dense_side_identical_and_lexical_overlap(pair: dict[str, Searcher], question: str) -> None:
    local, qdrant = pair["local"], pair["qdrant"]
    qvec = local.embedder.encode_queries([question])[0]
    a, b = local.dense(qvec, 10), qdrant.dense(qvec, 10)
    assert [r for r, _ in a] == [r for r, _ in b]
    np.testing.assert_allclose([s for _, s in a], [s for _, s in b], atol=1e-5)
    query = local.rank(question, mode="lexical").query
    la, lb = local.lexical(query, 10), qdrant.lexical(query, 10)
    assert len(la) == len(lb)
    if la:  # an English question shares no term with Arabic news: nothing on either side
        assert len({r for r, _ in la} & {r for r, _ in lb}) / len(la) >= 0.8
    np.testing.assert_allclose([s for _, s in la], [s for _, s in lb], rtol=1e-4)


def test_fused_ranking_and_term_weights_agree(pair: dict[str, Searcher]) -> None:
    for question, _ in KNOWN:
        a, b = pair["local"].rank(question), pair["qdrant"].rank(question)
        assert [c.row for c in a.candidates[:10]] == [c.row for c in b.candidates[:10]]
        assert a.weights.weights.keys() == b.weights.weights.keys()
        for term, w in a.weights.weights.items():
            assert b.weights.weights[term] == pytest.approx(w, rel=1e-6)


def test_both_backends_keep_the_same_lexicon(pair: dict[str, Searcher]) -> None:
    local, qdrant = (pair[k].version for k in ("local", "qdrant"))
    counts = [{k: v.manifest["lexicon"][k] for k in ("count", "embedded")} for v in (local, qdrant)]
    assert counts[0] == counts[1] and qdrant.manifest["lexicon"]["count"] > 100
    a, b = local.lexicon(), qdrant.lexicon()
    assert isinstance(a, Lexicon) and b is not None and len(a) == len(b) == qdrant.manifest["lexicon"]["count"]
    stored = b.read()  # type: ignore[attr-defined]
    assert list(stored.terms) == list(a.terms) and list(stored.words) == list(a.words)
    assert stored.vectors.dtype == np.float16 and float(np.abs(stored.vectors.astype(np.float32) - a.vectors).max()) <= 2e-3
    vecs = pair["local"].embedder.encode_queries(["bank", "flood", "children", "solar", "followers", "Raqqa"])
    for k, floor in ((3, 0.85), (10, 0.8)):
        near_a, near_b = a.nearest(vecs, k, floor), b.nearest(vecs, k, floor)
        assert [[t for t, _ in x] for x in near_a] == [[t for t, _ in x] for x in near_b]
        assert any(near_a) and all(len(x) <= k for x in near_b)
        np.testing.assert_allclose([s for x in near_a for _, s in x], [s for x in near_b for _, s in x], atol=1e-4)
        assert all(s >= floor for x in near_b for _, s in x)
    assert b.nearest(vecs[:0], 3, 0.85) == [] and b.nearest(vecs, 3, 1.01) == [[] for _ in vecs]


@pytest.mark.parametrize("question", ENGLISH)
def test_english_questions_reach_the_same_arabic_terms_and_ranking(pair: dict[str, Searcher], question: str) -> None:
    query = analyse(question)
    translated = {}
    for kind, s in pair.items():
        found = s.translated(query, s.backend.weigh(query))
        assert found is not None, f"{kind}: no corpus term for {question!r}"  # the lexicon is kept and used by both
        translated[kind] = found.terms
    assert translated["local"] == translated["qdrant"]
    a, b = pair["local"].rank(question), pair["qdrant"].rank(question)
    assert [c.row for c in a.candidates[:10]] == [c.row for c in b.candidates[:10]]
    assert a.weights.weights.keys() == b.weights.weights.keys() and set(translated["local"]) <= a.weights.weights.keys()
    for term, w in a.weights.weights.items():
        assert b.weights.weights[term] == pytest.approx(w, rel=1e-6)
    la, lb = (pair[k].rank(question, mode="lexical").candidates for k in ("local", "qdrant"))
    assert la and len(la) == len(lb)  # BM25 now finds the English question's Arabic terms on both sides
    assert len({c.row for c in la[:10]} & {c.row for c in lb[:10]}) / len(la[:10]) >= 0.8


@pytest.mark.parametrize(
    "filters",
    [
        SearchFilters(sources=("الاقتصادية",)),  # a part of the outlet's name, as users type it
        SearchFilters(since=__import__("datetime").datetime(2023, 1, 1)),
        SearchFilters(until=__import__("datetime").datetime(2022, 11, 3)),  # a bare date: that whole day
        SearchFilters(sources=("no such outlet",)),
    ],
)
def test_filters_restrict_both_sides_alike(pair: dict[str, Searcher], filters: SearchFilters) -> None:
    question = "ما أخبار الطاقة والفائدة والفيضانات؟"
    results = {}
    for kind, s in pair.items():
        answer = s.answer(question, k=5, filters=filters, per_article=0)
        results[kind] = [(h.source.article_id, h.quote.text) for h in answer.hits]
        ranking = s.rank(question, filters=filters)
        for c in ranking.candidates:
            article = s.version.article(c.article_row)
            if filters.sources:
                assert any(w in article.source for w in filters.sources)
            if filters.since:
                assert article.date >= filters.since
            if filters.until:
                assert article.date.date() <= filters.until.date()
        if filters.sources == ("no such outlet",):
            assert ranking.candidates == []
    assert results["local"] == results["qdrant"]


@pytest.fixture(params=["local", "qdrant"])
def backend(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Backend:
    monkeypatch.setattr("index.qdrant_build.UPSERT_BATCH", 3)  # many batches: copied points are fetched batch by batch
    return Backend(request.param, tmp_path)


def test_switch_incremental_update_and_pruning(backend: Backend, tmp_path: Path, embedder) -> None:  # noqa: ANN001
    corpus = corpus_of(tmp_path, "cbank-rates.txt", "harbour-flood.txt")
    first = backend.build(corpus, embedder, replace(OPTS, keep_versions=2))
    assert first.switched and backend.current() == first.version and first.embedded_chunks == first.total_chunks
    before = Searcher(backend.open(), embedder)
    lexicon = before.version.manifest["lexicon"]
    assert lexicon["embedded"] == lexicon["count"] > 0  # a first build embeds every word
    words = {first.version: lexicon_words(before.version)}
    live = LiveSearcher(backend.store or LocalStore(backend.index_dir), embedder, check_every=0)
    assert live.get().version.name == first.version
    assert not before.answer("تطبيق لتعليم الأطفال من شركة النور والأمل", k=1).found or all(
        "النور" not in h.source.title for h in before.answer("تطبيق لتعليم الأطفال من شركة النور والأمل").hits
    )
    again = backend.build(corpus, embedder, replace(OPTS, keep_versions=2))
    assert not again.switched and backend.current() == first.version  # nothing changed: no new version

    shutil.copy(TEST_CORPUS / "symbols-company.txt", corpus / "symbols-company.txt")
    second = backend.build(corpus, embedder, replace(OPTS, keep_versions=2))
    assert second.switched and second.version != first.version and backend.current() == second.version
    assert (second.added, second.unchanged, second.removed) == (1, 2, 0)
    new_chunks = second.total_chunks - first.total_chunks
    assert second.embedded_chunks == new_chunks > 0  # only the new article was embedded
    assert backend.open().manifest["second"]["embedded"] == new_chunks  # and given a second-encoder vector; the rest copied
    after = Searcher(backend.open(), embedder)
    words[second.version] = lexicon_words(after.version)
    lexicon = after.version.manifest["lexicon"]  # only the words the new article brought were embedded
    assert 0 < lexicon["embedded"] == len(words[second.version] - words[first.version]) < lexicon["count"]
    assert live.refresh().version.name == second.version  # a running bot follows CURRENT / the alias
    answer = after.answer("تطبيق لتعليم الأطفال من شركة النور والأمل", k=1)
    assert answer.found and "النور" in answer.hits[0].source.title
    assert "الفائدة" in after.answer("بكم رفع البنك المركزي سعر الفائدة؟", k=1).hits[0].quote.text  # kept, not lost
    assert before.answer("فيضانات ميناء الصيادين", k=1).found  # the old version still answers a question in flight

    if backend.store is not None:  # each version keeps its lexicon in a collection of its own
        assert backend.store.collection(first.version or "", "lexicon") in backend.store.version_collections()[first.version or ""]
    (corpus / "harbour-flood.txt").unlink()
    third = backend.build(corpus, embedder, replace(OPTS, keep_versions=2))
    assert third.switched and third.removed == 1 and third.embedded_chunks == 0
    assert backend.versions() == [second.version, third.version]  # pruned to two, the current one kept
    lexicon = backend.open().manifest["lexicon"]
    assert lexicon["embedded"] == len(lexicon_words(backend.open()) - words[second.version])
    if backend.store is not None:  # the pruned version's collections went with it, its lexicon's included
        assert first.version not in backend.store.version_collections()
    assert all("ميناء" not in h.source.title for h in Searcher(backend.open(), embedder).answer("فيضانات ميناء الصيادين").hits)


def test_interrupted_qdrant_build_never_becomes_current(tmp_path: Path, embedder, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    backend = Backend("qdrant", tmp_path)
    store = backend.store
    assert store is not None
    corpus = corpus_of(tmp_path, "cbank-rates.txt")
    first = backend.build(corpus, embedder)
    shutil.copy(TEST_CORPUS / "harbour-flood.txt", corpus / "harbour-flood.txt")

    # A build killed after writing its points, before its manifest: nothing of it is cleaned up by the dying process.
    def killed(*_: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(store, "write_manifest", killed)
    monkeypatch.setattr(store, "drop", lambda version: None)
    with pytest.raises(KeyboardInterrupt):
        backend.build(corpus, embedder)
    monkeypatch.undo()
    assert store.current_name() == first.version
    leftovers = [v for v in store.version_collections() if v != first.version]
    assert leftovers, "the interrupted build left its collections behind"
    assert store.collection(leftovers[0], "lexicon") in store.version_collections()[leftovers[0]]
    with pytest.raises(IndexCorruptError):
        store.switch(leftovers[0])  # no manifest: refused as an alias target
    assert store.current_name() == first.version
    assert Searcher(store.open_current(), embedder).answer("بكم رفع البنك المركزي سعر الفائدة؟").found

    second = backend.build(corpus, embedder)  # the next build sweeps the leftovers, then switches
    assert second.switched and store.current_name() == second.version != leftovers[0]
    assert leftovers[0] not in store.version_collections()


def test_an_update_adds_the_lexicon_a_version_lacks(backend: Backend, tmp_path: Path, embedder) -> None:  # noqa: ANN001
    corpus = corpus_of(tmp_path, "cbank-rates.txt")
    query = analyse("How much did the central bank raise interest rates?")

    def translated() -> tuple[str, ...] | None:
        s = Searcher(backend.open(), embedder)
        found = s.translated(query, s.backend.weigh(query))
        return found.terms if found is not None else None

    first = backend.build(corpus, embedder, BuildOptions(lexicon=False))
    assert first.switched and backend.open().lexicon() is None and translated() is None
    if backend.store is not None:
        assert backend.store.collection(first.version or "", "lexicon") not in backend.store.version_collections()[first.version or ""]
    second = backend.build(corpus, embedder, BuildOptions())  # no article changed, but the version lacks its lexicon
    assert second.switched and second.version != first.version and second.embedded_chunks == 0
    lexicon = backend.open().manifest["lexicon"]
    assert lexicon["count"] == lexicon["embedded"] > 0 and translated()
    assert not backend.build(corpus, embedder, BuildOptions()).switched  # now nothing is missing


def test_a_qdrant_lexicon_short_of_words_costs_a_full_rebuild(tmp_path: Path, embedder) -> None:  # noqa: ANN001
    from qdrant_client import models

    backend = Backend("qdrant", tmp_path)
    store = backend.store
    assert store is not None
    corpus = corpus_of(tmp_path, "cbank-rates.txt")
    first = backend.build(corpus, embedder, BuildOptions())
    store.client.delete(store.collection(first.version or "", "lexicon"), models.PointIdsList(points=[0]), wait=True)
    shutil.copy(TEST_CORPUS / "harbour-flood.txt", corpus / "harbour-flood.txt")
    second = backend.build(corpus, embedder, BuildOptions())
    assert second.switched and "lexicon holds" in (second.full_rebuild_reason or "")
    lexicon = backend.open().manifest["lexicon"]
    assert lexicon["embedded"] == lexicon["count"] > 0  # no word taken from the damaged lexicon


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Every socket connection attempted is recorded; any to a non-loopback address fails the test."""
    attempts: list[Any] = []
    real = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> Any:
        attempts.append(address)
        host = address[0] if isinstance(address, tuple) else str(address)
        if self.family in (socket.AF_INET, socket.AF_INET6) and host not in ("127.0.0.1", "::1", "localhost"):
            raise AssertionError(f"non-loopback connection attempted: {address}")
        return real(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    yield attempts


def test_qdrant_backend_sends_nothing_but_loopback_traffic(tmp_path: Path, embedder, loopback_only: list[Any]) -> None:  # noqa: ANN001
    store = QdrantStore(connect(path=str(tmp_path / "qdrant")), prefix="net")  # local mode on disk, as the CLI uses it
    report = update_qdrant(corpus_of(tmp_path, "cbank-rates.txt"), store, embedder, tmp_path / "lock", OPTS)
    assert report.switched
    assert Searcher(store.open_current(), embedder).answer("بكم رفع البنك المركزي سعر الفائدة؟").found
    inet = [a for a in loopback_only if isinstance(a, tuple)]
    assert inet == []  # local mode opens no network connection at all


def test_qdrant_backend_from_the_command_line(tmp_path: Path, models_dir: Path) -> None:
    """`NEWSQA_BACKEND=qdrant`: build, update, status and ask as a user runs them (local mode on disk, no server)."""
    import json
    import os
    import subprocess
    import sys

    corpus = corpus_of(tmp_path, "cbank-rates.txt")
    (corpus / "broken.jsonl").write_text("{not json\n", encoding="utf-8")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "NEWSQA_HOME": os.environ["NEWSQA_HOME"], "HF_HUB_OFFLINE": "1",
           "NEWSQA_MODELS_DIR": str(models_dir), "NEWSQA_INDEX_DIR": str(tmp_path / "idx"), "NEWSQA_CORPUS_DIR": str(corpus),
           "NEWSQA_BACKEND": "qdrant", "NEWSQA_QDRANT_PREFIX": "cli", "NEWSQA_TERMINAL_BIDI": "off"}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "bot.cli", *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)

    built = run("index", "build", "--no-progress")
    assert built.returncode == 0, built.stderr
    assert "rejected 1 input(s):\n  broken.jsonl: line 1: malformed JSON" in built.stdout and "now at v000001" in built.stdout
    shutil.copy(TEST_CORPUS / "harbour-flood.txt", corpus / "harbour-flood.txt")
    updated = run("index", "update", "--no-progress")
    assert updated.returncode == 0, updated.stderr
    assert "added 1, changed 0, removed 0, unchanged 1" in updated.stdout and "now at v000002" in updated.stdout
    info = json.loads(run("index", "status", "--json").stdout)
    assert info["backend"] == "qdrant" and info["version"] == "v000002" and info["versions"] == ["v000001", "v000002"]
    assert info["counts"]["articles"] == 2 and info["alias"] == "cli_current"
    asked = run("ask", "كم يوما توقفت الملاحة في ميناء الصيادين؟", "--json")
    assert asked.returncode == 0, asked.stderr
    answer = json.loads(asked.stdout)
    assert answer["hits"] and "الملاحة" in answer["hits"][0]["quote"] and answer["hits"][0]["source"] == "جريدة الساحل"
    assert (tmp_path / "idx" / "qdrant").is_dir()  # local mode's folder beside where the local index would be


def test_unreachable_server_and_missing_client_are_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from index.qdrant_store import QdrantUnavailableError

    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(QdrantUnavailableError, match=rf"Qdrant at http://127.0.0.1:{port} cannot be used: .*NEWSQA_QDRANT_URL"):
        connect(f"http://127.0.0.1:{port}", timeout=2)
    monkeypatch.setitem(__import__("sys").modules, "qdrant_client", None)
    with pytest.raises(QdrantUnavailableError, match=r"pip install 'newsqa\[qdrant\]'"):
        connect(path=":memory:")


def test_a_damaged_qdrant_version_costs_a_full_rebuild_not_the_update(tmp_path: Path, embedder) -> None:  # noqa: ANN001
    from qdrant_client import models

    backend = Backend("qdrant", tmp_path)
    store = backend.store
    assert store is not None
    corpus = corpus_of(tmp_path, "cbank-rates.txt", "harbour-flood.txt")
    first = backend.build(corpus, embedder)
    chunks = store.collection(first.version or "", "chunks")
    store.client.delete(chunks, models.PointIdsList(points=[0]), wait=True)  # a point lost from the current version
    shutil.copy(TEST_CORPUS / "symbols-company.txt", corpus / "symbols-company.txt")
    second = backend.build(corpus, embedder)
    assert second.switched and "cannot be reused" in (second.full_rebuild_reason or "")
    assert second.embedded_chunks == second.total_chunks  # nothing copied from the damaged version
    assert Searcher(backend.open(), embedder).answer("بكم رفع البنك المركزي سعر الفائدة؟", k=1).found


def test_both_backends_store_each_chunks_second_encoder_vector(pair: dict[str, Searcher]) -> None:
    local, qdrant = pair["local"].version, pair["qdrant"].version
    rows = list(range(local.n_chunks))
    assert qdrant.n_chunks == len(rows) > 0
    stored = {name: v.second_rows(rows) for name, v in (("local", local), ("qdrant", qdrant))}
    fresh = SecondEncoder().encode([local.chunk_text(r) for r in rows])
    for name, vecs in stored.items():
        assert vecs is not None and vecs.shape == fresh.shape, name
        assert np.max(np.abs(vecs - fresh)) < 2e-3, name  # float16 on both


def test_outlets_summary_agrees(pair: dict[str, Searcher]) -> None:
    """/sources: Qdrant summarises outlets with facets and ordered scrolls; the local store from its columns."""
    from bot.chatfilters import outlets

    local, qdrant = outlets(pair["local"].version), outlets(pair["qdrant"].version)
    assert local == qdrant and len(local) == 5
    assert hasattr(pair["qdrant"].version, "outlet_summary")
    q, loc = pair["qdrant"].version, pair["local"].version
    assert q.article_sources == loc.article_sources and (q.article_dates == loc.article_dates).all()
