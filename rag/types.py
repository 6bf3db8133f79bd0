"""The typed records passed between pipeline stages.

An Article splits into Chunks; a Chunk returned by search with a score is a
Passage; an Answer carries Citations; a Citation points at a quote in its
article by character offsets. Every record is frozen and JSON-friendly
(`to_dict`), so the command line, the app and the eval read the same shapes.
A DraftGenerator is what every stage that asks the model (drafting,
translating) needs of it, in-process or remote.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Article:
    """One news article as read from disk; `text` is the file's exact content."""

    doc_id: str  # the file's stem, e.g. "004_8845b63d3c664428"
    title: str
    text: str
    content_hash: str  # sha256 of `text` encoded as UTF-8
    path: str = ""
    publisher: str | None = None  # None where the article does not say
    author: str | None = None
    date: str | None = None  # ISO date, only where the text states one


@dataclass(frozen=True)
class Chunk:
    """A few whole sentences of one article: `article.text[start:end] == text`."""

    chunk_id: str  # "<doc_id>#<content hash>", stable across re-ingests
    doc_id: str
    text: str
    start: int
    end: int
    # Absolute (start, end) offsets of each sentence inside the article, in
    # order; citations quote whole sentences from these spans.
    sentences: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class Passage:
    """A chunk found by retrieval, with its fused score and per-method ranks."""

    chunk: Chunk
    title: str
    score: float  # reciprocal-rank-fusion score; higher is better
    rank: int  # 1-based position in the fused list
    dense_score: float  # cosine similarity of question and chunk embeddings
    lexical_score: float  # BM25 score; 0 when no question term occurs


@dataclass(frozen=True)
class Citation:
    """A marker in the answer text and the exact article sentence(s) behind it."""

    marker: int  # the n of "[n]" in Answer.text
    doc_id: str
    title: str
    quote: str  # == article.text[start:end]
    start: int
    end: int
    chunk_id: str


@dataclass(frozen=True)
class Progress:
    """A step of an answer that streams no text, for a reader watching it:
    the checked English answer being put into the reader's language."""

    status: str


@dataclass(frozen=True)
class Answer:
    """What `ask` returns: checked text, its citations and how it was made."""

    question: str
    text: str  # answer with inline [n] markers, or the refusal sentence
    refused: bool
    citations: tuple[Citation, ...] = ()
    passages: tuple[Passage, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage
    model: str = ""
    # Why the answer was refused or what was removed; for people and the eval.
    notes: tuple[str, ...] = ()
    draft: str = ""  # the model's text before checking; "" when the model was not asked
    # The question as the stages read it, when not as asked: the English
    # translation of a question in another language (translate.py); else "".
    asked: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class DraftGenerator(Protocol):
    """What the pipeline needs from a generator; tests pass a fake."""

    name: str

    def load(self) -> None:
        """Load the model now rather than at the first `stream`."""
        ...

    def stream(self, messages: list[dict[str, str]], stop: threading.Event | None = None) -> Iterator[str]:
        """Yield pieces of the reply to `messages` as they are decoded."""
        ...
