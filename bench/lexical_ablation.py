"""Lexical (BM25-only, model-free) ablation of the Arabic analyser: one row per variant, per half.

Each dataset folder holds `passages.jsonl` ({id, title, text}) and `questions.jsonl`
({id, question, answers, passage_id, lang?}; rows with a `lang` other than "ar" are skipped).
Passages are chunked with the project's chunker, a bm25s index is built over each variant's
document terms, questions are scored with its question terms, and a passage ranks by its best
chunk. Reported per half (sha1(question id)[0] even → A, odd → B; tune on A, report both):
gold-passage MRR@10 and ansR@5 (a normalised answer inside one of the top-5 distinct passages).

    python bench/lexical_ablation.py                      # ../shared/data/{xquad-ar,wikinews-ar}
    python bench/lexical_ablation.py --data ../shared/data/wikinews-ar
    NEWSQA_DATA_DIR=/some/where python bench/lexical_ablation.py
    python bench/lexical_ablation.py --smoke              # a tiny dataset written on the fly

The baseline row is the analyser as it was before this work (a frozen copy below), so the
comparison stays meaningful after a variant is adopted into index/arabic.py.
"""

from __future__ import annotations

import argparse
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from functools import lru_cache  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from index import arabic  # noqa: E402
from index.chunking import chunk_article  # noqa: E402
from index.store import import_bm25s  # noqa: E402
from retrieval.evaluate import contains_answer, load_passages, split_of  # noqa: E402

MRR_K = 10
ANS_K = 5
CHUNK_K = 3  # chunkR@3: the answer inside one of the 3 best chunks (any passage): what quotes are cut from
DEMO_QUESTION = "كم عدد متابعي حساب شامي ويتنس؟"  # README's demo; the answer sentence holds 17700
DEMO_ARTICLE = ROOT / "corpus" / "annabaa-2014-12-18-isis-internet.txt"
DEFAULT_SETS = ("xquad-ar", "wikinews-ar")

# --- the analyser before this work (frozen copy of index/arabic.py's stem and terms) ---------
_OLD_PREFIXES = ("وال", "بال", "كال", "فال", "لل", "ال")
_OLD_SUFFIXES = ("ها", "ان", "ات", "ون", "ين", "يه", "ه", "ي")


@lru_cache(maxsize=200_000)
def old_stem(token: str) -> str:
    """The light stemmer as it was: و, one article/preposition prefix, repeated Light10 suffixes."""
    if not token or not ("\u0600" <= token[0] <= "\u06ff"):
        return token
    if len(token) > 3 and token[0] == "و":
        token = token[1:]
    for prefix in _OLD_PREFIXES:
        if token.startswith(prefix) and len(token) - len(prefix) >= 2:
            token = token[len(prefix) :]
            break
    changed = True
    while changed and len(token) > 2:
        changed = False
        for suffix in _OLD_SUFFIXES:
            if token.endswith(suffix) and len(token) - len(suffix) >= 2:
                token = token[: -len(suffix)]
                changed = True
                break
    return token


def old_terms(text: str) -> list[str]:
    out = []
    for m in arabic._WORD_RE.finditer(text):
        norm = arabic.normalize(m.group())
        if norm and norm not in arabic.STOPWORDS:
            out.append(old_stem(norm))
    return out


ADOPTED_STEMMER = arabic.STEMMER_SETTINGS
_ALL_SUFFIXES = ("هما", "كما", "ها", "هم", "هن", "كم", "كن", "نا", "ان", "ات", "ون", "ين", "يه", "ه", "ي")


# --- candidate stemmers -----------------------------------------------------------------------
def _snowball() -> Callable[[str], str] | None:
    try:
        import Stemmer  # PyStemmer
    except ImportError:
        return None
    s = Stemmer.Stemmer("arabic")

    @lru_cache(maxsize=200_000)
    def snow(token: str) -> str:
        if not token or not ("\u0600" <= token[0] <= "\u06ff"):
            return token
        return s.stemWord(token)

    return snow


def _analyser(stemmer: Callable[[str], str] | None, *, numbers: bool, split_joined: bool, pairs: bool):
    def doc(text: str) -> list[str]:
        return [t.term for t in arabic.term_spans(text, stemmer=stemmer, numbers=numbers, split_joined=split_joined)]

    def question(text: str) -> list[str]:
        return [
            t.term
            for t in arabic.term_spans(text, question=pairs, stemmer=stemmer, numbers=numbers, split_joined=split_joined)
        ]

    return doc, question


def variants() -> dict[str, tuple[Callable[[str], list[str]], Callable[[str], list[str]]]]:
    """label → (document terms, question terms). Each row adds or swaps one thing."""
    old = old_stem
    new = arabic.stem
    assert arabic.make_stemmer(**ADOPTED_STEMMER)("وبمدينتهم") == new("وبمدينتهم")
    def a(**changes: object) -> tuple[Callable[[str], list[str]], Callable[[str], list[str]]]:
        settings = {**ADOPTED_STEMMER, **changes}
        return _analyser(arabic.make_stemmer(**settings), numbers=False, split_joined=False, pairs=False)

    out = {
        "baseline (old light stemmer)": (old_terms, old_terms),
        "a. clitic stemmer (adopted: index.arabic.stem)": _analyser(new, numbers=False, split_joined=False, pairs=False),
        "a, no lone ب/ل/ك stripping": a(bare_proclitic_min=None),
        "a, lone ب/ل/ك with 3+ letters left": a(bare_proclitic_min=3),
        "a, also كم كن نا كما, stem 3+": a(suffixes=_ALL_SUFFIXES, pronoun_min=3),
        "a, no ت→ه before pronouns": a(restore_ta=False),
        "a, accusative alif stripped too (جسرا → جسر; measured, not adopted)": a(suffixes=(*arabic._SUFFIXES, "ا")),
        "a, endings may leave 2 letters (مدينة → مد)": a(ending_min=2),
        "b. old + question pairs, hashtag split": _analyser(old, numbers=False, split_joined=True, pairs=True),
        "d. old + number values": _analyser(old, numbers=True, split_joined=False, pairs=False),
    }
    snow = _snowball()
    if snow is not None:
        out["c. Snowball (PyStemmer)"] = _analyser(snow, numbers=False, split_joined=False, pairs=False)
    out["a+b+d (adopted: index.arabic terms / question_terms)"] = (arabic.terms, arabic.question_terms)
    out["a+b (no number values)"] = _analyser(new, numbers=False, split_joined=True, pairs=True)
    if snow is not None:
        out["c+b+d (Snowball, pairs, numbers)"] = _analyser(snow, numbers=True, split_joined=True, pairs=True)
    return out


# --- data ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Q:
    id: str
    question: str
    answers: tuple[str, ...]
    passage_id: str | None
    half: str


@dataclass(slots=True)
class Data:
    name: str
    chunk_texts: list[str]
    chunk_passage: np.ndarray  # chunk row → passage index
    passage_ids: list[str]
    passage_text: list[str]
    questions: list[Q]


def load(root: Path) -> Data:
    corpus = load_passages(root / "passages.jsonl", root.name)
    texts, owner = [], []
    for i, article in enumerate(corpus.articles):
        for c in chunk_article(article):
            texts.append(c.embed_text)
            owner.append(i)
    qs = []
    with open(root / "questions.jsonl", encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            rec = json.loads(line)
            if rec.get("lang", "ar") != "ar":
                continue
            qid = str(rec["id"])
            pid = rec.get("passage_id")
            qs.append(Q(qid, rec["question"], tuple(rec["answers"]), str(pid) if pid else None, split_of(qid)))
    return Data(
        root.name, texts, np.array(owner, dtype=np.int32), [a.id for a in corpus.articles],
        [a.body for a in corpus.articles], qs,
    )


# --- scoring ------------------------------------------------------------------------------------
def ranked_passages(scores: np.ndarray, chunk_passage: np.ndarray, k: int) -> list[int]:
    """Top-k distinct passages by their best positive chunk score."""
    order = np.argsort(-scores, kind="stable")
    out: list[int] = []
    seen: set[int] = set()
    for row in order:
        if scores[row] <= 0:
            break
        p = int(chunk_passage[row])
        if p not in seen:
            seen.add(p)
            out.append(p)
            if len(out) >= k:
                break
    return out


def measure(data: Data, doc_fn, q_fn, outcomes: dict | None = None) -> dict[str, dict[str, float]]:
    """{half: {MRR@10, ansR@5, chunkR@3, n}} for one analyser; per-question outcomes into `outcomes`."""
    bm25s = import_bm25s()
    index = bm25s.BM25()
    index.index([doc_fn(t) for t in data.chunk_texts], show_progress=False)
    tally = {h: {"rr": 0.0, "ans": 0, "n": 0, "gold": 0, "chunk": 0} for h in ("A", "B")}
    pid_index = {pid: i for i, pid in enumerate(data.passage_ids)}
    for q in data.questions:
        t = tally[q.half]
        t["n"] += 1
        terms = q_fn(q.question)
        scores = index.get_scores(terms) if terms else np.zeros(len(data.chunk_texts))
        top = ranked_passages(scores, data.chunk_passage, MRR_K)
        best_chunks = [int(r) for r in np.argsort(-scores, kind="stable")[:CHUNK_K] if scores[r] > 0]
        chunk_hit = any(contains_answer(data.chunk_texts[r], q.answers) for r in best_chunks)
        t["chunk"] += chunk_hit
        if q.passage_id is not None:
            t["gold"] += 1
            gold = pid_index.get(q.passage_id)
            if gold in top:
                t["rr"] += 1.0 / (top.index(gold) + 1)
        ans_hit = any(contains_answer(data.passage_text[p], q.answers) for p in top[:ANS_K])
        t["ans"] += ans_hit
        if outcomes is not None:
            gold_rank = top.index(pid_index[q.passage_id]) + 1 if q.passage_id in pid_index and pid_index[q.passage_id] in top else None
            outcomes[(data.name, q.id)] = (q, gold_rank, ans_hit, chunk_hit, terms)
    return {
        h: {
            "MRR@10": t["rr"] / max(1, t["gold"]),
            "ansR@5": t["ans"] / max(1, t["n"]),
            "chunkR@3": t["chunk"] / max(1, t["n"]),
            "n": t["n"],
        }
        for h, t in tally.items()
    }


def print_diff(label: str, base: dict, new: dict) -> None:
    """Questions whose gold rank, passage answer or chunk answer changed against the baseline."""
    for key, (q, rank, ans, chunk, terms) in new.items():
        _, rank0, ans0, chunk0, terms0 = base[key]
        if (rank, ans, chunk) != (rank0, ans0, chunk0):
            print(f"    [{label[:2]}] {key[0]} {q.half} {q.id}: gold rank {rank0}→{rank} ans {ans0:d}→{ans:d} "
                  f"chunk {chunk0:d}→{chunk:d}  {q.question}  {q.answers[:2]}  +{sorted(set(terms) - set(terms0))[:8]}")


def demo_rank(doc_fn, q_fn) -> str:
    """Rank of the bundled article's 17700 chunk for the README's demo question, and its score share."""
    from index.articles import parse_text

    if not DEMO_ARTICLE.is_file():
        return "–"
    article = parse_text(DEMO_ARTICLE.read_text(encoding="utf-8"), DEMO_ARTICLE.name)
    chunks = chunk_article(article)
    index = import_bm25s().BM25()
    index.index([doc_fn(c.embed_text) for c in chunks], show_progress=False)
    scores = index.get_scores(q_fn(DEMO_QUESTION))
    gold = next(i for i, c in enumerate(chunks) if "17700" in c.text)
    rank = 1 + int(np.sum(scores > scores[gold]))
    return f"{rank} of {len(chunks)}"


# --- smoke data ---------------------------------------------------------------------------------
_SMOKE_PASSAGES = [
    ("s-isis", "وكان حساب @شاميويتنس الذي جمع 17700 متتبع من أبرز الحسابات الداعمة للتنظيم على تويتر."),
    ("s-bank", "أعلن البنك المركزي رفع سعر الفائدة الرئيسي بمقدار ربع نقطة مئوية ليصل إلى 5.25 في المئة."),
    ("s-flood", "غمرت مياه الفيضانات ميناء الصيادين القديم وتضرر أكثر من ثلاثة آلاف منزل في المدينة."),
    ("s-tag", "انتشر وسم #بغداد_اليوم على مواقع التواصل بعد انقطاع الكهرباء عن أحياء واسعة."),
    ("s-cup", "فاز المنتخب الوطني بكأس البطولة القارية عام 2021 بعد تغلبه على منافسه بركلات الترجيح."),
    ("s-school", "افتتحت الوزارة خمسة عشر مدرسة جديدة في مدنها الشمالية هذا العام."),
    # Distractors: the question's words, written the way the question writes them, but no answer.
    ("s-isis-2", "قال أصدقاء شامي ويتنس إنه توقف."),
    ("s-flood-2", "تضرر منزل واحد في الفيضانات الأخيرة في حي قديم، وتضرر منزل آخر."),
]
_SMOKE_QUESTIONS = [
    ("sq1", "كم عدد متابعي حساب شامي ويتنس؟", ["17700"], "s-isis"),
    ("sq2", "كم بلغ سعر الفائدة بعد قرار البنك المركزي؟", ["5.25"], "s-bank"),
    ("sq3", "أين تضرر 3000 منزل؟", ["ثلاثة آلاف"], "s-flood"),
    ("sq4", "ما الذي انتشر على وسم بغداد اليوم؟", ["انقطاع الكهرباء"], "s-tag"),
    ("sq5", "متى فاز المنتخب بالكأس القارية؟", ["2021"], "s-cup"),
    ("sq6", "كم مدرسة افتتحت الوزارة، 15؟", ["خمسة عشر"], "s-school"),
    ("sq7", "Who won the cup?", ["2021"], "s-cup"),
]


def write_smoke(folder: Path) -> Path:
    root = folder / "smoke-ar"
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "passages.jsonl", "w", encoding="utf-8") as handle:
        handle.writelines(
            json.dumps({"id": pid, "title": pid, "text": text}, ensure_ascii=False) + "\n" for pid, text in _SMOKE_PASSAGES
        )
    with open(root / "questions.jsonl", "w", encoding="utf-8") as handle:
        for qid, question, answers, pid in _SMOKE_QUESTIONS:
            lang = "en" if question.isascii() else "ar"
            row = {"id": qid, "question": question, "answers": answers, "passage_id": pid, "lang": lang}
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return root


# --- main ---------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", action="append", type=Path, help="a dataset folder (repeatable)")
    ap.add_argument("--smoke", action="store_true", help="a tiny dataset written to a temporary folder")
    ap.add_argument("--only", action="append", help="run only variants whose label contains this (repeatable)")
    ap.add_argument("--diff", action="store_true", help="list the questions each variant wins or loses against the baseline")
    args = ap.parse_args(argv)
    print(f"== lexical ablation{' (smoke)' if args.smoke else ''} ==")
    with tempfile.TemporaryDirectory() as tmp:
        if args.smoke:
            roots = [write_smoke(Path(tmp))]
        elif args.data:
            roots = args.data
        else:
            base = Path(os.environ.get("NEWSQA_DATA_DIR") or ROOT.parent / "shared" / "data")
            roots = [base / name for name in DEFAULT_SETS]
        missing = [r for r in roots if not (r / "passages.jsonl").is_file() or not (r / "questions.jsonl").is_file()]
        if missing:
            for r in missing:
                print(f"no dataset at {r} (needs passages.jsonl and questions.jsonl); give --data DIR or set NEWSQA_DATA_DIR")
            return 2
        datasets = [load(r) for r in roots]
        for d in datasets:
            halves = {h: sum(q.half == h for q in d.questions) for h in ("A", "B")}
            print(f"{d.name}: {len(d.passage_ids)} passages, {len(d.chunk_texts)} chunks, "
                  f"Arabic questions A {halves['A']} / B {halves['B']}")
        heads = [f"{d.name} {h}" for d in datasets for h in ("A", "B")]
        print("\n| variant | " + " | ".join(f"{h} MRR@10 / ansR@5 / chunkR@3" for h in heads) + " | demo |")
        print("|---|" + "---|" * (len(heads) + 1))
        baseline = None
        for label, (doc_fn, q_fn) in variants().items():
            if args.only and not any(o in label for o in args.only):
                continue
            t = time.perf_counter()
            cells = []
            outcomes: dict = {}
            for d in datasets:
                m = measure(d, doc_fn, q_fn, outcomes)
                cells += [f"{m[h]['MRR@10']:.3f} / {m[h]['ansR@5']:.3f} / {m[h]['chunkR@3']:.3f}" for h in ("A", "B")]
            print(f"| {label} | " + " | ".join(cells) + f" | {demo_rank(doc_fn, q_fn)} |", flush=True)
            print(f"  {label}: {time.perf_counter() - t:.1f}s", file=sys.stderr)
            if baseline is None:
                baseline = outcomes
            elif args.diff:
                print_diff(label, baseline, outcomes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
