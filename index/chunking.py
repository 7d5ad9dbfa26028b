"""Article → chunks: paragraph- and sentence-aware spans sized for the embedding model."""

from __future__ import annotations

from dataclasses import dataclass

from index.arabic import clause_spans
from index.articles import Article

DEFAULT_MAX_CHARS = 600
DEFAULT_MIN_CHARS = 150


@dataclass(frozen=True, slots=True)
class Chunk:
    """A span of one article's body; `text` is exactly body[start:end]."""

    id: str
    article_id: str
    ord: int
    section: str | None
    start: int
    end: int
    text: str

    @property
    def embed_text(self) -> str:
        """What the embedding model reads: the section heading gives the span its topic."""
        return f"{self.section}\n{self.text}" if self.section else self.text


SENTENCE_MAX_CHARS = 240


def chunk_sentences(body: str, start: int, end: int) -> list[tuple[int, int]]:
    """The sentences/clauses of a chunk (≤ ~240 chars each): what quotes are built from and scored by."""
    return clause_spans(body, start, end, max_chars=SENTENCE_MAX_CHARS)


def chunk_article(
    article: Article, max_chars: int = DEFAULT_MAX_CHARS, min_chars: int = DEFAULT_MIN_CHARS
) -> list[Chunk]:
    """Cut each paragraph into runs of whole sentences/clauses of at most ~max_chars.

    Chunks never cross paragraphs (a paragraph is one unit of a news story); a short tail is
    folded into the chunk before it so no chunk is a lone fragment.
    """
    body = article.body
    chunks: list[Chunk] = []
    for para in article.paragraphs:
        spans = clause_spans(body, para.start, para.end, max_chars=min(240, max_chars))
        groups: list[list[int]] = []
        for s, e in spans:
            if groups and e - groups[-1][0] <= max_chars:
                groups[-1][1] = e
            else:
                groups.append([s, e])
        if len(groups) > 1 and groups[-1][1] - groups[-1][0] < min_chars:
            tail = groups.pop()
            groups[-1][1] = tail[1]
        for s, e in groups:
            chunks.append(
                Chunk(
                    id=f"{article.id}:{len(chunks)}",
                    article_id=article.id,
                    ord=len(chunks),
                    section=para.heading,
                    start=s,
                    end=e,
                    text=body[s:e],
                )
            )
    return chunks
