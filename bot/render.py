"""Answers and articles as Telegram HTML messages: escaped, highlighted, within 4096 characters, with buttons."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.texts import text
from index.arabic import sentence_spans
from retrieval.types import Hit, Quote, Source

MESSAGE_LIMIT = 4096  # Telegram's limit on one message's text


def tg_len(s: str) -> int:
    """Length as Telegram counts it (UTF-16 code units); HTML source is counted, which is never less."""
    return len(s.encode("utf-16-le")) // 2


def esc(s: str) -> str:
    """Escape text for HTML parse mode."""
    return html.escape(s, quote=False)


def quote_html(quote: Quote) -> str:
    """The verbatim quote, escaped, with the words that matched the question in bold."""
    out: list[str] = []
    pos = 0
    for s, e in sorted(quote.highlights):
        if s < pos or e <= s or e > len(quote.text):
            continue  # overlapping or out-of-range span: never produce broken tags
        out.append(esc(quote.text[pos:s]))
        out.append(f"<b>{esc(quote.text[s:e])}</b>")
        pos = e
    out.append(esc(quote.text[pos:]))
    return "".join(out)


def source_html(source: Source) -> str:
    """The source line: title — outlet — date (the title links to the article when it has a URL)."""
    title = esc(source.title)
    if source.url and re.match(r"https?://", source.url):
        title = f'<a href="{html.escape(source.url, quote=True)}">{title}</a>'
    return f"<i>{title} — {esc(source.outlet)} — {esc(source.date_text)}</i>"


def hit_html(n: int, hit: Hit) -> str:
    """One numbered quote followed by its source line."""
    return f"<b>{n}.</b> «{quote_html(hit.quote)}»\n{source_html(hit.source)}"


@dataclass(frozen=True, slots=True)
class Page:
    """One message of an answer: its HTML and how many hits it shows."""

    html: str
    shown: int


def render_page(hits: Sequence[Hit], lang: str, offset: int = 0, question: str | None = None, note: str = "") -> Page:
    """Hits numbered from offset+1 in one message; hits that would overflow 4096 wait for the next page.

    `note` (HTML, a line or two: follow-up, filters) opens the message.
    """
    lead = f"{note}\n\n" if note else ""
    header = lead
    if offset > 0 and question is not None:
        header = lead + text("page_header", lang, first=offset + 1, last=offset + len(hits), question=esc(question)) + "\n\n"
    blocks: list[str] = []
    for i, hit in enumerate(hits):
        block = hit_html(offset + i + 1, hit)
        candidate = header + "\n\n".join(blocks + [block])
        if blocks and tg_len(candidate) > MESSAGE_LIMIT:
            break
        if not blocks and tg_len(candidate) > MESSAGE_LIMIT:
            block = hit_html(offset + i + 1, _shortened(hit, MESSAGE_LIMIT - tg_len(header) - 600))
        blocks.append(block)
    if offset > 0 and question is not None and len(blocks) != len(hits):
        header = lead + text("page_header", lang, first=offset + 1, last=offset + len(blocks), question=esc(question)) + "\n\n"
    return Page(header + "\n\n".join(blocks), len(blocks))


def _shortened(hit: Hit, limit: int) -> Hit:
    """A hit whose quote is cut (with …) to fit; quotes are short, so this is a guard only."""
    from dataclasses import replace

    q = hit.quote
    cut = max(1, limit // 2)
    quote = Quote(q.text[:cut] + "…", q.start, q.start + cut, tuple((s, e) for s, e in q.highlights if e <= cut))
    return replace(hit, quote=quote)


def answer_keyboard(
    lang: str,
    article_data: Sequence[str],
    more_data: str | None,
    previous_data: str | None = None,
    offset: int = 0,
    vote_data: tuple[str, str] | None = None,
    narrow: Sequence[tuple[str, str]] = (),
) -> InlineKeyboardMarkup | None:
    """One 📄 button per quote (full article), 👍/👎 (vote_data: up, down), previous/more, then (label, data)
    buttons that narrow the answer."""
    rows: list[list[InlineKeyboardButton]] = []
    buttons = [
        InlineKeyboardButton(text("article_button", lang, n=offset + i + 1), callback_data=data)
        for i, data in enumerate(article_data)
    ]
    for i in range(0, len(buttons), 5):
        rows.append(buttons[i : i + 5])
    if vote_data:
        up, down = vote_data
        rows.append([InlineKeyboardButton(text("vote_up", lang), callback_data=up),
                     InlineKeyboardButton(text("vote_down", lang), callback_data=down)])
    nav = []
    if previous_data:
        nav.append(InlineKeyboardButton(text("previous", lang), callback_data=previous_data))
    if more_data:
        nav.append(InlineKeyboardButton(text("more", lang), callback_data=more_data))
    if nav:
        rows.append(nav)
    for i in range(0, len(narrow), 2):
        rows.append([InlineKeyboardButton(label, callback_data=data) for label, data in narrow[i : i + 2]])
    return InlineKeyboardMarkup(rows) if rows else None


# --- splitting long texts -------------------------------------------------------------------


def split_plain(s: str, limit: int) -> list[str]:
    """Raw text cut into pieces whose escaped form fits `limit`: at sentences, then words, then anywhere."""
    if tg_len(esc(s)) <= limit:
        return [s]
    pieces: list[str] = []
    units = [s[a:b] for a, b in sentence_spans(s)] or [s]
    if len(units) == 1:
        units = s.split(" ")
        if len(units) == 1:
            return _hard_split(s, limit)
    current = ""
    sep = " "
    for unit in units:
        if tg_len(esc(unit)) > limit:
            if current:
                pieces.append(current)
                current = ""
            pieces.extend(split_plain(unit, limit))
            continue
        candidate = f"{current}{sep}{unit}" if current else unit
        if tg_len(esc(candidate)) > limit:
            pieces.append(current)
            current = unit
        else:
            current = candidate
    if current:
        pieces.append(current)
    return pieces


def _hard_split(s: str, limit: int) -> list[str]:
    out, current = [], ""
    for ch in s:
        if tg_len(esc(current + ch)) > limit:
            out.append(current)
            current = ""
        current += ch
    return out + ([current] if current else [])


def pack(blocks: Iterable[str], limit: int = MESSAGE_LIMIT, sep: str = "\n\n") -> list[str]:
    """Self-contained HTML blocks packed greedily into messages of at most `limit` characters."""
    messages: list[str] = []
    current = ""
    for block in blocks:
        if tg_len(block) > limit:
            raise ValueError("a block longer than one message must be split before packing")
        candidate = f"{current}{sep}{block}" if current else block
        if tg_len(candidate) > limit:
            messages.append(current)
            current = block
        else:
            current = candidate
    if current:
        messages.append(current)
    return messages


def split_paragraphs(paragraphs: Iterable[tuple[str | None, str]], head: str = "", limit: int = MESSAGE_LIMIT) -> list[str]:
    """Paragraphs (heading, text) as HTML messages, split at paragraph, then sentence, boundaries."""
    blocks: list[str] = [head] if head else []
    last_heading: str | None = None
    for heading, body in paragraphs:
        if heading and heading != last_heading:
            blocks.extend(f"<b>{esc(h)}</b>" for h in split_plain(heading, limit - 7))
            last_heading = heading
        blocks.extend(esc(piece) for piece in split_plain(body, limit))
    return pack(blocks, limit)


def article_messages(title: str, source: Source, paragraphs: Iterable[tuple[str | None, str]]) -> list[str]:
    """A whole article: bold title and source line, then its paragraphs, in ≤4096-character messages."""
    name = f"<b>{esc(title)}</b>"
    if source.url and re.match(r"https?://", source.url):
        name = f'<a href="{html.escape(source.url, quote=True)}">{name}</a>'
    head = f"{name}\n<i>{esc(source.outlet)} — {esc(source.date_text)}</i>"
    if tg_len(head) > MESSAGE_LIMIT:
        head = f"<b>{esc(title[:1000])}…</b>"
    return split_paragraphs(paragraphs, head)
