"""Articles: parsing the outlet's plain-text format and JSONL, with a clear reason per bad file."""

from __future__ import annotations

import codecs
import errno
import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from index.errors import ArticleError

TEXT_SUFFIXES = {".txt", ".text", ".md", ""}
JSONL_SUFFIXES = {".jsonl", ".ndjson"}
DEFAULT_MAX_ARTICLE_BYTES = 5 * 1024 * 1024

_HEADING_MAX_CHARS = 80
_FINAL_PUNCT = tuple('.!?؟:;؛…"\'»”)]،,')
_DATE_FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d")


@dataclass(frozen=True, slots=True)
class Paragraph:
    """One paragraph of an article body: its span and the section heading above it."""

    start: int
    end: int
    heading: str | None


@dataclass(frozen=True, slots=True)
class Article:
    """A parsed article; `body` is the original text, every offset points into it."""

    id: str
    title: str
    source: str
    date: datetime
    body: str
    paragraphs: tuple[Paragraph, ...]
    path: str
    url: str | None = None
    encoding: str = "utf-8"

    @property
    def content_hash(self) -> str:
        """Hash of everything that is indexed or shown, so any correction is noticed."""
        h = hashlib.sha256()
        for part in (self.title, self.source, self.date.isoformat(), self.url or "", self.body):
            h.update(part.encode("utf-8"))
            h.update(b"\x00")
        return h.hexdigest()[:32]

    @property
    def date_text(self) -> str:
        """The date as people read it in a source line."""
        return format_date(self.date)


@dataclass(slots=True)
class CorpusLoad:
    """What a corpus folder yielded: good articles, rejected inputs and notices."""

    articles: list[Article] = field(default_factory=list)
    rejected: list[ArticleError] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)


def format_date(date: datetime) -> str:
    """A date as a source line shows it: the time only when the outlet gave one."""
    return date.strftime("%Y-%m-%d" if (date.hour, date.minute) == (0, 0) else "%Y-%m-%d %H:%M")


def article_id(title: str, source: str, date: datetime) -> str:
    """A stable id from what identifies a story, so a corrected body keeps its id."""
    key = f"{source.strip()}\n{date.isoformat()}\n{title.strip()}"
    return hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]


def parse_date(value: str) -> datetime:
    """Parse the date forms articles use; raises ValueError otherwise."""
    value = value.strip().translate(str.maketrans("٠١٢٣٤٥٦٧٨٩", "0123456789"))
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(value, fmt)
        except ValueError:
            continue
    return datetime.fromisoformat(value).replace(tzinfo=None)


def decode_bytes(raw: bytes, path: str) -> tuple[str, str]:
    """Decode an article file, returning (text, encoding); refuses binary and unknown encodings."""
    if raw.startswith(codecs.BOM_UTF8):
        return _strict(raw[3:], "utf-8", path), "utf-8-sig"
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return _strict(raw, "utf-16", path), "utf-16"
    if b"\x00" in raw[:4096]:
        found = _bomless_utf16(raw)
        if found is not None:
            return found
        raise ArticleError(path, "binary file (contains NUL bytes), not a text article")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        text = _try_cp1256(raw)
        if text is None:
            raise ArticleError(
                path, f"not valid UTF-8 (byte {exc.start}) and not recognisable Windows-1256 text"
            ) from None
        return text, "cp1256"
    if _control_ratio(text) > 0.01:
        raise ArticleError(path, "binary file (control characters), not a text article")
    return text, "utf-8"


def _bomless_utf16(raw: bytes) -> tuple[str, str] | None:
    """UTF-16 without a BOM: NULs only in the high byte of each unit, and it decodes to plain text.

    Arabic letters are U+06xx, so their high byte is 0x06, not 0: the test is on where the
    NULs fall (ASCII spaces, digits, newlines) and on the decoded text, not on how many there are.
    """
    if len(raw) % 2:
        return None
    sample = raw[:8192]
    even_nul, odd_nul = sample[0::2].count(0), sample[1::2].count(0)
    for encoding, high_nuls, low_nuls in (("utf-16-le", odd_nul, even_nul), ("utf-16-be", even_nul, odd_nul)):
        if high_nuls == 0 or low_nuls > 0:
            continue
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            continue
        head = text[:20000]
        printable = sum(1 for c in head if c.isprintable() or c in "\t\n\r\f")
        if _control_ratio(text) <= 0.01 and printable / max(1, len(head)) > 0.98:
            return text, encoding
    return None


def _strict(raw: bytes, encoding: str, path: str) -> str:
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        raise ArticleError(path, f"invalid {encoding} at byte {exc.start}") from None


def _control_ratio(text: str) -> float:
    sample = text[:20000]
    bad = sum(1 for c in sample if ord(c) < 32 and c not in "\t\n\r\f")
    return bad / max(1, len(sample))


def _try_cp1256(raw: bytes) -> str | None:
    """Windows-1256 only when the bytes read as mostly Arabic letters: never a silent guess."""
    try:
        text = raw.decode("cp1256")
    except UnicodeDecodeError:
        return None
    letters = [c for c in text[:20000] if c.isalpha()]
    arabic = sum(1 for c in letters if "\u0600" <= c <= "\u06ff")
    if not letters or arabic / len(letters) < 0.6 or _control_ratio(text) > 0.01:
        return None
    return text


def _is_heading(line: str, is_last: bool) -> bool:
    line = line.strip()
    return (
        not is_last
        and 0 < len(line) <= _HEADING_MAX_CHARS
        and not line.endswith(_FINAL_PUNCT)
        and len(line.split()) <= 10
    )


def split_body(body: str) -> tuple[Paragraph, ...]:
    """Paragraph spans of a body, each with the section heading above it."""
    lines: list[tuple[int, int]] = []
    pos = 0
    for line in body.split("\n"):
        s, e = pos, pos + len(line)
        pos = e + 1
        while s < e and body[s].isspace():
            s += 1
        while e > s and body[e - 1].isspace():
            e -= 1
        if e > s:
            lines.append((s, e))
    paragraphs = []
    heading: str | None = None
    for i, (s, e) in enumerate(lines):
        if _is_heading(body[s:e], is_last=(i == len(lines) - 1)):
            heading = body[s:e]
            continue
        paragraphs.append(Paragraph(s, e, heading))
    return tuple(paragraphs)


def parse_text(text: str, path: str, encoding: str = "utf-8") -> Article:
    """Parse the outlet format: title, outlet, `YYYY-MM-DD HH:MM`, then paragraphs."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")
    if not text.strip():
        raise ArticleError(path, "empty file")
    lines = text.split("\n")
    # Leading blank lines are tolerated; the header is the first three non-blank lines.
    idx = 0
    header: list[tuple[int, str]] = []
    while idx < len(lines) and len(header) < 3:
        if lines[idx].strip():
            header.append((idx + 1, lines[idx].strip()))
        idx += 1
    if len(header) < 2:
        raise ArticleError(path, "only a title: no outlet line, date line or body", line=1)
    title, source = header[0][1], header[1][1]
    if len(header) < 3:
        raise ArticleError(path, "no date line after the outlet line", line=header[1][0] + 1)
    date_line, date_value = header[2]
    try:
        date = parse_date(date_value)
    except ValueError:
        shown = date_value if len(date_value) <= 40 else date_value[:40] + "…"
        raise ArticleError(
            path, f"no valid date: expected YYYY-MM-DD HH:MM after the outlet line, found {shown!r}", line=date_line
        ) from None
    body = "\n".join(lines[idx:]).strip("\n")
    paragraphs = split_body(body)
    if not paragraphs:
        raise ArticleError(path, "title and header only: the article has no body text", line=date_line + 1)
    return Article(
        id=article_id(title, source, date),
        title=title,
        source=source,
        date=date,
        body=body,
        paragraphs=paragraphs,
        path=path,
        encoding=encoding,
    )


def parse_text_file(path: Path, display: str, max_bytes: int = DEFAULT_MAX_ARTICLE_BYTES) -> Article:
    """Read and parse one article file."""
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise ArticleError(
                display,
                f"file too large for one article ({size / 1e6:.1f} MB > {max_bytes / 1e6:.1f} MB limit)",
            )
        raw = path.read_bytes()
    except OSError as exc:
        raise ArticleError(display, f"unreadable: {exc.strerror or exc}") from None
    text, encoding = decode_bytes(raw, display)
    return parse_text(text, display, encoding)


def parse_record(record: object, display: str, line: int) -> Article:
    """Turn one JSONL object into an Article."""
    if not isinstance(record, dict):
        raise ArticleError(display, "not a JSON object", line=line)
    missing = [k for k in ("title", "source", "date", "text") if not str(record.get(k) or "").strip()]
    if missing:
        raise ArticleError(display, f"missing field(s): {', '.join(missing)}", line=line)
    try:
        date = parse_date(str(record["date"]))
    except ValueError:
        raise ArticleError(display, f"not a date ({str(record['date'])[:40]!r})", line=line) from None
    title, source = str(record["title"]).strip(), str(record["source"]).strip()
    body = str(record["text"]).replace("\r\n", "\n").replace("\r", "\n").strip("\n")
    paragraphs = split_body(body)
    if not paragraphs:
        # A one-line text that looks like a heading is still the article's only paragraph.
        s = len(body) - len(body.lstrip())
        paragraphs = (Paragraph(s, len(body.rstrip()), None),)
    given = record.get("id")
    return Article(
        id=str(given) if given not in (None, "") else article_id(title, source, date),
        title=title,
        source=source,
        date=date,
        body=body,
        paragraphs=paragraphs,
        path=f"{display}:{line}",
        url=str(record["url"]) if record.get("url") else None,
    )


def iter_jsonl(path: Path, display: str) -> Iterator[Article | ArticleError]:
    """Articles of a JSONL file, one per line; a broken line yields its error and reading goes on."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        yield ArticleError(display, f"unreadable: {exc.strerror or exc}")
        return
    with handle:
        for number, raw in enumerate(handle, start=1):
            if number == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[3:]
            if not raw.strip():
                continue
            try:
                record = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                yield ArticleError(display, "not valid UTF-8", line=number)
                continue
            except json.JSONDecodeError as exc:
                yield ArticleError(display, f"malformed JSON ({exc.msg})", line=number)
                continue
            try:
                yield parse_record(record, display, number)
            except ArticleError as err:
                yield err


def _resolve(path: Path) -> Path | str:
    """Where a symlink leads, or why it leads nowhere (a loop, a dangling or unreadable link)."""
    try:
        return path.resolve(strict=True)
    except RuntimeError:  # Python < 3.13 reports a loop this way
        return "symlink loop"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symlink loop"
        if isinstance(exc, FileNotFoundError):
            return "symlink to a missing file"
        return f"unreadable symlink ({exc.strerror})"


def corpus_files(root: Path) -> Iterator[tuple[Path, str] | ArticleError]:
    """Regular files under root (sorted, hidden ones skipped); links out of root, loops and unreadable entries are refused."""
    root = root.resolve()
    unreadable: list[OSError] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False, onerror=unreadable.append):
        while unreadable:
            failed = unreadable.pop()
            where = Path(failed.filename).relative_to(root) if failed.filename else Path(".")
            yield ArticleError(str(where), f"unreadable folder ({failed.strerror})")
        kept = []
        for d in sorted(dirnames):
            if d.startswith("."):
                continue
            sub = Path(dirpath) / d
            if sub.is_symlink():  # os.walk does not descend into it; say so when it leads outside
                target = _resolve(sub)
                if isinstance(target, str):
                    yield ArticleError(str(sub.relative_to(root)), f"{target}: not followed")
                elif not target.is_relative_to(root):
                    yield ArticleError(
                        str(sub.relative_to(root)), f"symlink to folder {target} outside the corpus folder: not followed"
                    )
                continue
            kept.append(d)
        dirnames[:] = kept
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = Path(dirpath) / name
            display = str(path.relative_to(root))
            if path.is_symlink():
                target = _resolve(path)
                if isinstance(target, str):
                    yield ArticleError(display, f"{target}: not followed")
                    continue
                if not target.is_relative_to(root):
                    yield ArticleError(display, f"symlink to {target} outside the corpus folder: not followed")
                    continue
                if target.is_file():
                    continue  # the target itself is listed under its own name
            try:
                regular = path.is_file()
            except OSError as exc:
                yield ArticleError(display, f"unreadable ({exc.strerror})")
                continue
            if not regular:
                yield ArticleError(display, "not a regular file")
                continue
            yield path, display
    for failed in unreadable:
        yield ArticleError(str(failed.filename or root), f"unreadable folder ({failed.strerror})")


def load_corpus(root: Path, max_bytes: int = DEFAULT_MAX_ARTICLE_BYTES) -> CorpusLoad:
    """Parse every article under root; bad inputs are rejected one by one, the rest loads."""
    result = CorpusLoad()
    if not root.is_dir():
        raise ArticleError(str(root), "corpus folder not found")
    seen_ids: dict[str, str] = {}
    seen_hashes: dict[str, str] = {}

    def accept(article: Article, display: str, line: int | None = None) -> None:
        digest = article.content_hash
        if digest in seen_hashes:
            result.rejected.append(
                ArticleError(display, f"duplicate: the same article as {seen_hashes[digest]} (kept that one)", line=line)
            )
            return
        if article.id in seen_ids:
            result.rejected.append(
                ArticleError(
                    display,
                    f"duplicate article id {article.id!r}, already used by {seen_ids[article.id]} (kept that one)",
                    line=line,
                )
            )
            return
        seen_ids[article.id] = article.path
        seen_hashes[digest] = article.path
        if article.encoding not in ("utf-8", "utf-8-sig"):
            shown = {"cp1256": "Windows-1256 (cp1256)"}.get(article.encoding, article.encoding.upper())
            result.notices.append(f"{article.path}: not UTF-8; decoded as {shown}")
        result.articles.append(article)

    for item in corpus_files(root):
        if isinstance(item, ArticleError):
            result.rejected.append(item)
            continue
        path, display = item
        if path.suffix.lower() in JSONL_SUFFIXES:
            for parsed in iter_jsonl(path, display):
                if isinstance(parsed, ArticleError):
                    result.rejected.append(parsed)
                else:
                    accept(parsed, display, int(parsed.path.rsplit(":", 1)[1]))
            continue
        try:
            accept(parse_text_file(path, display, max_bytes), display)
        except ArticleError as err:
            result.rejected.append(err)
    return result


_WS_RE = re.compile(r"\s+")


def collapse_ws(text: str) -> str:
    """Single-space a snippet for one-line display."""
    return _WS_RE.sub(" ", text).strip()
