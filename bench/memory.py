"""Peak resident memory (RSS) of a serving process, stage by stage, per embedding backend.

Each backend is measured in a fresh child process that does what the bot does at start and
while serving: import, load the embedding model, open the current index version (FAISS
memory-mapped, bm25s memory-mapped, SQLite per hit), then answer questions. Baseline in the same
run: the same process with only the model loaded (`model only`), so `peak / model only` is
what the index and serving add. Use --index-dir for a big index (e.g. one kept by
`bench/scale.py --keep`).

    python bench/memory.py                           # a real index of 60 XQuAD-ar passages + sample
    python bench/memory.py --index-dir bench/out/scale/n1000000 --backends torch onnx-int8
    python bench/memory.py --smoke
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, Timer, embedder, header, make_corpus, peak_rss_mb, quiet, rss_mb, xquad  # noqa: E402


def child(index_dir: Path, backend: str, questions: list[str]) -> dict:
    """The measured serving process (run with --child)."""
    quiet()
    out = {"start": rss_mb()}
    import faiss  # noqa: F401
    import torch  # noqa: F401

    from index.store import open_current
    from retrieval.search import Searcher

    out["imports"] = rss_mb()
    from index.dense import set_search_threads

    set_search_threads(1)  # as serving does (NEWSQA_FAISS_THREADS)
    emb = embedder(backend)
    out["model only"] = rss_mb()
    t = time.perf_counter()
    searcher = Searcher(open_current(index_dir), emb)
    out["open_s"] = time.perf_counter() - t
    out["index opened"] = rss_mb()
    for q in questions:
        searcher.answer(q)
    out["after questions"] = rss_mb()
    out["peak"] = peak_rss_mb()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index-dir", type=Path)
    ap.add_argument("--passages", type=int, default=60)
    ap.add_argument("--questions", type=int, default=100)
    ap.add_argument("--backends", nargs="+", default=["torch", "onnx-int8"])
    ap.add_argument("--smoke", action="store_true", help="test articles + 4 passages (or --index-dir), 3 questions, torch only")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        questions = json.loads(Path(args.child[1]).read_text(encoding="utf-8"))
        print(json.dumps(child(Path(args.child[0]), args.backends[0], questions)))
        return 0
    quiet()
    if args.smoke:
        args.passages, args.questions, args.backends = 4, 3, ["torch"]
    header("serving memory (RSS) by stage and backend", args.smoke)
    from _common import models_dir

    from index.embedder import DEFAULT_MODEL, local_model_dir
    from index.onnx_backend import FP32_FILE, onnx_dir_for
    from index.store import open_current

    passages, all_questions = xquad()
    with tempfile.TemporaryDirectory(prefix="newsqa-memory-") as tmp:
        index_dir = args.index_dir
        kept = None
        if index_dir is None:
            from index.build import BuildOptions, update_index

            index_dir = Path(tmp) / "index"
            make_corpus(Path(tmp) / "corpus", args.passages, sample=not args.smoke)
            with Timer() as t:
                update_index(Path(tmp) / "corpus", index_dir, embedder(), BuildOptions())
            print(f"built a real index in {t.seconds:.0f}s")
            kept = {p["id"] for p in passages[: args.passages]}
        version = open_current(index_dir)
        print(f"index {version.name}: {version.n_chunks:,} chunks, FAISS {version.manifest.get('faiss', {}).get('kind')}, "
              f"{sum(f.stat().st_size for f in version.path.rglob('*') if f.is_file()) / 2**20:.0f} MB on disk")
        questions = [q["question"] for q in all_questions if kept is None or q["passage_id"] in kept][: args.questions]
        qfile = Path(tmp) / "questions.json"
        qfile.write_text(json.dumps(questions, ensure_ascii=False), encoding="utf-8")
        print("backend     start  imports  model-only  index-open  after-questions  peak   peak/model-only  open s")
        for backend in args.backends:
            if backend.startswith("onnx") and not (onnx_dir_for(local_model_dir(DEFAULT_MODEL, models_dir())) / FP32_FILE).is_file():
                print(f"{backend:10s} SKIPPED: no ONNX export (bench/onnx_speed.py --export)")
                continue
            proc = subprocess.run([sys.executable, __file__, "--child", str(index_dir), str(qfile), "--backends", backend],
                                  capture_output=True, text=True, cwd=ROOT)
            if proc.returncode:
                print(proc.stderr[-2000:])
                return 1
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            print(f"{backend:10s} {r['start']:5.0f}  {r['imports']:7.0f}  {r['model only']:10.0f}  {r['index opened']:10.0f}"
                  f"  {r['after questions']:15.0f}  {r['peak']:5.0f}  {r['peak'] / r['model only']:15.2f}  {r['open_s']:6.2f}   (MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
