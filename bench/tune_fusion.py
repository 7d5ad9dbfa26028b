"""Offline tuning of fusion on one split: lexical and dense lists are computed once per
question, then each fusion variant is scored in numpy (passage MRR@10 and ansR@1/5).

    python bench/tune_fusion.py --split A
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import xquad_dir
from bot.settings import Settings
from index.store import open_current
from retrieval.evaluate import cache_dir_for, contains_answer, load_dataset, load_questions, query_vectors, select
from retrieval.quote import query_terms
from retrieval.search import Searcher

DATA = xquad_dir()  # NEWSQA_XQUAD_DIR, else ../shared/data/xquad-ar beside the checkout, else the shipped slice


def lists(searcher: Searcher, qs, qv):
    out = []
    for q, v in zip(qs, qv):
        lex = searcher.lexical(q.question, 100)
        den = searcher.dense(v, 100)
        cov = searcher.coverage(query_terms(q.question, searcher.idf))
        out.append((lex, den, cov))
    return out


def fuse(lex, den, cov, method, p):
    rows: dict[int, float] = {}
    if method == "rrf":
        w = cov ** p["pow"] if cov >= p["floor"] else 0.0
        for r, (row, _) in enumerate(lex):
            rows[row] = rows.get(row, 0) + w / (p["k"] + r + 1)
        for r, (row, _) in enumerate(den):
            rows[row] = rows.get(row, 0) + 1 / (p["k"] + r + 1)
    else:  # convex combination of per-query max-normalised scores
        w = p["wl"] * (cov ** p["pow"] if cov >= p["floor"] else 0.0)
        lmax = lex[0][1] if lex else 1.0
        dmin = den[-1][1] if den else 0.0
        dmax = den[0][1] if den else 1.0
        dl = {row: s for row, s in den}
        ll = {row: s / lmax for row, s in lex}
        for row in set(dl) | set(ll):
            d = (dl.get(row, dmin) - dmin) / max(1e-6, dmax - dmin) if p["dnorm"] else dl.get(row, dmin)
            rows[row] = (1 - w) * d + w * ll.get(row, 0.0)
    return sorted(rows, key=lambda r: -rows[r])


def score(searcher, qs, data, method, p):
    art = np.asarray(searcher.version.chunk_article)
    ids = ARTICLE_IDS
    rr = a1 = a5 = 0.0
    for q, (lex, den, cov) in zip(qs, data):
        order = []
        for row in fuse(lex, den, cov, method, p):
            a = int(art[row])
            if a not in order:
                order.append(a)
            if len(order) >= 10:
                break
        names = [ids[a] for a in order]
        if q.passage_id in names:
            rr += 1 / (names.index(q.passage_id) + 1)
        hits = [contains_answer(BODIES[a], q.answers) for a in order[:5]]
        a1 += bool(hits[:1] and hits[0])
        a5 += any(hits)
    n = len(qs)
    return rr / n, a1 / n, a5 / n


def main() -> int:
    global ARTICLE_IDS, BODIES
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", default="A")
    args = ap.parse_args()
    settings = Settings()
    ds = load_dataset(DATA)
    emb = settings.embedder()
    index_dir = cache_dir_for(settings.index_dir.parent / "eval-cache", ds, settings.embedding_model, (settings.chunk_max_chars, settings.chunk_min_chars))
    from index.build import update_index

    update_index(ds.root, index_dir, emb, settings.build_options(), corpus=ds.corpus)
    s = Searcher(open_current(index_dir), emb, settings.search_config())
    rows = s.version.db.execute("SELECT row, id, body FROM articles ORDER BY row").fetchall()
    ARTICLE_IDS = [r[1] for r in rows]
    BODIES = [r[2] for r in rows]
    for lang, fname in (("ar", "questions.jsonl"), ("en", "questions.en.jsonl")):
        qs = select(load_questions(DATA / fname), args.split)
        qv = query_vectors(qs, emb.encode_queries, index_dir, emb.name)
        data = lists(s, qs, qv)
        print(f"== {lang} split {args.split}")
        print("lexical only", score(s, qs, [(lex, [], c) for lex, _, c in data], "rrf", {"k": 60, "pow": 0, "floor": 0}))
        print("dense only", score(s, qs, [([], d, c) for _, d, c in data], "rrf", {"k": 60, "pow": 1, "floor": 0}))
        for k, pw, fl in itertools.product((10, 30, 60), (1, 2), (0.0, 0.3, 0.5)):
            print("rrf", k, pw, fl, "{:.4f} {:.4f} {:.4f}".format(*score(s, qs, data, "rrf", {"k": k, "pow": pw, "floor": fl})))
        for wl, pw, fl, dn in itertools.product((0.3, 0.4, 0.5, 0.6), (1, 2), (0.0, 0.5), (True, False)):
            print("cvx", wl, pw, fl, dn, "{:.4f} {:.4f} {:.4f}".format(*score(s, qs, data, "cvx", {"wl": wl, "pow": pw, "floor": fl, "dnorm": dn})))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
