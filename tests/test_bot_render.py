"""Rendering, splitting, button keys, the per-user limit and token redaction, without a server."""

from __future__ import annotations

import io
import logging
from datetime import datetime

import pytest

from bot.callbacks import ARTICLE, QUESTION, CallbackStore, decode, encode, short_key
from bot.flood import UserLimiter
from bot.render import MESSAGE_LIMIT, pack, quote_html, render_page, source_html, split_paragraphs, split_plain, tg_len
from bot.telegram import RedactingFormatter
from retrieval.types import Hit, Quote, Source
from tests.bot_harness import visible_text

SOURCE = Source("id1", "شركة <النور & الأمل>", "نشرة <التقنية> & الأعمال", datetime(2024, 2, 20, 11, 0), None)


def hit(text: str, highlights=()) -> Hit:
    return Hit(0, 0, SOURCE, None, Quote(text, 0, len(text), tuple(highlights)), 1.0)


def test_quote_is_escaped_and_highlighted_without_breaking_entities():
    q = Quote("رموز <بداية> & <نهاية>", 0, 22, ((6, 11), (15, 15)))  # an empty span is ignored
    assert quote_html(q) == "رموز &lt;<b>بداية</b>&gt; &amp; &lt;نهاية&gt;"
    assert visible_text(quote_html(q)) == q.text


def test_source_line_escapes_and_links_only_http_urls():
    assert source_html(SOURCE) == "<i>شركة &lt;النور &amp; الأمل&gt; — نشرة &lt;التقنية&gt; &amp; الأعمال — 2024-02-20 11:00</i>"
    linked = Source("x", "t", "o", datetime(2024, 1, 1), 'https://e.org/?a=1&b="2"')
    assert source_html(linked) == '<i><a href="https://e.org/?a=1&amp;b=&quot;2&quot;">t</a> — o — 2024-01-01</i>'
    assert "href" not in source_html(Source("x", "t", "o", datetime(2024, 1, 1), "javascript:alert(1)"))


def test_page_stops_before_4096_and_reports_how_many_it_shows():
    long_quote = "ج" * 1500
    page = render_page([hit(long_quote) for _ in range(5)], "ar")
    assert page.shown == 2 and tg_len(page.html) <= MESSAGE_LIMIT
    visible_text(page.html)


def test_split_plain_cuts_at_sentences_then_words():
    sentences = [f"جملة رقم {i} تنتهي هنا." for i in range(400)]
    text = " ".join(sentences)
    pieces = split_plain(text, 500)
    assert all(len(p) <= 500 for p in pieces)
    assert " ".join(pieces) == text
    assert all(p.endswith(".") for p in pieces)  # never inside a sentence
    words = " ".join(["كلمة"] * 1000)  # one endless sentence: cut between words
    wp = split_plain(words, 300)
    assert all(len(p) <= 300 for p in wp) and " ".join(wp) == words
    blob = "x" * 1000
    assert "".join(split_plain(blob, 300)) == blob


def test_split_counts_escaped_length():
    text = "&" * 3000  # 3000 visible characters, 15000 in HTML
    pieces = split_plain(text, MESSAGE_LIMIT)
    assert all(tg_len(p.replace("&", "&amp;")) <= MESSAGE_LIMIT for p in pieces)
    assert "".join(pieces) == text


def test_paragraphs_pack_into_messages_at_paragraph_boundaries():
    paragraphs = [(None if i < 3 else "عنوان القسم", (f"الفقرة {i}: " + "نص طويل. " * 150).strip()) for i in range(12)]
    messages = split_paragraphs(paragraphs, head="<b>العنوان</b>")
    assert len(messages) > 2 and all(tg_len(m) <= MESSAGE_LIMIT for m in messages)
    blocks = [b for m in messages for b in visible_text(m).split("\n\n")]
    assert blocks[0] == "العنوان" and blocks.count("عنوان القسم") == 1
    assert [b for b in blocks if b.startswith("الفقرة")] == [p for _, p in paragraphs]
    with pytest.raises(ValueError):
        pack(["x" * (MESSAGE_LIMIT + 1)])


def test_callback_data_is_compact_and_survives_a_restart(tmp_path):
    store = CallbackStore(tmp_path / "state.sqlite")
    question = "سؤال طويل جدا " * 40
    qkey = store.put(QUESTION, question)
    akey = store.put(ARTICLE, "x" * 300)
    assert qkey == short_key(QUESTION, question) and len(qkey) == 12
    data = encode(QUESTION, qkey, 123456)
    assert len(data.encode()) <= 64 and decode(data).offset == 123456
    store.close()
    again = CallbackStore(tmp_path / "state.sqlite")
    assert again.get(QUESTION, qkey) == question
    assert again.get(ARTICLE, decode(encode(ARTICLE, akey)).key) == "x" * 300
    assert again.get(ARTICLE, qkey) is None  # kinds do not mix
    again.close()
    assert CallbackStore(tmp_path / "state.sqlite", keep_days=0).get(QUESTION, qkey) is None  # old keys pruned
    for bad in ("", "m:short:1", "m:AAAAAAAAAAAA:x", "a:AAAAAAAAAAAA:1", "zz:AAAAAAAAAAAA", None):
        assert decode(bad) is None


def test_user_limiter_allows_n_per_minute_and_warns_once():
    now = [0.0]
    limiter = UserLimiter(2, clock=lambda: now[0])
    assert limiter.check(1) == (True, False, 0)
    assert limiter.check(1) == (True, False, 0)
    allowed, warn, wait = limiter.check(1)
    assert (allowed, warn) == (False, True) and wait == 60
    assert limiter.check(1)[:2] == (False, False)  # no second warning
    assert limiter.check(2)[0]  # other users unaffected
    now[0] = 60.5
    assert limiter.check(1) == (True, False, 0)


def test_token_is_redacted_from_log_lines_and_tracebacks():
    token = "4242001:TEST-fake-token_abcdefghijklmnopqrstuv"
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(RedactingFormatter(logging.Formatter("%(message)s"), token))
    logger = logging.getLogger("test.redact")
    logger.addHandler(handler)
    try:
        logger.warning("POST https://api.telegram.org/bot%s/getMe", token)
        try:
            raise RuntimeError(f"failed at /bot{token}/sendMessage")
        except RuntimeError:
            logger.exception("boom")
    finally:
        logger.removeHandler(handler)
    out = stream.getvalue()
    assert token not in out and out.count("<TELEGRAM_BOT_TOKEN>") == 2 and "Traceback" in out
