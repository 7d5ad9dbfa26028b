"""Retrieval quality on a question set: answer recall, gold-passage MRR, quote recall, latency.

A dataset folder holds `questions.jsonl` (`{"id", "question", "answers": [...], "passage_id"?}`)
and either `passages.jsonl` (`{"id", "title", "text"}`, each passage one article) or a
`corpus/` folder of articles. Metrics are computed per retriever (lexical, dense, fused) with
one hit per article, so a passage is counted once however many chunks it was cut into.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from index.arabic import normalize
from index.articles import Article, CorpusLoad, Paragraph, load_corpus, split_body
from index.embedder import encode_questions
from index.errors import NewsqaError
from retrieval.search import MODES, Searcher

DATASET_DATE = datetime(2000, 1, 1)
ANSWER_KS = (1, 5, 20)
MRR_K = 10
QUOTE_K = 3
METRIC_KEYS = (
    "n",
    "ansR@1",
    "ansR@5",
    "ansR@20",
    "MRR@10",
    "quoteR@3",
    "quoteR@1",
    "quote_chars_mean",
    "quote_chars_max",
    "latency_ms_mean",
    "latency_ms_p95",
    "embed_ms_mean",
)
EMBED_SAMPLE = 20  # questions embedded one at a time to measure the per-question embedding cost


class DatasetError(NewsqaError):
    """An eval dataset folder or questions file that cannot be read as documented."""


@dataclass(frozen=True, slots=True)
class Question:
    """One eval question with its accepted answers and, when known, its gold passage id."""

    id: str
    question: str
    answers: tuple[str, ...]
    passage_id: str | None = None
    lang: str | None = None


@dataclass(slots=True)
class Dataset:
    """Articles to index and questions to ask of them."""

    name: str
    root: Path
    corpus: CorpusLoad
    questions: list[Question] = field(default_factory=list)
    passage_level: bool = True  # passages.jsonl: a hit's passage is its whole article


def _read_jsonl(path: Path) -> Iterable[tuple[int, dict]]:
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise DatasetError(f"{path}: unreadable: {exc.strerror or exc}") from None
    with handle:
        for n, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{path}:{n}: not JSON ({exc.msg})") from None
            if not isinstance(rec, dict):
                raise DatasetError(f"{path}:{n}: not a JSON object")
            yield n, rec


def load_passages(path: Path, source: str) -> CorpusLoad:
    """passages.jsonl → one Article per passage, neutral title, fixed date and outlet."""
    load = CorpusLoad()
    seen: set[str] = set()
    for n, rec in _read_jsonl(path):
        pid, text = str(rec.get("id") or "").strip(), rec.get("text")
        if not pid or not isinstance(text, str) or not text.strip():
            raise DatasetError(f"{path}:{n}: a passage needs a non-empty \"id\" and \"text\"")
        if pid in seen:
            raise DatasetError(f"{path}:{n}: duplicate passage id {pid!r}")
        seen.add(pid)
        paragraphs = split_body(text)
        if not paragraphs:
            s = len(text) - len(text.lstrip())
            paragraphs = (Paragraph(s, len(text.rstrip()), None),)
        # Headings are for news; a passage is one block of text, so no paragraph carries one.
        paragraphs = tuple(Paragraph(p.start, p.end, None) for p in paragraphs)
        load.articles.append(
            Article(id=pid, title=f"{source} {pid}", source=source, date=DATASET_DATE, body=text, paragraphs=paragraphs, path=f"{path.name}:{n}")
        )
    return load


def load_questions(path: Path) -> list[Question]:
    """questions.jsonl → Questions; a bad row names the file and line."""
    out: list[Question] = []
    for n, rec in _read_jsonl(path):
        qid, question, answers = rec.get("id"), rec.get("question"), rec.get("answers")
        if qid in (None, "") or not isinstance(question, str) or not question.strip():
            raise DatasetError(f"{path}:{n}: a question needs \"id\" and a non-empty \"question\"")
        if not isinstance(answers, list) or not all(isinstance(a, str) and a.strip() for a in answers) or not answers:
            raise DatasetError(f"{path}:{n}: \"answers\" must be a non-empty list of strings")
        pid = rec.get("passage_id")
        lang = rec.get("lang")
        out.append(Question(str(qid), question, tuple(answers), str(pid) if pid not in (None, "") else None, str(lang) if lang else None))
    if not out:
        raise DatasetError(f"{path}: no questions")
    return out


def load_dataset(root: Path, questions: Path | None = None) -> Dataset:
    """Read a dataset folder (passages.jsonl or corpus/) and its questions."""
    if not root.is_dir():
        raise DatasetError(f"{root}: no such dataset folder")
    qpath = questions or root / "questions.jsonl"
    if not qpath.is_file():
        raise DatasetError(f"{qpath}: no questions file (questions.jsonl, or give --questions)")
    name = root.resolve().name
    if (root / "passages.jsonl").is_file():
        corpus, passage_level = load_passages(root / "passages.jsonl", name), True
    elif (root / "corpus").is_dir():
        corpus, passage_level = load_corpus(root / "corpus"), False
    else:
        raise DatasetError(f"{root}: holds neither passages.jsonl nor a corpus/ folder")
    if not corpus.articles:
        raise DatasetError(f"{root}: no passages or articles to index")
    return Dataset(name, root, corpus, load_questions(qpath), passage_level)


def split_of(question_id: str) -> str:
    """The fixed half ("A" or "B") a question belongs to: tune on A, report both."""
    return "A" if hashlib.sha1(question_id.encode("utf-8")).digest()[0] % 2 == 0 else "B"


def select(questions: Sequence[Question], split: str | None = None, limit: int | None = None, lang: str | None = None) -> list[Question]:
    """The questions of one half (or all), of one language (or all), then the first `limit` of them."""
    out = [q for q in questions if (split is None or split_of(q.id) == split) and (lang is None or q.lang == lang)]
    return out[:limit] if limit else out


_SPACE_RE = re.compile(r"\s+")


def norm_answer(text: str) -> str:
    """Normalised text for 'does the answer occur here': Arabic folding, one space between words."""
    return _SPACE_RE.sub(" ", normalize(text)).strip()


def contains_answer(text: str, answers: Sequence[str]) -> bool:
    """Whether any answer occurs in the text after normalisation."""
    hay = norm_answer(text)
    return any(norm_answer(a) and norm_answer(a) in hay for a in answers)


def cache_dir_for(
    base: Path, dataset: Dataset, model: str, chunking: tuple[int, int] | None = None, variant: str = ""
) -> Path:
    """Index cache folder keyed by dataset (name and location), embedding model, chunk sizes and variant (backend…)."""
    key = hashlib.sha1(str(dataset.root.resolve()).encode("utf-8")).hexdigest()[:8]
    slug = re.sub(r"[^\w.-]+", "_", model).strip("_")
    if chunking is not None:
        slug += f"-chunks{chunking[0]}-{chunking[1]}"
    if variant:
        slug += f"-{variant}"
    return base / f"{dataset.name}-{key}" / slug


def query_vectors(
    questions: Sequence[Question], encode: Callable[[list[str]], np.ndarray], cache: Path | None = None, model: str = ""
) -> np.ndarray:
    """Each question embedded once (and cached on disk by model and text), reused by every mode."""
    texts = [q.question for q in questions]
    digest = hashlib.sha1(("\x00".join([model, *texts])).encode("utf-8")).hexdigest()[:16]
    path = cache / f"queries-{digest}.npy" if cache is not None else None
    if path is not None and path.is_file():
        vecs = np.load(path)
        if len(vecs) == len(texts):
            return vecs
    vecs = encode(texts) if texts else np.zeros((0, 0), dtype=np.float32)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, vecs)
    return vecs


@dataclass(slots=True)
class _Tally:
    n: int = 0
    ans: dict[int, int] = field(default_factory=lambda: {k: 0 for k in ANSWER_KS})
    rr: float = 0.0
    n_gold: int = 0
    quote_hits: int = 0
    first_quote_hits: int = 0
    answered: int = 0  # questions the no-answer decision let through (quotes shown)
    answered_quote_hits: int = 0
    quote_chars: list[int] = field(default_factory=list)
    latency: list[float] = field(default_factory=list)
    embed_ms: float = 0.0

    def result(self) -> dict[str, float | int | None]:
        lat = np.array(self.latency) * 1000 if self.latency else np.zeros(1)
        n = max(1, self.n)
        return {
            "n": self.n,
            **{f"ansR@{k}": round(self.ans[k] / n, 4) for k in ANSWER_KS},
            "MRR@10": round(self.rr / self.n_gold, 4) if self.n_gold else None,
            "quoteR@3": round(self.quote_hits / n, 4),
            "quoteR@1": round(self.first_quote_hits / n, 4),
            "answered": round(self.answered / n, 4),
            "quoteR@3|answered": round(self.answered_quote_hits / self.answered, 4) if self.answered else None,
            "quote_chars_mean": round(float(np.mean(self.quote_chars)), 1) if self.quote_chars else 0.0,
            "quote_chars_max": int(max(self.quote_chars)) if self.quote_chars else 0,
            "latency_ms_mean": round(float(lat.mean()), 2),
            "latency_ms_p95": round(float(np.percentile(lat, 95)), 2),
            "embed_ms_mean": round(self.embed_ms, 2),
        }


def ranked_passages(searcher: Searcher, question: str, mode: str, qvec: np.ndarray | None, k: int) -> list[tuple[str, str]]:
    """The top-k distinct articles (id, text of the best chunk) for one question."""
    ranking = searcher.rank(question, mode, qvec=qvec)
    out: list[tuple[str, str]] = []
    seen: set[int] = set()
    v = searcher.version
    for cand in ranking.candidates:
        if cand.article_row in seen:
            continue
        seen.add(cand.article_row)
        out.append((v.article(cand.article_row).id, v.chunk_text(cand.row)))
        if len(out) >= k:
            break
    return out


def evaluate(
    searcher: Searcher,
    questions: Sequence[Question],
    modes: Sequence[str] = MODES,
    qvecs: np.ndarray | None = None,
    passage_level: bool = True,
    progress: Callable[[str, int, int], None] | None = None,
    per_question: bool = False,
) -> Any:
    """Metrics per mode over the questions; question vectors are computed once unless given.

    With per_question, also returns one row per question of the last mode (fused when measured):
    what was expected, what was quoted, and the gold passage's rank.
    """
    for mode in modes:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}: one of {', '.join(MODES)}")
    if qvecs is None and any(m != "lexical" for m in modes):
        qvecs = encode_questions(searcher.embedder, [q.question for q in questions])
    embed_ms = 0.0
    if any(m != "lexical" for m in modes) and questions:
        sample = questions[:EMBED_SAMPLE]
        encode_questions(searcher.embedder, [sample[0].question])  # the model loads on first use: not timed
        t = time.perf_counter()
        for q in sample:
            encode_questions(searcher.embedder, [q.question])
        embed_ms = (time.perf_counter() - t) * 1000 / len(sample)
    body_of: dict[str, str] = {}
    results: dict[str, dict[str, float | int | None]] = {}
    rows: list[dict[str, Any]] = []
    for mode in modes:
        tally = _Tally(embed_ms=0.0 if mode == "lexical" else embed_ms)
        rows = []
        for i, q in enumerate(questions):
            qvec = None if mode == "lexical" or qvecs is None else qvecs[i]
            top = ranked_passages(searcher, q.question, mode, qvec, max(ANSWER_KS))
            tally.n += 1
            texts = []
            for aid, chunk_text in top:
                if passage_level:
                    if aid not in body_of:
                        body_of[aid] = searcher.version.article_by_id(aid).body  # type: ignore[union-attr]
                    texts.append(body_of[aid])
                else:
                    texts.append(chunk_text)
            first = next((r for r, t in enumerate(texts) if contains_answer(t, q.answers)), None)
            for k in ANSWER_KS:
                tally.ans[k] += first is not None and first < k
            gold_rank = None
            if q.passage_id is not None:
                tally.n_gold += 1
                ids = [aid for aid, _ in top[:MRR_K]]
                if q.passage_id in ids:
                    gold_rank = ids.index(q.passage_id) + 1
                    tally.rr += 1.0 / gold_rank
            t = time.perf_counter()
            answer = searcher.answer(q.question, k=QUOTE_K, mode=mode, qvec=qvec)
            tally.latency.append(time.perf_counter() - t)
            quotes = [h.quote.text for h in answer.hits[:QUOTE_K]]
            tally.quote_chars.extend(len(x) for x in quotes)
            hit = any(contains_answer(x, q.answers) for x in quotes)
            tally.quote_hits += hit
            tally.first_quote_hits += bool(quotes) and contains_answer(quotes[0], q.answers)
            if answer.declined is None:
                tally.answered += 1
                tally.answered_quote_hits += hit
            if per_question:
                rows.append(
                    {
                        "id": q.id,
                        "question": q.question,
                        "answers": list(q.answers),
                        "quote_hit": hit,
                        "gold_rank": gold_rank,
                        "answer_rank": None if first is None else first + 1,
                        "quotes": quotes,
                        "quoted_articles": [h.source.article_id for h in answer.hits[:QUOTE_K]],
                        "declined": answer.declined,
                    }
                )
            if progress:
                progress(mode, i + 1, len(questions))
        results[mode] = tally.result()
    return (results, rows) if per_question else results


def failures_table(rows: Sequence[dict[str, Any]], n: int) -> str:
    """The first n questions whose top-3 quotes miss every expected answer, with what was quoted instead."""
    missed = [r for r in rows if not r["quote_hit"]]
    lines = [f"missed: {len(missed)} of {len(rows)} questions (first {min(n, len(missed))} below)"]
    for r in missed[:n]:
        gold = "not in top 10" if r["gold_rank"] is None else f"gold passage at rank {r['gold_rank']}"
        lines.append(f"- {r['id']}: {r['question']}")
        lines.append(f"  expected: {' | '.join(r['answers'])}; {gold}" + (f"; declined ({r['declined']})" if r["declined"] else ""))
        for aid, quote in zip(r["quoted_articles"], r["quotes"]):
            lines.append(f"  quoted [{aid}]: {' '.join(quote.split())[:200]}")
    return "\n".join(lines)


def format_table(results: dict[str, dict[str, float | int | None]], title: str = "") -> str:
    """A plain-text table: one row per retriever, one column per metric."""
    cols = ["ansR@1", "ansR@5", "ansR@20", "MRR@10", "quoteR@3", "quote_chars_mean", "latency_ms_mean", "latency_ms_p95", "embed_ms_mean"]
    heads = ["retriever", "ansR@1", "ansR@5", "ansR@20", "MRR@10", "quoteR@3", "quote chars", "ms mean", "ms p95", "+embed ms"]
    rows = []
    for mode, m in results.items():
        rows.append([mode] + ["–" if m.get(c) is None else (f"{m[c]:.3f}" if c in cols[:5] else f"{m[c]:.1f}") for c in cols])
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(heads)]
    lines = [title] if title else []
    lines.append("  ".join(h.ljust(w) for h, w in zip(heads, widths)))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(lines)
