"""Article -> Chunks of a few whole sentences, with offsets into the article.

A chunk never cuts a sentence and never crosses a paragraph break unless the
paragraph so far is only a short line (a subheading joins the paragraph it
heads). Chunk ids come from the document id and the chunk's own text, so an
unchanged article always yields the same ids.
"""

from __future__ import annotations

import hashlib

from .text import split_sentences
from .types import Article, Chunk


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset)


def chunk_article(article: Article, max_chars: int, min_chars: int) -> list[Chunk]:
    """Split `article` into chunks of at most `max_chars` (a longer sentence
    stands alone) such that `article.text[c.start:c.end] == c.text`.

    >>> from rag.ingest import content_hash
    >>> a = Article("d", "t", "One. Two.\\nThree.", content_hash(""))
    >>> [c.text for c in chunk_article(a, max_chars=9, min_chars=1)]
    ['One. Two.', 'Three.']
    """
    text = article.text
    groups: list[list[tuple[int, int]]] = []
    current: list[tuple[int, int]] = []
    current_line = -1
    for start, end in split_sentences(text):
        line = _line_of(text, start)
        if current:
            new_paragraph = line != current_line
            long_enough = current[-1][1] - current[0][0] >= min_chars
            if (new_paragraph and long_enough) or end - current[0][0] > max_chars:
                groups.append(current)
                current = []
        current.append((start, end))
        current_line = line
    if current:
        groups.append(current)

    chunks: list[Chunk] = []
    seen: dict[str, int] = {}
    for spans in groups:
        start, end = spans[0][0], spans[-1][1]
        body = text[start:end]
        digest = hashlib.sha256(body.encode("utf-8")).hexdigest()[:16]
        # The same text twice in one article still needs two distinct ids.
        seen[digest] = seen.get(digest, 0) + 1
        suffix = "" if seen[digest] == 1 else f"-{seen[digest]}"
        chunks.append(Chunk(f"{article.doc_id}#{digest}{suffix}", article.doc_id, body, start, end, tuple(spans)))
    return chunks
