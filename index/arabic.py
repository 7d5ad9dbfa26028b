"""Arabic text handling: normalisation for matching, BM25 tokens, sentence and clause spans.

Nothing here alters the original text: tokenisers and splitters return character spans into it,
so callers can always quote the original verbatim.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from index.numbers import NumberSpan  # index.numbers imports this module

# Bump whenever anything below can change normalize/terms/stem/sentence_spans/clause_spans output (or the
# chunking built on them): indexes record it, `index update` rebuilds in full when it differs, and serving
# refuses a version analysed otherwise (stored BM25 terms and sentence-vector offsets would be misread).
# tests/test_analyser_version.py holds the golden hash of the output for each version.
ANALYSER_VERSION = 2

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

# Proclitic + article clusters, longest first; a bare و is stripped when none of these applies.
_PREFIXES = ("وبال", "وكال", "فبال", "ولل", "فلل", "وال", "بال", "كال", "فال", "لل", "ال")
_BARE_PROCLITICS = ("ب", "ل", "ك")  # prepositions written onto a word without the article
# Plural/feminine endings and third-person pronouns (news is written in the third person;
# كم/كن/نا/كما mostly end words that are not inflected: محاكم, اماكن, كارولينا, احيانا).
_SUFFIXES = ("هما", "ها", "هم", "هن", "ان", "ات", "ون", "ين", "يه", "ه", "ي")
_PRONOUNS = frozenset(("هما", "هم", "هن", "ها", "ه", "كما", "كم", "كن", "نا"))
_PLURAL_PRONOUNS = frozenset(("هما", "هم", "هن", "كما", "كم", "كن", "نا"))

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


def mostly_arabic(text: str) -> bool:
    """More than half of the text's letters are Arabic: a question written in Arabic."""
    letters = [ch for ch in text if ch.isalpha()]
    arabic = sum("\u0600" <= ch <= "\u06ff" or "\u0750" <= ch <= "\u077f" for ch in letters)
    return arabic * 2 > len(letters) > 0


def normalize(text: str) -> str:
    """Fold the spelling variants of Arabic (and Latin case) so equal words compare equal."""
    return _STRIP_RE.sub("", text).translate(_CHAR_MAP).lower()


@lru_cache(maxsize=1 << 17)
def normalize_word(word: str) -> str:
    """normalize() of one word, remembered: news repeats its words, and every text is cut into words many times."""
    return normalize(word)


def make_stemmer(
    *,
    suffixes: tuple[str, ...] = _SUFFIXES,
    pronoun_min: int = 4,
    restore_ta: bool = True,
    bare_proclitic_min: int | None = None,
    ending_min: int = 2,
) -> Callable[[str], str]:
    """A light stemmer with these settings (bench/lexical_ablation.py measures the alternatives).

    pronoun_min: the shortest stem a two-letter pronoun (هم هن هما) may leave: تفاهم, لديهم stay whole.
    restore_ta: حكومتها → حكومت → حكومه, so it meets حكومة (ة is folded to ه).
    bare_proclitic_min: strip a lone ب/ل/ك (بمدينة) when at least this many letters remain; None: never.
    ending_min: the shortest stem any other suffix may leave (2: مدينة → مدين → مد; 3: مدين stays).
    """

    @lru_cache(maxsize=200_000)
    def stem_(token: str) -> str:
        if not token or not ("\u0600" <= token[0] <= "\u06ff"):
            return token
        bare = False  # a lone ب/ل/ك to take off once the suffixes are gone
        for prefix in _PREFIXES:
            if token.startswith(prefix) and len(token) - len(prefix) >= 2:
                token = token[len(prefix) :]
                break
        else:
            if len(token) > 3 and token[0] == "و":
                token = token[1:]
            bare = bare_proclitic_min is not None and token[:1] in _BARE_PROCLITICS
        changed = True
        while changed:
            changed = False
            for suffix in suffixes:
                if not token.endswith(suffix):
                    continue
                floor = pronoun_min if suffix in _PLURAL_PRONOUNS else ending_min
                if len(token) - len(suffix) < floor:
                    continue
                token = token[: -len(suffix)]
                if suffix in _PRONOUNS and restore_ta and len(token) >= 5 and token[-1] == "ت" and not token.endswith("ات"):
                    token = token[:-1] + "ه"
                changed = True
                break
        # After the suffixes, so the length test sees the stem: لاعبين → لاعب stays whole like لاعب.
        if bare and len(token) - 1 >= bare_proclitic_min:  # type: ignore[operator]
            token = token[1:]
        return token

    return stem_


# Chosen on half A of the development sets, checked on half B (bench/RESULTS.md, lexical ablation).
STEMMER_SETTINGS = {"bare_proclitic_min": 4, "ending_min": 3}
_stem = make_stemmer(bare_proclitic_min=STEMMER_SETTINGS["bare_proclitic_min"], ending_min=STEMMER_SETTINGS["ending_min"])


def stem(token: str) -> str:
    """Light stemming of one normalised token: proclitics, the article and attached pronouns off.

    Light10-style and conservative: و, or one article/preposition cluster (وبال, بال, لل, ال …);
    then third-person pronouns (ه ها هم هن هما) and plural/feminine endings, repeatedly. A plural
    pronoun is only cut from a long word, so short words stay whole; حكومتها meets حكومة.
    """
    return _stem(token)


@dataclass(frozen=True, slots=True)
class Token:
    """One word of the original text: its normalised form and where it sits."""

    norm: str
    start: int
    end: int


def raw_words(text: str) -> list[str]:
    """Every word of `text` exactly as written (no normalisation)."""
    return _WORD_RE.findall(text)


def word_spans(text: str) -> list[Token]:
    """Every word of `text` with its normalised form and its span in the original."""
    out = []
    for m in _WORD_RE.finditer(text):
        norm = normalize_word(m.group())
        if norm:
            out.append(Token(norm, m.start(), m.end()))
    return out


def terms(text: str, *, keep_stopwords: bool = False) -> list[str]:
    """The BM25 terms of a document (or any text): normalised, stemmed, function words dropped.

    Also: the parts of joined hashtags (`#بغداد_اليوم` → بغداد, يوم) and the value of each figure
    written in words or with separators (`ثلاثة آلاف` → 3000, `17,700` → 17700), words kept too.
    """
    return [t.term for t in term_spans(text, keep_stopwords=keep_stopwords)]


def question_terms(text: str) -> list[str]:
    """The BM25 terms of a question: `terms(text)` plus each pair of adjacent content words joined.

    News writes handles and names joined (`@شاميويتنس`, `عبدالله`) where a reader types them apart
    (`شامي ويتنس`); the joined pair finds them. A superset of `terms(text)`.
    """
    return [t.term for t in term_spans(text, question=True)]


@dataclass(frozen=True, slots=True)
class TermSpan:
    """One search term and the span of the original text it came from (a word, a hashtag part,
    a figure written in several words, or — for questions — two adjacent words)."""

    term: str
    start: int
    end: int


def term_spans(
    text: str,
    *,
    keep_stopwords: bool = False,
    question: bool = False,
    stemmer: Callable[[str], str] | None = None,
    numbers: bool = True,
    split_joined: bool = True,
    figures: Sequence[NumberSpan] | None = None,
) -> list[TermSpan]:
    """The terms of `text` in order with their spans: what `terms` and `question_terms` return.

    question=True adds the joined pair of each two adjacent content words. The keyword
    arguments after it exist so bench/lexical_ablation.py can measure each part on its own;
    `figures` passes `number_spans(text)` when the caller has it already (it is the costly part).
    """
    stem_fn = stemmer or stem
    out: list[TermSpan] = []
    prev: tuple[str, int, int] | None = None  # the previous content word (normalised), for pairs
    for m in _WORD_RE.finditer(text):
        norm = normalize_word(m.group())
        if not norm:
            continue
        parts = _joined_parts(norm, m.group()) if split_joined else None
        if parts:
            for p_norm, p_start, p_end in parts:
                if keep_stopwords or p_norm not in STOPWORDS:
                    out.append(TermSpan(stem_fn(p_norm), m.start() + p_start, m.start() + p_end))
            whole = norm.replace("_", "")
            if whole.isalpha() and "_" not in m.group() and len(parts) > 1:
                out.append(TermSpan(stem_fn(whole), m.start(), m.end()))  # ShamiWitness: the whole handle too
            prev = None
            continue
        if not keep_stopwords and norm in STOPWORDS:
            prev = None
            continue
        out.append(TermSpan(stem_fn(norm), m.start(), m.end()))
        if question:
            if prev is not None and not text[prev[2] : m.start()].strip() and norm.isalpha() and prev[0].isalpha():
                out.append(TermSpan(stem_fn(prev[0] + norm), prev[1], m.end()))
            prev = (norm, m.start(), m.end()) if norm not in STOPWORDS else None
    if numbers:
        from index.numbers import number_spans  # here: index.numbers imports this module

        for n in number_spans(text) if figures is None else figures:
            raw = normalize(text[n.start : n.end])
            if n.from_words or not raw.isdigit():
                out.append(TermSpan(n.term, n.start, n.end))
        out.sort(key=lambda t: (t.start, t.end))
    return out


_CAMEL_RE = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")


def _joined_parts(norm: str, raw: str) -> list[tuple[str, int, int]] | None:
    """The words inside one joined token — `بغداد_اليوم`, `ShamiWitness` — with spans; None if it is one word.

    Offsets are into `raw`; normalising never changes a token's length except by dropping marks,
    so parts are only cut where raw and norm line up (no marks), else the token stays whole.
    """
    if "_" in raw:
        out, pos = [], 0
        for piece in raw.split("_"):
            p = normalize_word(piece)
            if p:
                out.append((p, pos, pos + len(piece)))
            pos += len(piece) + 1
        return out or None
    if raw.isascii() and any(c.isupper() for c in raw[1:]) and any(c.islower() for c in raw):
        pieces = [(m.group().lower(), m.start(), m.end()) for m in _CAMEL_RE.finditer(raw)]
        return pieces if len(pieces) > 1 else None
    return None


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
