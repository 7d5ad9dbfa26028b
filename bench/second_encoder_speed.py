"""The second encoder's tokenizer: sentencepiece (as shipped) against the package's own pure-Python reader, same run.

Every process that builds or answers loads the second encoder (index/second_encoder.py). This script loads it both
ways and encodes the same chunks and questions, so the figures compare like with like: seconds to load, ms per
news chunk and per question, and whether both give the same token ids and the same vectors.

Texts: the chunks of N generated news-length articles (bench/corpusgen.py) and the development sets' questions where
../shared is present, else the bundled and test corpora's paragraphs as questions.

    python bench/second_encoder_speed.py                 # 200 articles
    python bench/second_encoder_speed.py --smoke         # 6 articles
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SAMPLE_CORPUS, TEST_CORPUS, Timer, header, read_jsonl, shared_dir  # noqa: E402


def questions(limit: int) -> list[str]:
    """The development sets' questions, else short lines of the shipped corpora standing in for them."""
    data = shared_dir() / "data"
    files = [data / "wikinews-ar" / "questions.jsonl", data / "xquad-ar" / "questions.jsonl", data / "xquad-ar" / "questions.en.jsonl"]
    found = [row["question"] for f in files if f.is_file() for row in read_jsonl(f)]
    if not found:
        for folder in (SAMPLE_CORPUS, TEST_CORPUS):
            for path in sorted(folder.glob("*.txt")):
                found += [line for line in path.read_text(encoding="utf-8").splitlines() if 10 < len(line) < 120]
    return found[:limit]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--articles", type=int, default=200)
    ap.add_argument("--questions", type=int, default=2000)
    ap.add_argument("--smoke", action="store_true", help="6 articles, 40 questions")
    args = ap.parse_args()
    if args.smoke:
        args.articles, args.questions = 6, 40
    header("second encoder: its tokenizer read by sentencepiece vs the package's pure-Python reader", args.smoke)
    import numpy as np
    from corpusgen import news_sentences, write_news_corpus

    from index import second_encoder
    from index.articles import load_corpus
    from index.build import BuildOptions
    from index.chunking import chunk_article

    opts = BuildOptions()
    with tempfile.TemporaryDirectory(prefix="newsqa-second-encoder-bench-") as tmp:
        write_news_corpus(Path(tmp), args.articles, news_sentences([]))
        articles = load_corpus(Path(tmp), opts.max_article_bytes).articles
    chunks = [c.embed_text for a in articles for c in chunk_article(a, opts.max_chars, opts.min_chars)]
    asked = questions(args.questions)
    fast = second_encoder.piece_tokenizer
    if fast() is None:
        print("sentencepiece is not installed: nothing to compare (the package's own reader is in use)")
        return 0
    second_encoder.SecondEncoder()._ready()  # the weights' file read once, so neither way is timed reading it from disk
    figures: dict[str, tuple[float, float, float]] = {}
    vectors: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    ids: dict[str, list[list[int]]] = {}
    try:
        for name, make in (("pure-Python", lambda: None), ("sentencepiece", fast)):
            second_encoder.piece_tokenizer = make  # type: ignore[assignment]
            encoder = second_encoder.SecondEncoder()
            with Timer() as load:
                model = encoder._ready()
            with Timer() as on_chunks:
                v_chunks = encoder.encode(chunks)
            with Timer() as on_questions:
                v_questions = np.vstack([encoder.encode([q]) for q in asked])
            ids[name] = [model._tokenizer.encode(t, out_type=int, add_bos=True, add_eos=True) for t in chunks + asked]
            figures[name] = (load.seconds, on_chunks.seconds, on_questions.seconds)
            vectors[name] = (v_chunks, v_questions)
    finally:
        second_encoder.piece_tokenizer = fast  # type: ignore[assignment]
    print(f"{len(chunks)} chunks of {len(articles)} news-length articles, {len(asked)} questions")
    for name, (load_s, chunk_s, question_s) in figures.items():
        print(f"{name:<14}: load {load_s:6.2f} s   chunks {1000 * chunk_s / len(chunks):6.2f} ms each   "
              f"questions {1000 * question_s / len(asked):6.2f} ms each")
    (lp, cp, qp), (ls, cs, qs) = figures["pure-Python"], figures["sentencepiece"]
    print(f"ratio pure-Python / sentencepiece: load {lp / ls:.2f}x, chunks {cp / cs:.2f}x, questions {qp / qs:.2f}x")
    same_ids = sum(a == b for a, b in zip(ids["pure-Python"], ids["sentencepiece"], strict=True))
    print(f"same token ids: {same_ids} of {len(chunks) + len(asked)} texts")
    same = all(np.array_equal(a, b) for a, b in zip(vectors["pure-Python"], vectors["sentencepiece"], strict=True))
    print(f"same vectors: {same}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
