"""Passages -> the sentences of them the model reads.

A retrieved chunk holds a few sentences, often only one or two about the
question. The model is shown just those (with "…" where sentences were left
out), which shortens the prompt — every prompt token costs prefill time — and
leaves fewer distractors for a small model to copy from. Citations are still
checked against the whole passage, so nothing here can make an answer pass
that would otherwise fail.
"""

from __future__ import annotations

from collections.abc import Callable

from .text import terms
from .types import Passage

# A sentence is kept when it holds at least this share of the question's
# terms (weighted by rarity) that its passage holds; lower keeps more text.
MIN_SHARE_OF_BEST = 0.34


def evidence_text(question: str, passage: Passage, term_weight: Callable[[str], float]) -> str:
    """The passage's text cut down to the sentences that share the question's
    terms, in article order, "…" marking a gap. A sentence just before a kept
    one is kept too when the kept one starts by pointing back ("In the same
    period, ..."); the whole passage when no sentence shares a term (a
    paraphrase the lexical view misses). A sentence just after a kept one is
    kept when it points back, too."""
    chunk = passage.chunk
    spans = list(chunk.sentences)
    if len(spans) <= 1:
        return chunk.text
    wanted = set(terms(question))
    texts = [chunk.text[s - chunk.start:e - chunk.start] for s, e in spans]
    scores = [sum(term_weight(t) for t in set(terms(text)) & wanted) for text in texts]
    best = max(scores)
    if best <= 0:
        return chunk.text
    keep = [score >= MIN_SHARE_OF_BEST * best for score in scores]
    # A sentence that refers back ("The country's point was 0.3 in 2020 ...")
    # goes with the one it refers to, either way round.
    for i in range(len(texts) - 1, 0, -1):
        if keep[i] and _points_back(texts[i]):
            keep[i - 1] = True
    for i in range(1, len(texts)):
        if keep[i - 1] and _points_back(texts[i]):
            keep[i] = True
    out = "" if keep[0] else "…"
    for i, (start, end) in enumerate(spans):
        if not keep[i]:
            continue
        if i > 0 and keep[i - 1]:  # neighbours keep the article's own spacing
            out += chunk.text[spans[i - 1][1] - chunk.start:start - chunk.start]
        elif out:
            out += " … " if out != "…" else " "
        out += texts[i]
    return out + ("" if keep[-1] else " …")


_POINTERS = ("in the same", "at the same", "this ", "these ", "that ", "those ", "it ", "they ", "he ", "she ",
             "the figure", "the number", "the company", "the country", "the same", "meanwhile", "however",
             "also", "in addition", "by contrast", "on the other hand", "accordingly", "as a result")


def _points_back(sentence: str) -> bool:
    """Whether a sentence opens by referring to the one before it."""
    head = sentence.lstrip("\"'“‘(◇▲ ").lower()
    return head.startswith(_POINTERS)
