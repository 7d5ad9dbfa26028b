"""Fit the answer pipeline's scoring on half A of the development sets and write retrieval/params.json.

Three logistic models over documented features (retrieval/scoring.py, retrieval/quote.py):
  passage  — does this candidate chunk hold the answer?          (ranks candidates)
  decision — does the corpus answer the question at all?          (answer / no answer)
  quote    — does this run of sentences hold the answer?          (picks what to quote)
Unanswerable questions for the decision are the same questions with their gold passage removed
(a filter), as an operator's corpus often lacks the article a reader asks about.

    python bench/fit_scoring.py [--data DIR ...] [--recall 0.97] [--out retrieval/params.json]
    python bench/fit_scoring.py --smoke --data tests/data/xquad-ar-slice --out params-smoke.json

Only half A is used for fitting; half B figures are printed for the report, never used to choose.
"""

from __future__ import annotations

import argparse
import json
import os
import math
import sys
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import quiet  # noqa: E402

QUOTE_CANDIDATES = 6  # paragraphs of the best candidates whose sentence runs feed the quote model
DEFAULT_RECALL = 0.97  # the decision's threshold: the highest that still answers this share of answerable questions (half A)
OFF_TOPIC_PER_SET = 150  # questions of each file asked of another dataset's corpus, as off-topic examples


@dataclass
class Rows:
    """Feature rows and labels of one model, with the question each row came from."""

    x: list[np.ndarray] = field(default_factory=list)
    y: list[int] = field(default_factory=list)
    group: list[str] = field(default_factory=list)

    def add(self, x: np.ndarray, y: int, group: str) -> None:
        self.x.append(np.asarray(x, dtype=np.float64))
        self.y.append(int(y))
        self.group.append(group)

    def subset(self, mask: np.ndarray) -> Rows:
        """The rows where mask is true."""
        out = Rows()
        for x, y, g, keep in zip(self.x, self.y, self.group, mask):
            if keep:
                out.add(x, y, g)
        return out

    def extend(self, other: Rows) -> None:
        self.x += other.x
        self.y += other.y
        self.group += other.group

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return np.vstack(self.x) if self.x else np.zeros((0, 0)), np.array(self.y)


def dataset_questions(data: Path) -> list[Path]:
    """Every questions file of a dataset folder (Arabic and, where present, English)."""
    return sorted(p for p in data.glob("questions*.jsonl"))


def collect(searcher, questions, qvecs, decision: bool = False, off_topic: bool = False):  # noqa: ANN001, ANN201
    """Passage and quote rows for each question, or (decision=True) its decision rows; labels from the gold passage and answers.

    The decision reads the passage model's ranking and log-odds, so its rows are collected after that model is fitted.
    """
    from retrieval.evaluate import contains_answer
    from retrieval.quote import unit_windows, window_features
    from retrieval.types import SearchFilters

    passage, decisions, quote = Rows(), Rows(), Rows()
    v = searcher.version
    for q, qvec in zip(questions, qvecs):
        r = searcher.rank(q.question, "fused", qvec=qvec)
        scored = [c for c in r.candidates if c.prob is not None]
        if not scored:
            continue
        ids = {c.article_row: v.article(c.article_row).id for c in scored}
        if decision:
            decisions.add(searcher.decision_row(r, scored[0]), int(not off_topic), q.id)
            if q.passage_id and not off_topic:
                r0 = searcher.rank(q.question, "fused", SearchFilters(exclude_articles=(q.passage_id,)), qvec=qvec)
                s0 = [c for c in r0.candidates if c.prob is not None]
                if s0:
                    decisions.add(searcher.decision_row(r0, s0[0]), 0, q.id)
            continue
        for c in scored:
            label = ids[c.article_row] == q.passage_id and contains_answer(v.chunk_text(c.row), q.answers)
            passage.add(r.features[c.row], label, q.id)
        seen: set[tuple[int, int]] = set()
        by_fused = sorted(scored, key=lambda c: -c.fused)[:QUOTE_CANDIDATES]
        for c in by_fused:
            article = v.article(c.article_row)
            para, chunk_span = searcher.paragraph(c, article, qvec)
            if (c.article_row, para.start) in seen or not para.units:
                continue
            seen.add((c.article_row, para.start))
            windows = unit_windows(para.units)
            x = window_features(article.body, para, windows, r.query, r.weights, chunk_span)
            if article.id != q.passage_id:
                continue
            labels = [contains_answer(article.body[para.units[i][0] : para.units[j][1]], q.answers) for i, j in windows]
            if not any(labels):
                continue  # the quote model learns which run of an answering paragraph to quote
            for row, label in zip(x, labels):
                quote.add(row, label, q.id)
    return passage, decisions, quote


def fit(rows: Rows, names: list[str], c: float = 1.0) -> dict:
    """Logistic regression on standardised features, folded back to weights on the raw features."""
    from sklearn.linear_model import LogisticRegression

    x, y = rows.arrays()
    mu, sd = x.mean(axis=0), x.std(axis=0)
    sd[sd < 1e-9] = 1.0
    model = LogisticRegression(C=c, max_iter=2000)
    model.fit((x - mu) / sd, y)
    w = model.coef_[0] / sd
    b = float(model.intercept_[0] - np.sum(model.coef_[0] * mu / sd))
    return {"features": names, "weights": {n: round(float(v), 6) for n, v in zip(names, w)}, "bias": round(b, 6)}


def passage_free_decision() -> dict:
    """Placeholder decision models (all weights 0) while the passage model is being fitted."""
    from retrieval.scoring import DECISION_FEATURES, SCRIPTS

    return {name: {"features": list(DECISION_FEATURES), "weights": {n: 0.0 for n in DECISION_FEATURES}, "bias": 0.0} for name in SCRIPTS}


def decision_probs(decision: dict, x: np.ndarray) -> np.ndarray:
    """Each decision row's probability from its own script's model."""
    from retrieval.scoring import DECISION_FEATURES

    arabic = x[:, list(DECISION_FEATURES).index("arabic")] == 1
    return np.where(arabic, probs(decision["arabic"], x), probs(decision["other"], x)) if len(x) else np.zeros(0)


def probs(model: dict, x: np.ndarray) -> np.ndarray:
    """The probabilities a fitted model (as written to params.json) gives these rows."""
    from retrieval.scoring import LinearModel

    return LinearModel.from_json(model, model["features"], "fitted").probs(x)


def auc(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the ROC curve (rank statistic)."""
    pos, neg = p[y == 1], p[y == 0]
    if not len(pos) or not len(neg):
        return float("nan")
    order = np.argsort(np.concatenate([pos, neg]))
    ranks = np.empty(len(order))
    ranks[order] = np.arange(1, len(order) + 1)
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def gate_curve(y: np.ndarray, p: np.ndarray, thresholds: list[float]) -> list[tuple[float, float, float, float]]:
    """(threshold, answerable answered, unanswerable declined, precision of answering) per threshold."""
    out = []
    for t in thresholds:
        ans = p >= t
        answered = float(np.mean(ans[y == 1])) if np.any(y == 1) else float("nan")
        declined = float(np.mean(~ans[y == 0])) if np.any(y == 0) else float("nan")
        prec = float(np.mean(y[ans] == 1)) if np.any(ans) else float("nan")
        out.append((t, answered, declined, prec))
    return out


def choose_threshold(y: np.ndarray, p: np.ndarray, recall: float) -> float:
    """The highest threshold (step .01) at which at least `recall` of the answerable rows are answered."""
    best = 0.0
    for t in np.round(np.arange(0.01, 1.0, 0.01), 2):
        if np.mean(p[y == 1] >= t) >= recall:
            best = float(t)
    return best


def top_hit_rate(rows: Rows, p: np.ndarray) -> float:
    """Share of questions whose highest-probability row is a positive one."""
    best: dict[str, tuple[float, int]] = {}
    for g, pi, yi in zip(rows.group, p, rows.y):
        if g not in best or pi > best[g][0]:
            best[g] = (pi, yi)
    return float(np.mean([yi for _, yi in best.values()])) if best else float("nan")


def default_out(backend: str, lexicon: bool) -> Path:
    """The shipped weights file that vectors of this backend are scored with (retrieval/scoring.py params_file_for)."""
    from retrieval.scoring import params_file_for

    return ROOT / "retrieval" / params_file_for(backend, lexicon)


def reproduce_command(out: Path, backend: str) -> str:
    """The command line that writes this file again: the backend the vectors came from, the lexicon, the script."""
    env = [f"NEWSQA_EMBEDDING_BACKEND={backend}"]
    env += [f"NEWSQA_LEXICON={os.environ['NEWSQA_LEXICON']}"] if os.environ.get("NEWSQA_LEXICON") else []
    shipped = ROOT / "retrieval"
    target = ["--out", f"retrieval/{out.name}" if out.resolve().parent == shipped.resolve() else out.name]
    return " ".join([*env, "python", "bench/fit_scoring.py", *target])


def main() -> int:
    from functools import partial
    from index.embedder import encode_questions
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, action="append", help="dataset folder (repeatable); default: ../shared/data/{xquad-ar,wikinews-ar}")
    parser.add_argument("--recall", type=float, default=DEFAULT_RECALL, help="share of answerable questions (half A) the threshold must answer")
    parser.add_argument("--out", type=Path, help="default: the shipped file for the backend in use (float: params.json)")
    parser.add_argument("--limit", type=int, help="at most N questions per file and half")
    parser.add_argument("--smoke", action="store_true", help="a few questions, to check the script runs")
    args = parser.parse_args()
    quiet()
    from bot.evaluate import prepare
    from bot.settings import Settings
    from retrieval.evaluate import query_vectors, select
    from retrieval.quote import QUOTE_FEATURES
    from retrieval.scoring import DECISION_FEATURES, PARAMS_FORMAT, PASSAGE_FEATURES, load_params

    settings = Settings()
    backend = settings.embedder().backend
    args.out = args.out or default_out(backend, settings.lexicon)
    default = [ROOT.parent / "shared" / "data" / n for n in ("xquad-ar", "wikinews-ar")]
    datas = args.data or [d for d in default if d.is_dir()]
    if not datas:
        print("no development data: give --data DIR (a folder with passages.jsonl and questions*.jsonl)")
        return 2
    limit = 8 if args.smoke and not args.limit else args.limit
    t0 = time.perf_counter()
    halves: dict[str, tuple[Rows, Rows, Rows]] = {h: (Rows(), Rows(), Rows()) for h in "AB"}
    sets = []
    for data in datas:
        for qfile in dataset_questions(data):
            dataset, searcher = prepare(settings, data, qfile)
            index_dir = searcher.version.path.parent.parent
            searcher.warm_units(index_dir / "units.npz")
            for half in "AB":
                qs = select(dataset.questions, half, limit)
                qv = query_vectors(qs, partial(encode_questions, searcher.embedder), index_dir, getattr(searcher.embedder, "cache_key", searcher.embedder.name))
                sets.append((half, searcher, qs, qv))
                for mine, new in zip(halves[half], collect(searcher, qs, qv)):
                    mine.extend(new)
                print(f"{data.name}/{qfile.name} half {half}: {len(qs)} questions", file=sys.stderr)
    pa, qa = halves["A"][0], halves["A"][2]
    passage = fit(pa, list(PASSAGE_FEATURES))
    quote = fit(qa, list(QUOTE_FEATURES))
    # The decision reads the passage model's ranking and log-odds: its rows are collected with the new model.
    fitted = load_params(json.dumps({"format": PARAMS_FORMAT, "passage": passage, "quote": quote, "decision": {**passage_free_decision(), "threshold": 0.5}}))
    for half, searcher, qs, qv in sets:
        searcher.params = fitted
        halves[half][1].extend(collect(searcher, qs, qv, decision=True)[1])
        # Off topic: the same questions over another dataset's corpus, which never answers them.
        for _, other, _, _ in sets:
            if other.version.path != searcher.version.path:
                other.params = fitted
                pick = slice(0, OFF_TOPIC_PER_SET)
                halves[half][1].extend(collect(other, qs[pick], qv[pick], decision=True, off_topic=True)[1])
                break
    da = halves["A"][1]
    xd, yd = da.arrays()
    # Arabic questions and questions in another script (meaning and translated terms) are two populations whose
    # features read differently: one model and one threshold each.
    col = list(DECISION_FEATURES).index("arabic")
    masks = {"arabic": xd[:, col] == 1, "other": xd[:, col] == 0}
    decision: dict = {name: fit(da.subset(mask), list(DECISION_FEATURES)) for name, mask in masks.items()}
    decision["thresholds"] = {name: choose_threshold(yd[mask], probs(decision[name], xd[mask]), args.recall) for name, mask in masks.items()}
    threshold = choose_threshold(yd, decision_probs(decision, xd), args.recall)
    decision["threshold"] = threshold

    report: dict = {"seconds": round(time.perf_counter() - t0, 1)}
    print(f"\nfitted on half A in {report['seconds']} s; rows: passage {len(pa.y)}, decision {len(da.y)}, quote {len(qa.y)}")
    models = (("passage", passage, PASSAGE_FEATURES), ("decision, Arabic questions", decision["arabic"], DECISION_FEATURES),
              ("decision, other questions", decision["other"], DECISION_FEATURES), ("quote", quote, QUOTE_FEATURES))
    for name, model, docs in models:
        print(f"\n{name} model (bias {model['bias']:+.3f})")
        for f in model["features"]:
            print(f"  {f:12s} {model['weights'][f]:+9.3f}   {docs[f]}")
    for half, (p, d, q) in halves.items():
        xp, yp = p.arrays()
        xq, yq = q.arrays()
        xd, yd = d.arrays()
        pp, pq, pdd = probs(passage, xp), probs(quote, xq), decision_probs(decision, xd)
        report[half] = {
            "passage_auc": round(auc(yp, pp), 4),
            "passage_top1_holds_answer": round(top_hit_rate(p, pp), 4),
            "quote_auc": round(auc(yq, pq), 4),
            "quote_top1_holds_answer": round(top_hit_rate(q, pq), 4),
            "decision_auc": round(auc(yd, pdd), 4),
        }
        print(f"\nhalf {half}{' (fitted on)' if half == 'A' else ' (held out)'}: " + ", ".join(f"{k} {v}" for k, v in report[half].items()))
        print("  gate: threshold  answerable-answered  unanswerable-declined  precision")
        for t, a, dcl, pr in gate_curve(yd, pdd, [0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, threshold]):
            mark = "  <- one threshold for all" if t == threshold else ""
            print(f"        {t:9.2f}  {a:19.3f}  {dcl:21.3f}  {pr:9.3f}{mark}")
        col = list(DECISION_FEATURES).index("arabic")
        per = np.where(xd[:, col] == 1, decision["thresholds"]["arabic"], decision["thresholds"]["other"])
        ans = pdd >= per
        print(f"  per-script thresholds {decision['thresholds']} (chosen): answerable answered {np.mean(ans[yd == 1]):.3f}, "
              f"unanswerable declined {np.mean(~ans[yd == 0]):.3f}, precision {np.mean(yd[ans] == 1):.3f}")
        for name, mask in (("arabic", xd[:, col] == 1), ("other", xd[:, col] == 0)):
            m = mask
            print(f"    {name:6s}: answered {np.mean(ans[m & (yd == 1)]):.3f}, declined {np.mean(~ans[m & (yd == 0)]):.3f} "
                  f"({int(np.sum(m & (yd == 1)))} answerable, {int(np.sum(m & (yd == 0)))} unanswerable)")
    check_x = np.vstack(pa.x[:3]) if pa.x else np.zeros((0, len(PASSAGE_FEATURES)))
    out = {
        "format": PARAMS_FORMAT,
        "fitted": "bench/fit_scoring.py on half A of " + ", ".join(d.name for d in datas),
        "command": reproduce_command(args.out, backend),
        "recall_target": args.recall,
        "passage": passage,
        "decision": decision,
        "quote": quote,
        "report": report,
        "check": {"passage_features": check_x.round(6).tolist(), "passage_probs": probs(passage, check_x.round(6)).round(6).tolist()},
    }
    args.out.write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out.name}; threshold {threshold} (answers {args.recall} of answerable half-A questions)")
    if not math.isfinite(threshold):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
