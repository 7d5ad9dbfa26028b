"""Numbers written in Arabic news text, as values: `ثلاثة آلاف` → 3000, `خمسة عشر` → 15, `3 ملايين` → 3000000.

News writes the same figure as digits (`3000`, `3,000`, `٣٠٠٠`) or as words (`ثلاثة آلاف`); this
module finds both and gives each its value and its span in the original text, so a question and
an article that write a figure differently can still match, and a quote can highlight the figure.

Covered: units (masculine and feminine), teens (`أحد عشر` … `تسعة عشر`), tens, hundreds
(`مئة`/`مائة`, `مئتان`, `ثلاثمئة` and `ثلاث مئة`), thousands, millions and billions in their
singular, dual and plural forms (`ألف`/`ألفا`/`ألفان`/`آلاف`, `مليون`/`مليونان`/`ملايين`),
parts joined by `و` (`خمسة وعشرون`, `ثلاثة آلاف وخمسمئة`), and digits followed by a scale word
(`17 ألف`, `2.5 مليون`). Digits written with thousands separators (`17,700`, `17٬700`) are read
as one figure. Ordinals (`الثالث`) and vague plurals standing alone (`آلاف`, `عشرات`) are not numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any, cast

from index.arabic import normalize, normalize_word

_UNITS = {
    "واحد": 1, "واحده": 1,
    "اثنان": 2, "اثنين": 2, "اثنتان": 2, "اثنتين": 2,
    "ثلاث": 3, "ثلاثه": 3,
    "اربع": 4, "اربعه": 4,
    "خمس": 5, "خمسه": 5,
    "ست": 6, "سته": 6,
    "سبع": 7, "سبعه": 7,
    "ثمان": 8, "ثماني": 8, "ثمانيه": 8,
    "تسع": 9, "تسعه": 9,
    "عشر": 10, "عشره": 10,
}
# Only ever the first word of a teen (أحد عشر, اثنا عشر): alone, أحد is "Sunday" or "anyone".
_TEEN_HEADS = {"احد": 1, "احدي": 1, "اثنا": 2, "اثني": 2, "اثنتا": 2, "اثنتي": 2}
_TEN = ("عشر", "عشره")
_TENS = {
    stem + end: value
    for stem, value in (("عشر", 20), ("ثلاث", 30), ("اربع", 40), ("خمس", 50), ("ست", 60), ("سبع", 70),
                        ("ثمان", 80), ("تسع", 90))
    for end in ("ون", "ين")
}
_HUNDRED = {"مئه", "مائه", "ميه"}
_HUNDREDS = {"مئتان": 200, "مئتين": 200, "مائتان": 200, "مائتين": 200, "مئتا": 200, "مائتا": 200}
for _name, _value in (("ثلاث", 3), ("اربع", 4), ("خمس", 5), ("ست", 6), ("سبع", 7), ("ثمان", 8), ("تسع", 9)):
    for _h in _HUNDRED:
        _HUNDREDS[_name + _h] = _value * 100
# Scale words: singular (count 1 when alone), dual (count 2), plural (needs a count before it).
_SCALES: dict[str, tuple[int, int | None]] = {}
for _word, _scale, _alone in (
    ("الف", 1000, 1), ("الفا", 1000, 1), ("الفان", 1000, 2), ("الفين", 1000, 2), ("الفي", 1000, 2), ("الاف", 1000, None),
    ("مليون", 10**6, 1), ("مليونا", 10**6, 1), ("مليونان", 10**6, 2), ("مليونين", 10**6, 2), ("مليوني", 10**6, 2), ("ملايين", 10**6, None),
    ("مليار", 10**9, 1), ("مليارا", 10**9, 1), ("ملياران", 10**9, 2), ("مليارين", 10**9, 2), ("ملياري", 10**9, 2), ("مليارات", 10**9, None),
    ("بليون", 10**9, 1), ("بلايين", 10**9, None),
):
    _SCALES[_word] = (_scale, _alone)
_PROCLITICS = ("وب", "ول", "و", "ب", "ل")  # و (and), ب (by/with), ل (to): tried longest first

# A figure in digits (thousands separators and one decimal part allowed) or an Arabic word.
_TOKEN_RE = re.compile(r"\d{1,3}(?:[,٬]\d{3})+(?:[.٫]\d+)?|\d+(?:[.٫]\d+)?|[\u0621-\u065f\u0670-\u06d3\u200c\u200d]+")


@dataclass(frozen=True, slots=True)
class NumberSpan:
    """A figure found in a text: its value and its span in the original."""

    value: float
    start: int
    end: int
    from_words: bool  # written (at least in part) in words, not plain digits

    @property
    def term(self) -> str:
        """The value as a search term: `3000`, `2.5`."""
        return format_value(self.value)


def format_value(value: float) -> str:
    """A figure as plain digits, no separators: 3000.0 → '3000', 2.5 → '2.5'."""
    if value == int(value):
        return str(int(value))
    return f"{value:.6f}".rstrip("0").rstrip(".")


def _word_value(word: str) -> tuple[str, int | tuple[int, int | None]] | None:
    """What one normalised word is: ('n', value), ('teen', unit), ('ten', 10) or ('scale', (scale, alone))."""
    for kind, table in (("hundreds", _HUNDREDS), ("tens", _TENS), ("unit", _UNITS), ("scale", _SCALES)):
        if word in table:
            return kind, table[word]
    if word in _TEEN_HEADS:
        return "teen", _TEEN_HEADS[word]
    if word in _HUNDRED:
        return "hundred", 100
    return None


def _classify(word: str, first: bool) -> tuple[bool, str, object] | None:
    """(joined-by-و, kind, value) of one word, trying the proclitics it may carry."""
    hit = _word_value(word)
    if hit is not None:
        return False, hit[0], hit[1]
    for clitic in _PROCLITICS:
        rest = word[len(clitic):]
        if word.startswith(clitic) and len(rest) >= 3:
            hit = _word_value(rest)
            if hit is not None:
                # ب/ل only open a number (بثلاثة آلاف); و joins it to what came before.
                if clitic.startswith("و"):
                    return True, hit[0], hit[1]
                if first:
                    return False, hit[0], hit[1]
    return None


def _digits_value(raw: str) -> float:
    text = normalize(raw).replace(",", "").replace("٬", "").replace("٫", ".")
    return float(text)


@cache
def _starters() -> frozenset[str]:
    """Every word a figure may begin with (number words, bare or after a proclitic): a set lookup skips the rest."""
    words = {*_UNITS, *_TEEN_HEADS, *_TENS, *_HUNDRED, *_HUNDREDS, *_SCALES}
    return frozenset(words | {c + w for c in _PROCLITICS for w in words})


def number_spans(text: str) -> list[NumberSpan]:
    """Every figure in `text` (digits, words, or digits with a scale word) with its value and span."""
    tokens = [(m.group(), normalize_word(m.group()), m.start(), m.end()) for m in _TOKEN_RE.finditer(text)]
    starters = _starters()
    out: list[NumberSpan] = []
    i = 0
    while i < len(tokens):
        norm = tokens[i][1]
        if not norm[:1].isdigit() and norm not in starters:
            i += 1  # neither digits nor a number word: no figure starts here
            continue
        span = _parse_at(tokens, i, text)
        if span is None:
            i += 1
            continue
        value, j, from_words = span
        out.append(NumberSpan(value, tokens[i][2], tokens[j - 1][3], from_words))
        i = j
    return out


def _only_space_between(text: str, a: int, b: int) -> bool:
    return not text[a:b].strip()


def _parse_at(tokens: list[tuple[str, str, int, int]], i: int, text: str) -> tuple[float, int, bool] | None:
    """Parse a figure starting at token i: (value, index after it, written in words)."""
    raw, norm, _, end = tokens[i]
    if norm[:1].isdigit():
        value = _digits_value(raw)
        j = i + 1
        if j < len(tokens) and _only_space_between(text, end, tokens[j][2]):
            hit = _word_value(tokens[j][1])
            if hit is not None and hit[0] == "scale":
                return value * hit[1][0], j + 1, True  # type: ignore[index]
        return value, j, False

    total: float = 0  # completed thousands/millions groups
    group: float = 0  # the part below the current scale
    j = i
    seen_any = False
    prev_end = None
    while j < len(tokens):
        _, t_norm, t_start, t_end = tokens[j]
        if prev_end is not None and not _only_space_between(text, prev_end, t_start):
            break
        cls = _classify(t_norm, first=not seen_any)
        if cls is None:
            break
        joined, kind, part = cls
        value: Any = part  # type: ignore[no-redef]
        if seen_any and not joined and kind not in ("scale", "hundred") and not (kind == "unit" and value == 10):
            break  # two numbers side by side (ثلاثة أربعة) or a new figure: stop here
        if not seen_any and joined:
            break  # a number does not start with و
        if kind == "teen":
            # أحد عشر / اثنا عشر: the head needs عشر/عشرة right after it
            if j + 1 < len(tokens) and tokens[j + 1][1] in _TEN and _only_space_between(text, t_end, tokens[j + 1][2]):
                group += 10 + value
                j += 2
                prev_end = tokens[j - 1][3]
                seen_any = True
                continue
            break
        if kind == "unit" and value == 10 and seen_any and not joined:
            # خمسة عشر: the unit just read becomes a teen
            if 0 < group % 100 < 10:
                group += 10
                j += 1
                prev_end = t_end
                continue
            break
        if kind == "hundred":
            if seen_any and not joined and 0 < group % 100 < 10 and group < 10:
                group = group * 100  # ثلاث مئة
            else:
                group += 100
        elif kind == "scale":
            scale, alone = cast("tuple[int, int | None]", value)
            if seen_any and not joined and group:
                total += group * scale
            elif alone is not None:
                total += alone * scale
            else:
                break  # آلاف with no count before it: "thousands of", not a figure
            group = 0
        else:
            group += value
        seen_any = True
        prev_end = t_end
        j += 1
    if not seen_any:
        return None
    return float(total + group), j, True
