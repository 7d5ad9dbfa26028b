"""Cost of trusting an index: opening a version with and without its checks, and `newsqa index verify`.

The versions are SYNTHETIC (said in the output): random unit vectors (float32, dim 384), four float16
sentence vectors per chunk, a flat FAISS index, bm25s over random words and a meta.sqlite of 4-chunk
articles of random words — the same files, sizes and layout a real build writes, without embedding.
Timings are medians with a warm page cache (the files were just written); a cold cache adds the disk's
read time to the checksum figures only (plain open maps the files and reads little).

    python bench/verify_cost.py                  # 10^4 and 10^5 chunks
    python bench/verify_cost.py --sizes 1000 100000
    python bench/verify_cost.py --smoke          # 10^3 chunks, 3 repetitions
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _common import header, quiet  # noqa: E402

DIM = 384
CHUNKS_PER_ARTICLE = 4
SENTENCES_PER_CHUNK = 4
WORDS_PER_CHUNK = 60
WORDS = [f"كلمة{i}" for i in range(5000)]


def unit_rows(rng: np.random.Generator, n: int, dtype: type) -> np.ndarray:
    v = rng.standard_normal((n, DIM), dtype=np.float32)
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(dtype)


def write_version(index_dir: Path, n: int, seed: int = 0) -> Path:
    """A complete synthetic version of n chunks, checksummed and sealed as a build does."""
    from bm25s.tokenization import Tokenized

    from index.dense import build_faiss, write_faiss
    from index.integrity import checksum_files, fsync_tree, seal_manifest
    from index.store import FORMAT_VERSION, SCHEMA, import_bm25s, write_current

    rng = np.random.default_rng(seed)
    vdir = index_dir / "versions" / "v000001"
    vdir.mkdir(parents=True)
    vectors = np.lib.format.open_memmap(vdir / "vectors.npy", mode="w+", dtype=np.float32, shape=(n, DIM))
    for start in range(0, n, 50_000):
        vectors[start : start + 50_000] = unit_rows(rng, min(50_000, n - start), np.float32)
    vectors.flush()
    write_faiss(build_faiss(np.asarray(vectors), "flat"), vdir / "dense.faiss")
    del vectors
    n_sent = n * SENTENCES_PER_CHUNK
    sentences = np.lib.format.open_memmap(vdir / "sentences.npy", mode="w+", dtype=np.float16, shape=(n_sent, DIM))
    for start in range(0, n_sent, 50_000):
        sentences[start : start + 50_000] = unit_rows(rng, min(50_000, n_sent - start), np.float16)
    sentences.flush()
    del sentences
    np.save(vdir / "sentence_offsets.npy", np.arange(n + 1, dtype=np.int64) * SENTENCES_PER_CHUNK)
    np.save(vdir / "chunk_article.npy", (np.arange(n) // CHUNKS_PER_ARTICLE).astype(np.int32))

    words = rng.integers(0, len(WORDS), size=(n, WORDS_PER_CHUNK))
    retriever = import_bm25s().BM25()
    retriever.index(Tokenized(ids=words.tolist(), vocab={w: i for i, w in enumerate(WORDS)}), show_progress=False)
    retriever.save(str(vdir / "lexical"), show_progress=False)
    texts = [" ".join(WORDS[i] for i in row) for row in words.tolist()]
    n_articles = (n + CHUNKS_PER_ARTICLE - 1) // CHUNKS_PER_ARTICLE
    db = sqlite3.connect(vdir / "meta.sqlite")
    db.executescript(SCHEMA)
    db.executemany(
        "INSERT INTO articles VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        (
            (a, f"syn-{a}", f"مقال {a}", "synthetic", "2020-01-01 00:00:00", None, f"syn/{a}.txt", "utf-8", f"{a:064x}",
             "\n\n".join(texts[a * CHUNKS_PER_ARTICLE : (a + 1) * CHUNKS_PER_ARTICLE]), "[]")
            for a in range(n_articles)
        ),
    )
    db.executemany(
        'INSERT INTO chunks (row, id, article_row, ord, section, start, "end") VALUES (?,?,?,?,?,?,?)',  # no evidence
        ((r, f"syn-{r // CHUNKS_PER_ARTICLE}:{r % CHUNKS_PER_ARTICLE}", r // CHUNKS_PER_ARTICLE, r % CHUNKS_PER_ARTICLE,
          None, 0, len(texts[r])) for r in range(n)),
    )
    db.commit()
    db.close()
    manifest = {
        "format": FORMAT_VERSION, "version": "v000001", "created": datetime.now().isoformat(timespec="seconds"),
        "model": {"name": "synthetic", "dim": DIM}, "faiss": {"kind": "flat"},
        "sentences": {"count": n_sent}, "counts": {"articles": n_articles, "chunks": n},
    }
    fsync_tree(vdir)
    manifest["files"] = checksum_files(vdir)
    (vdir / "manifest.json").write_text(json.dumps(seal_manifest(manifest)), encoding="utf-8")
    write_current(index_dir, "v000001")
    return vdir


def median_seconds(fn: Callable[[], object], reps: int) -> float:
    times = []
    for _ in range(reps):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--smoke", action="store_true", help="10^3 chunks, 3 repetitions")
    args = parser.parse_args()
    if args.smoke:
        args.sizes, args.reps = [1000], 3
    quiet()
    header("index verification cost", args.smoke)
    print("SYNTHETIC versions (random unit vectors and words, real file layout); warm page cache; medians of "
          f"{args.reps} runs")
    from index.integrity import check_files, read_manifest
    from index.store import IndexVersion

    def opened(vdir: Path, verify: str) -> Callable[[], None]:
        def run() -> None:
            version = IndexVersion(vdir, verify)
            version.close()
        return run

    def verified(vdir: Path) -> Callable[[], None]:
        def run() -> None:
            check_files(vdir, read_manifest(vdir), hashes=True)
        return run

    for n in args.sizes:
        root = Path(tempfile.mkdtemp(prefix="newsqa-verify-"))
        try:
            vdir = write_version(root / "index", n)
            size = sum(f.stat().st_size for f in vdir.rglob("*") if f.is_file()) / 2**20
            plain = median_seconds(opened(vdir, "none"), args.reps)
            cheap = median_seconds(opened(vdir, "cheap"), args.reps)
            full = median_seconds(opened(vdir, "full"), args.reps)
            verify = median_seconds(verified(vdir), args.reps)
            print(f"{n} chunks ({size:.1f} MiB on disk):")
            print(f"  plain open                     {plain * 1000:9.1f} ms")
            print(f"  open + invariants              {cheap * 1000:9.1f} ms  ratio to plain open {cheap / plain:.2f}")
            print(f"  open + invariants + checksums  {full * 1000:9.1f} ms  ratio to plain open {full / plain:.2f}")
            print(f"  index verify (checksums)       {verify * 1000:9.1f} ms  ratio to plain open {verify / plain:.2f}"
                  f"  ({size / verify:.0f} MiB/s)")
        finally:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
