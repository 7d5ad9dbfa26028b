"""Synthetic corpora for reindex tests and benchmarks: sample-text sentences recombined into small articles."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from pathlib import Path

from index.arabic import clause_spans

ROOT = Path(__file__).resolve().parent.parent
SOURCES = (ROOT / "corpus", ROOT / "tests" / "data" / "corpus")
OUTLETS = ("شبكة النبأ", "وكالة الأنباء الاقتصادية", "صحيفة الملاعب", "الإذاعة المحلية", "جريدة الصباح", "موقع الخبر اليوم")
TOPICS = ("تقرير", "متابعة", "تحليل", "خبر عاجل", "حوار", "رأي", "ملف خاص", "تحقيق")


def sample_sentences() -> list[str]:
    """Every sentence (long ones cut into clauses) of the bundled sample and test articles (bodies only, headers skipped)."""
    sentences: list[str] = []
    for folder in SOURCES:
        for path in sorted(folder.iterdir()):
            if path.suffix == ".jsonl":
                bodies = [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
            else:
                bodies = ["\n".join(path.read_text(encoding="utf-8").splitlines()[3:])]
            for body in bodies:
                for para in body.splitlines():
                    for s, e in clause_spans(para, max_chars=240, min_chars=60):
                        piece = para[s:e].strip().rstrip("،,")
                        if len(piece) > 40:
                            sentences.append(piece if piece.endswith((".", "؟", "!", '"')) else piece + ".")
    return sentences


def make_article(rng: random.Random, sentences: list[str], number: int, paragraphs: int = 2, per_paragraph: int = 3) -> str:
    """One article in the outlet format: title, outlet, date, then paragraphs of sample sentences."""
    outlet = OUTLETS[number % len(OUTLETS)]
    date = datetime(2014, 1, 1) + timedelta(minutes=rng.randrange(0, 10 * 365 * 24 * 60))
    lead = rng.choice(sentences).split()[:6]
    title = f"{rng.choice(TOPICS)} {number}: {' '.join(lead)}"
    body = "\n".join(" ".join(rng.sample(sentences, per_paragraph)) for _ in range(paragraphs))
    return f"{title}\n{outlet}\n{date:%Y-%m-%d %H:%M}\n{body}\n"


def write_corpus(folder: Path, n: int, seed: int = 7, paragraphs: int = 2, per_paragraph: int = 3) -> list[Path]:
    """Write n articles as art-00001.txt … into folder; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    sentences = sample_sentences()
    paths = []
    for i in range(1, n + 1):
        path = folder / f"art-{i:05d}.txt"
        path.write_text(make_article(rng, sentences, i, paragraphs, per_paragraph), encoding="utf-8")
        paths.append(path)
    return paths


def news_sentences(jsonl_files: list[Path]) -> list[str]:
    """The bundled sentences plus every sentence of the given passage files (JSONL with a `text` field), deduplicated."""
    sentences = sample_sentences()
    for path in jsonl_files:
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            text = json.loads(line)["text"]
            for para in text.splitlines():
                for s, e in clause_spans(para, max_chars=240, min_chars=60):
                    piece = para[s:e].strip().rstrip("،,")
                    if len(piece) > 40:
                        sentences.append(piece if piece.endswith((".", "؟", "!", '"')) else piece + ".")
    return list(dict.fromkeys(sentences))


def write_news_corpus(folder: Path, n: int, sentences: list[str], seed: int = 11) -> list[Path]:
    """n news-length articles (3–6 paragraphs of 2–3 real sentences, ~1,500 characters, as Wikinews-ar) in the outlet format."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    paths = []
    for i in range(1, n + 1):
        path = folder / f"news-{i:05d}.txt"
        text = make_article(rng, sentences, i, paragraphs=rng.randint(3, 6), per_paragraph=rng.randint(2, 3))
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


def correct_article(path: Path, note: str = "تصحيح: عدلت هذه الفقرة بعد النشر.") -> None:
    """An editor's correction: one sentence appended to the last paragraph (same title, so same id)."""
    text = path.read_text(encoding="utf-8").rstrip("\n")
    path.write_text(f"{text} {note}\n", encoding="utf-8")
