"""Arabic text handling: normalisation for matching, BM25 tokens, sentence and clause spans.

Nothing here alters the original text: tokenisers and splitters return character spans into it,
so callers can always quote the original verbatim.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

# Bump whenever anything below can change normalize/terms/stem/sentence_spans/clause_spans output (or the
# chunking built on them): indexes record it, `index update` rebuilds in full when it differs, and serving
# refuses a version analysed otherwise (stored BM25 terms and sentence-vector offsets would be misread).
# tests/test_analyser_version.py holds the golden hash of the output for each version.
ANALYSER_VERSION = 1

_TASHKEEL = "\u064b-\u065f\u0670\u06d6-\u06ed"
_TATWEEL = "\u0640"
_STRIP_RE = re.compile(f"[{_TASHKEEL}{_TATWEEL}\u200c-\u200f\u202a-\u202e\u2066-\u2069]")
_CHAR_MAP = str.maketrans(
    {
        "أ": "ا",
        "إ": "ا",
        "آ": "ا",
        "ٱ": "ا",
        "ى": "ي",
        "ة": "ه",
        **{chr(0x0660 + i): str(i) for i in range(10)},  # Arabic-Indic digits
        **{chr(0x06F0 + i): str(i) for i in range(10)},  # Extended (Persian) digits
    }
)

# A word: letters/digits plus the marks and tatweel that may sit inside an Arabic word.
_WORD_RE = re.compile(f"[\\w{_TASHKEEL}{_TATWEEL}]+")

_PREFIXES = ("وال", "بال", "كال", "فال", "لل", "ال")
_SUFFIXES = ("ها", "ان", "ات", "ون", "ين", "يه", "ه", "ي")

# Function words and question words: they carry no topic, in either language.
STOPWORDS = frozenset(
    normalised
    for word in (
        "في من على الى إلى عن ان أن إن او أو ثم مع هذا هذه ذلك تلك التي الذي الذين هو هي هم "
        "كان كانت يكون قد لقد لا لم لن ما ماذا متى اين أين كيف كم لماذا هل اي أي وقد وكان "
        "كل بعد قبل بين حتى عند عندما منذ انه أنه انها أنها به بها له لها فيه فيها منه منها "
        "عليه عليها الا إلا غير بل لكن و ف ب ل ك يا اذا إذا"
    ).split()
    for normalised in [word.translate(_CHAR_MAP)]
) | frozenset(
    "a an the of in on at to for from by with and or is are was were be been what which who whom "
    "whose when where why how did does do many much that this these those it its as into about "
    "than then there their they he she his her has have had not no".split()
)


def normalize(text: str) -> str:
    """Fold the spelling variants of Arabic (and Latin case) so equal words compare equal."""
    return _STRIP_RE.sub("", text).translate(_CHAR_MAP).lower()


@lru_cache(maxsize=200_000)
def stem(token: str) -> str:
    """Light prefix/suffix stemming of one normalised token (Light10-style, conservative)."""
    if not token or not ("\u0600" <= token[0] <= "\u06ff"):
        return token
    if len(token) > 3 and token[0] == "و":
        token = token[1:]
    for prefix in _PREFIXES:
        if token.startswith(prefix) and len(token) - len(prefix) >= 2:
            token = token[len(prefix) :]
            break
    changed = True
    while changed and len(token) > 2:
        changed = False
        for suffix in _SUFFIXES:
            if token.endswith(suffix) and len(token) - len(suffix) >= 2:
                token = token[: -len(suffix)]
                changed = True
                break
    return token


@dataclass(frozen=True, slots=True)
class Token:
    """One word of the original text: its normalised form and where it sits."""

    norm: str
    start: int
    end: int


def word_spans(text: str) -> list[Token]:
    """Every word of `text` with its normalised form and its span in the original."""
    out = []
    for m in _WORD_RE.finditer(text):
        norm = normalize(m.group())
        if norm:
            out.append(Token(norm, m.start(), m.end()))
    return out


def terms(text: str, *, keep_stopwords: bool = False) -> list[str]:
    """The BM25 terms of a text: normalised, stemmed, function words dropped."""
    out = []
    for m in _WORD_RE.finditer(text):
        norm = normalize(m.group())
        if not norm or (not keep_stopwords and norm in STOPWORDS):
            continue
        out.append(stem(norm))
    return out


# Sentence ends: full stop, !, ?, Arabic question mark, semicolons, ellipsis, then closing
# quotes/brackets. A full stop between digits (3.5) or right after a single Latin letter
# (U.S., م. ثيو) does not end a sentence.
_SENT_END_RE = re.compile(r"(?:(?<!\d)(?<![\s(]\w)\.(?!\d)|[!?؟؛;…]|\.{3})+[\"'»”’)\]]*(?=\s|$)|\n+")
_CLAUSE_END_RE = re.compile(r"[،,:](?=\s)")


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Spans of the sentences in text[start:end], trimmed of surrounding whitespace."""
    end = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    pos = start
    for m in _SENT_END_RE.finditer(text, start, end):
        _append_trimmed(text, pos, m.end(), spans)
        pos = m.end()
    _append_trimmed(text, pos, end, spans)
    return spans


def clause_spans(
    text: str, start: int = 0, end: int | None = None, *, max_chars: int = 240, min_chars: int = 40
) -> list[tuple[int, int]]:
    """Sentence spans, with sentences longer than max_chars cut at commas into clauses.

    Arabic news chains whole paragraphs with `،`; clauses shorter than min_chars are merged
    into their neighbour so a quote never starts on a fragment.
    """
    out: list[tuple[int, int]] = []
    for s, e in sentence_spans(text, start, end):
        if e - s <= max_chars:
            out.append((s, e))
            continue
        pieces: list[tuple[int, int]] = []
        pos = s
        for m in _CLAUSE_END_RE.finditer(text, s, e):
            _append_trimmed(text, pos, m.end(), pieces)
            pos = m.end()
        _append_trimmed(text, pos, e, pieces)
        out.extend(_merge_short(pieces, min_chars, max_chars))
    return out


def _merge_short(spans: list[tuple[int, int]], min_chars: int, max_chars: int) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for s, e in spans:
        if merged and (
            (e - s) < min_chars or (merged[-1][1] - merged[-1][0]) < min_chars
        ) and (e - merged[-1][0]) <= max_chars:
            merged[-1] = (merged[-1][0], e)
        else:
            merged.append((s, e))
    return merged


def _append_trimmed(text: str, s: int, e: int, out: list[tuple[int, int]]) -> None:
    while s < e and text[s].isspace():
        s += 1
    while e > s and text[e - 1].isspace():
        e -= 1
    if e > s:
        out.append((s, e))
