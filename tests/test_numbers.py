"""Figures in Arabic news text: words and digits read as values, with spans into the original."""

import pytest

from index.numbers import format_value, number_spans


@pytest.mark.parametrize(
    ("text", "value", "quoted"),
    [
        ("ثلاثة آلاف", 3000, "ثلاثة آلاف"),
        ("خمسة عشر", 15, "خمسة عشر"),
        ("أحد عشر لاعبا", 11, "أحد عشر"),
        ("اثنتا عشرة دولة", 12, "اثنتا عشرة"),
        ("خمسة وعشرون ألفا", 25000, "خمسة وعشرون ألفا"),
        ("ثلاثة آلاف وخمسمئة", 3500, "ثلاثة آلاف وخمسمئة"),
        ("مئتان وخمسون", 250, "مئتان وخمسون"),
        ("ثلاث مئة", 300, "ثلاث مئة"),
        ("مليون نسمة", 1_000_000, "مليون"),
        ("ألفي شخص", 2000, "ألفي"),
        ("بثلاثة ملايين دولار", 3_000_000, "بثلاثة ملايين"),
        ("3 ملايين دولار", 3_000_000, "3 ملايين"),
        ("2.5 مليون", 2_500_000, "2.5 مليون"),
        ("جمع 17,700 متتبع", 17700, "17,700"),
        ("جمع ١٧٬٧٠٠ متتبع", 17700, "١٧٬٧٠٠"),
        ("ثَلاثَةُ آلافٍ", 3000, "ثَلاثَةُ آلافٍ"),
        ("عشرة آلاف", 10000, "عشرة آلاف"),
    ],
)
def test_figures_read_as_values(text: str, value: int, quoted: str) -> None:
    spans = number_spans(text)
    assert spans, text
    assert spans[0].value == value
    assert text[spans[0].start : spans[0].end] == quoted


@pytest.mark.parametrize("text", ["يوم الأحد", "آلاف الأشخاص", "عشرات القتلى", "الثالث من الشهر"])
def test_words_that_are_not_figures(text: str) -> None:
    assert number_spans(text) == []


def test_two_figures_side_by_side_stay_apart() -> None:
    assert [s.value for s in number_spans("بين ثلاثة أربعة")] == [3, 4]
    assert [s.value for s in number_spans("عام 2014 قتل 17 شخصا")] == [2014, 17]


def test_format_value() -> None:
    assert format_value(3000.0) == "3000"
    assert format_value(2.5) == "2.5"
