"""What each stage of the answer pipeline adds, on both halves of the development sets (fused).

    python bench/ablation.py [--data DIR ...] [--limit N]

Rows switch the stages on one at a time: fusion order with one quote per article (the old
evaluation), + the fitted passage model, + diversification that lets one article fill the places
when no other competes, + the fitted answer/no-answer threshold (the product as shipped). Row 5
ranks by fusion alone (the passage model then only feeds the decision): within noise on
ranking, but the decision's margin on off-topic questions is thinner, so ranking stays fitted.
Row 6 turns the cross-lingual terms off (retrieval/translate.py), scored with the weights fitted without them.
Row 7 turns language centring off (retrieval/centring.py), scored with the shipped weights.
Columns: MRR@10 / ansR@5 / quoteR@3 per dataset, language and half, then in brackets what quoteR@3 is made of:
the share of questions answered (not declined) and quoteR@3 among those (a declined question counts as a miss).
A second table pools each half over every set and language (each question once), where a cell of 16-49 questions
cannot resolve a difference under .02.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import header, quiet  # noqa: E402

ROWS = [
    ("fusion order, 1 quote per article, no gate", {"rerank": False, "per_article": 1, "threshold": 0.0}),
    ("+ fitted passage model", {"rerank": True, "per_article": 1, "threshold": 0.0}),
    ("+ diversification that never hides the answer (2 per article, fill)", {"rerank": True, "per_article": 2, "threshold": 0.0}),
    ("+ fitted no-answer threshold (as shipped)", {}),
    ("as shipped, but ranked by fusion alone (passage model only for the decision)", {"rerank": False}),
    ("as shipped, without cross-lingual terms (English ranked by meaning alone; its own fitted weights)", {"translate": False}),
    ("as shipped, without language centring (English questions' vectors as encoded; the same weights)", {"centre": 0.0}),
]


def main() -> int:
    from functools import partial
    from index.embedder import encode_questions
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, action="append")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--rows", help="only these rows, by number from 1 (e.g. 4,5)")
    args = parser.parse_args()
    quiet()
    header("ablation of the answer pipeline", args.smoke)
    from bot.evaluate import prepare
    from bot.settings import Settings
    from retrieval.evaluate import evaluate, query_vectors, select
    from retrieval.scoring import shipped_params

    settings = Settings()
    default = [ROOT.parent / "shared" / "data" / n for n in ("xquad-ar", "wikinews-ar")]
    if args.smoke and not args.data:
        default = [ROOT / "tests" / "data" / "xquad-ar-slice"]  # shipped with the repository
    datas = args.data or [d for d in default if d.is_dir()]
    if not datas:
        print("no development data: give --data DIR")
        return 2
    limit = 5 if args.smoke and not args.limit else args.limit
    rows = [ROWS[int(n) - 1] for n in args.rows.split(",")] if args.rows else ROWS
    columns: list[str] = []
    table: dict[str, list[str]] = {label: [] for label, _ in rows}
    pooled: dict[tuple[str, str], list[float]] = {}  # (row, half) -> questions, sums of MRR@10, ansR@5, quoteR@3
    for data in datas:
        for qfile in sorted(data.glob("questions*.jsonl")):
            dataset, searcher = prepare(settings, data, qfile)
            index_dir = searcher.version.path.parent.parent
            searcher.warm_units(index_dir / "units.npz")
            base, base_params = searcher.config, searcher.params
            backend = searcher.version.manifest.get("model", {}).get("backend")
            langs = sorted({q.lang for q in dataset.questions if q.lang}) or [None]
            for lang in langs:
                for half in "AB":
                    qs = select(dataset.questions, half, limit, lang)
                    if not qs:
                        continue
                    qv = query_vectors(qs, partial(encode_questions, searcher.embedder), index_dir, getattr(searcher.embedder, "cache_key", searcher.embedder.name))
                    tag = "en" if (lang == "en" or qfile.name.endswith(".en.jsonl")) else "ar"
                    columns.append(f"{data.name} {tag} {half}")
                    for label, changes in rows:
                        searcher.config = replace(base, **changes)
                        searcher.params = base_params if searcher.config.translate else shipped_params(backend, False)
                        m = evaluate(searcher, qs, ["fused"], qv, dataset.passage_level)["fused"]
                        shown = "–" if m["quoteR@3|answered"] is None else f"{m['quoteR@3|answered']:.3f}"
                        table[label].append(f"{m['MRR@10']:.3f} / {m['ansR@5']:.3f} / {m['quoteR@3']:.3f} ({m['answered']:.3f}, {shown})")
                        tally = pooled.setdefault((label, half), [0.0, 0.0, 0.0, 0.0])
                        for i, v in enumerate((1.0, m["MRR@10"], m["ansR@5"], m["quoteR@3"])):
                            tally[i] += v * len(qs)
                    searcher.config, searcher.params = base, base_params
    print("| change | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for label, cells in table.items():
        print(f"| {label} | " + " | ".join(cells) + " |")
    print("\npooled over every set and language (each question counts once; MRR@10 / ansR@5 / quoteR@3):")
    print("| change | A | B |\n|---|---|---|")
    for label, _ in rows:
        cells = []
        for half in "AB":
            n, mrr, ans, quote = pooled.get((label, half), [0.0] * 4)
            cells.append(f"{mrr / n:.4f} / {ans / n:.4f} / {quote / n:.4f} ({n:.0f} questions)" if n else "–")
        print(f"| {label} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
