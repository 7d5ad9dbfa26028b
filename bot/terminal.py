"""Printing Arabic answers in a terminal: wrapped, and reordered for terminals without BiDi."""

from __future__ import annotations

import os
import shutil
import textwrap

from retrieval.types import Answer

# Terminals that lay out right-to-left text themselves; elsewhere we reorder for them.
_BIDI_TERMINALS = ("VTE_VERSION", "KONSOLE_VERSION", "MLTERM")


def wants_visual_order(mode: str, isatty: bool) -> bool:
    """Whether to reorder lines visually: 'on', 'off', or 'auto' (a tty without native BiDi)."""
    if mode == "on":
        return True
    if mode == "off":
        return False
    return isatty and not any(v in os.environ for v in _BIDI_TERMINALS)


def _has_rtl(text: str) -> bool:
    return any("\u0590" <= c <= "\u08ff" or "\ufb50" <= c <= "\ufeff" for c in text)


def display_lines(text: str, width: int, visual: bool) -> list[str]:
    """Wrap to width first, then (if visual) shape and reorder each line on its own."""
    lines = textwrap.wrap(text, width=max(20, width)) or [""]
    if not visual or not _has_rtl(text):
        return lines
    import arabic_reshaper
    from bidi import get_display

    out = []
    for line in lines:
        shown = get_display(arabic_reshaper.reshape(line), base_dir="R")
        out.append(shown.rjust(width))
    return out


def format_answer(answer: Answer, visual: bool, width: int | None = None) -> str:
    """An answer as terminal text: numbered quotes, each with its source line."""
    width = width or min(100, shutil.get_terminal_size((100, 24)).columns)
    if not answer.found and answer.declined == "content-free":
        msg = "لا أجد في سؤالك كلمات أبحث عنها. / Your question has no words to search for: write it in words."
        return "\n".join(display_lines(msg, width, visual))
    if not answer.found:
        msg = "لم أجد في المقالات ما يجيب عن هذا السؤال. جرّب صياغة أخرى. / Nothing in the corpus answers this; try rephrasing."
        return "\n".join(display_lines(msg, width, visual))
    blocks = []
    for n, hit in enumerate(answer.hits, 1):
        quote = display_lines(f"«{hit.quote.text}»", width - 4, visual)
        src = f"{hit.source.title} — {hit.source.outlet} — {hit.source.date_text}"
        block = [f"[{n}] " + quote[0]] + ["    " + q for q in quote[1:]]
        block += ["    " + line for line in display_lines(src, width - 4, visual)]
        blocks.append("\n".join(block))
    return "\n\n".join(blocks)
