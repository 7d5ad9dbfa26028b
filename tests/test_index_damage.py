"""Every file of a built version, damaged every way an operator might meet, on a copy of the index.

For each (file, damage): `index status` and `index verify` report it (non-zero exit, naming the file);
`ask` gives the one-line "damaged" error, never a traceback, a warning or a silently different answer;
the next `index update` rebuilds and answers exactly as the clean build of the same corpus does.
A fake embedder keeps the builds fast: these tests make no retrieval-quality claim, and the no-answer
gate is opened (threshold 0) so every question has hits to compare.
"""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bench.corpusgen import write_corpus
from bot.cli import main
from bot.settings import Settings
from index.store import CURRENT, VERSIONS
from retrieval.search import SearchConfig
from tests.fakes import HashEmbedder
from tests.reindex_helpers import QUESTIONS, answers

VERSION_FILES = (
    "chunk_article.npy",
    "dense.faiss",
    "lexical/data.csc.index.npy",
    "lexical/indices.csc.index.npy",
    "lexical/indptr.csc.index.npy",
    "lexical/params.index.json",
    "lexical/vocab.index.json",
    "lexicon.npz",
    "manifest.json",
    "meta.sqlite",
    "second.npy",
    "sentence_offsets.npy",
    "sentences.npy",
    "vectors.npy",
)
FILES = (*VERSION_FILES, CURRENT)


def _delete(p: Path) -> None:
    p.unlink()


def _empty(p: Path) -> None:
    p.write_bytes(b"")


def _truncate_half(p: Path) -> None:
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])


def _flip(data: bytes, start: int, n: int) -> bytes:
    return data[:start] + bytes(b ^ 0xFF for b in data[start : start + n]) + data[start + n :]


def _garble_middle(p: Path) -> None:
    data = p.read_bytes()
    n = max(1, min(64, len(data) // 8))
    p.write_bytes(_flip(data, len(data) // 2 - n // 2, n))


def _flip_last_bytes(p: Path) -> None:
    data = p.read_bytes()
    n = min(8, len(data))
    p.write_bytes(_flip(data, len(data) - n, n))


DAMAGE: dict[str, Callable[[Path], None]] = {
    "delete": _delete, "empty": _empty, "truncate-half": _truncate_half,
    "garble-middle": _garble_middle, "flip-last-bytes": _flip_last_bytes,
}


@pytest.fixture(scope="module")
def fake_model() -> Iterator[None]:
    """`newsqa` commands embed with the hash embedder and answer with the no-answer gate open."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Settings, "embedder", lambda self: HashEmbedder())
        mp.setattr(Settings, "search_config", lambda self: SearchConfig(threshold=0.0))
        yield


def run(*args: str) -> tuple[int, str, str, list[warnings.WarningMessage]]:
    """main(args) in this process: exit status, stdout, stderr and the warnings it raised."""
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        warnings.simplefilter("always")
        rc = main(list(args))
    return rc, out.getvalue(), err.getvalue(), list(caught)


def ask_all(index_dir: Path) -> list[tuple[int, str, str]]:
    got = []
    for q in QUESTIONS:
        rc, out, err, caught = run("ask", q, "--json", "--index-dir", str(index_dir))
        assert not [w for w in caught if issubclass(w.category, RuntimeWarning)], [str(w.message) for w in caught]
        got.append((rc, out, err))
    return got


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory, fake_model: None) -> tuple[Path, Path, list, list]:
    """A corpus, a clean build of it through `newsqa index update`, its `ask` outputs and its answers."""
    root = tmp_path_factory.mktemp("damage")
    corpus, index_dir = root / "corpus", root / "index"
    write_corpus(corpus, 12)
    rc, out, err, _ = run("index", "update", "--corpus", str(corpus), "--index-dir", str(index_dir), "--no-progress")
    assert rc == 0, err
    asked = ask_all(index_dir)
    assert all(rc == 0 and json.loads(out)["hits"] for rc, out, _ in asked)  # the comparison below means something
    return corpus, index_dir, asked, answers(index_dir)


def test_every_file_of_a_version_is_covered(clean) -> None:
    _, index_dir, _, _ = clean
    version = index_dir / VERSIONS / "v000001"
    assert sorted(f.relative_to(version).as_posix() for f in version.rglob("*") if f.is_file()) == sorted(VERSION_FILES)


def _one_line(err: str) -> str:
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("damage", DAMAGE)
@pytest.mark.parametrize("file", FILES)
def test_damage_is_reported_never_served_and_never_copied_forward(clean, tmp_path: Path, file: str, damage: str) -> None:
    corpus, built, clean_asked, clean_answers = clean
    index_dir = tmp_path / "index"
    shutil.copytree(built, index_dir)
    target = index_dir / file if file == CURRENT else index_dir / VERSIONS / "v000001" / file
    DAMAGE[damage](target)
    named = file

    rc, out, err, _ = run("index", "status", "--index-dir", str(index_dir))
    line = _one_line(err)
    assert rc == 1 and "is damaged (" in line and named in line, (out, err)
    assert f"integrity: DAMAGED: {named}" in out

    rc, out, err, _ = run("index", "verify", "--index-dir", str(index_dir))
    assert rc == 1 and "Traceback" not in err
    assert f"DAMAGED: {named}" in out or f"is damaged ({named}" in err, (out, err)

    for (rc, out, err), (_, clean_out, _) in zip(ask_all(index_dir), clean_asked):
        if rc == 0:  # only an identical answer may be given
            assert out == clean_out
        else:
            line = _one_line(err)
            assert rc == 1 and line.startswith("newsqa: ") and "is damaged (" in line and named in line, err

    rc, out, err, _ = run("index", "update", "--corpus", str(corpus), "--index-dir", str(index_dir), "--no-progress")
    assert rc == 0, err
    assert "now at v000002" in out and "full rebuild: " in out and "damaged" in out, out
    assert answers(index_dir) == clean_answers
    rc, out, err, _ = run("index", "status", "--index-dir", str(index_dir))
    assert rc == 0 and "integrity: verified" in out, (out, err)
