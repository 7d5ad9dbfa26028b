"""What the cross-lingual terms cost: the lexicon at build time, and an English question at answer time.

    python bench/cross_lingual.py [--data DIR] [--questions N]

Build: the dataset's index is built twice in one run, with and without the lexicon (NEWSQA_LEXICON), and
the lexicon's own seconds, words and bytes are printed with the build time of each. Answer: the same English
questions answered with and without translation (each with its own fitted weights), alternating, so both
see the same machine; p50/p95 of the whole answer and of the translation step alone.
Default data: XQuAD-ar (the shared copy when present, else the 20-passage slice in tests/data).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import XQUAD_SLICE, header, percentile, quiet, xquad_dir  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, help="a dataset folder with passages.jsonl and questions.en.jsonl")
    parser.add_argument("--questions", type=int, default=200, help="English questions answered each way")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    quiet()
    header("cross-lingual terms: build and answer cost", args.smoke)
    from bot.settings import Settings
    from index.build import update_index
    from index.store import open_current
    from retrieval.evaluate import load_dataset
    from retrieval.query import analyse
    from retrieval.scoring import shipped_params
    from retrieval.search import Searcher

    data = args.data or (XQUAD_SLICE if args.smoke else xquad_dir())
    n_questions = 10 if args.smoke else args.questions
    settings = Settings()
    embedder = settings.embedder()
    dataset = load_dataset(data, data / "questions.en.jsonl")
    questions = [q.question for q in dataset.questions][:n_questions]
    embedder.encode_queries(["warm up"])  # the model loads outside every timing
    with tempfile.TemporaryDirectory() as tmp:
        builds = {}
        for name, on in (("without lexicon", False), ("with lexicon", True)):
            opts = replace(settings.build_options(), lexicon=on)
            t = time.perf_counter()
            report = update_index(data, Path(tmp) / name, embedder, opts, corpus=dataset.corpus)
            builds[name] = (time.perf_counter() - t, report.total_chunks)
        version = open_current(Path(tmp) / "with lexicon")
        lex = version.manifest["lexicon"]
        size = (version.path / "lexicon.npz").stat().st_size
        base_s, chunks = builds["without lexicon"]
        with_s, _ = builds["with lexicon"]
        print(f"corpus: {data.name}, {chunks} chunks")
        print(f"build without lexicon : {base_s:7.1f} s")
        print(f"build with lexicon    : {with_s:7.1f} s  (x{with_s / base_s:.2f})")
        print(f"lexicon: {lex['count']} words embedded in {lex['seconds']:.1f} s, {size / 1e6:.1f} MB on disk "
              f"({lex['seconds'] / with_s:.2f} of the build)")

        config = settings.search_config()
        on = Searcher(version, embedder, replace(config, translate=True))
        off = Searcher(version, embedder, replace(config, translate=False), shipped_params(version.manifest["model"].get("backend"), False))
        total: dict[str, list[float]] = {"with": [], "without": []}
        translate_ms: list[float] = []
        for q in questions:
            for name, searcher in (("with", on), ("without", off)):
                t = time.perf_counter()
                searcher.answer(q, k=3)
                total[name].append((time.perf_counter() - t) * 1000)
            query = analyse(q)
            w = on.backend.weigh(query)
            t = time.perf_counter()
            on.translated(query, w)
            translate_ms.append((time.perf_counter() - t) * 1000)
    print(f"English questions answered each way: {len(questions)}")
    for name in ("without", "with"):
        print(f"answer {name:7s} translation: p50 {percentile(total[name], 50):7.1f} ms  p95 {percentile(total[name], 95):7.1f} ms")
    print(f"translation step alone: p50 {percentile(translate_ms, 50):.1f} ms  p95 {percentile(translate_ms, 95):.1f} ms")
    print(f"answer p50 with / without: {percentile(total['with'], 50) / percentile(total['without'], 50):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
