"""Passages -> the sentences of them the model reads.

A retrieved chunk holds a few sentences, often only one or two about the
question. The model is shown just the sentences that share the question's
terms, best first across all passages, up to a character budget (with "…"
where sentences were left out). Every prompt token costs prefill time before
the first answer word — about 6-9 ms each on two cores — and a small model
copies fewer distractors from a short prompt. Citations are still checked
against the whole passage, so nothing here can make an answer pass that would
otherwise fail.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from .question import Question, as_question
from .text import points_back, terms
from .types import Passage

# A sentence is a candidate when it holds at least this share of the
# question's terms (weighted by rarity) that the best sentence holds.
MIN_SHARE_OF_BEST = 0.34
# A question about "the articles" is asked of at most this many of them,
# one ask each (`evidence_sets`): each ask costs a draft, 2-3 s.
MOST_ARTICLES_ASKED = 3
# "Who wrote the report?" is answered by a byline ("By Park Sae-jin Posted
# : ..."), which shares no word with the question: it goes first.
_BYLINE = re.compile(r"by\s+\w", re.IGNORECASE)


def evidence_texts(question: Question | str, passages: list[Passage], term_weight: Callable[[str], float],
                   max_chars: int | None = None) -> list[str]:
    """For each passage, its text cut down to the chosen sentences in article
    order ("…" marking a gap), or "" when none of its sentences was chosen.

    Sentences are chosen best first (rarity-weighted question terms shared,
    then passage rank) until `max_chars` is spent; the best one always goes
    in. A sentence that opens by pointing back ("In the same period, ...")
    brings the one before it, and one pointing back to a chosen sentence comes
    along. When no sentence shares a term (a paraphrase the lexical view
    misses), passages are shown whole in rank order within the budget.
    """
    question = as_question(question)
    wanted = question.term_set
    texts = [[p.chunk.text[s - p.chunk.start:e - p.chunk.start] for s, e in p.chunk.sentences] or [p.chunk.text]
             for p in passages]
    scores = [[sum(term_weight(t) for t in set(terms(s)) & wanted) for s in sentences] for sentences in texts]
    best = max((s for row in scores for s in row), default=0.0)
    if question.asks_who_wrote:
        best += 1.0
        scores = [[best if _BYLINE.match(s) else score for s, score in zip(sentences, row)]
                  for sentences, row in zip(texts, scores)]
    keep = [[False] * len(sentences) for sentences in texts]
    budget = max_chars if max_chars is not None else float("inf")
    used = 0

    def take(i: int, group: list[int]) -> None:
        nonlocal used
        cost = sum(len(texts[i][j]) + 1 for j in group if not keep[i][j])
        if used and used + cost > budget:
            return  # a shorter sentence further down may still fit
        for j in group:
            keep[i][j] = True
        used += cost

    if best <= 0:
        for i, sentences in enumerate(texts):
            take(i, list(range(len(sentences))))
        return [_render(p, sentences, row) for p, sentences, row in zip(passages, texts, keep)]

    ranked = sorted(((score, i, j) for i, row in enumerate(scores) for j, score in enumerate(row)),
                    key=lambda c: (-c[0], c[1], c[2]))
    for score, i, j in ranked:
        if score < MIN_SHARE_OF_BEST * best:
            break
        # A sentence that refers back goes with the one it refers to, either way round.
        group = [j]
        if j > 0 and points_back(texts[i][j]):
            group.insert(0, j - 1)
        if j + 1 < len(texts[i]) and points_back(texts[i][j + 1]):
            group.append(j + 1)
        take(i, group)
    return [_render(p, sentences, row) for p, sentences, row in zip(passages, texts, keep)]


def evidence_sets(question: Question | str, passages: list[Passage], term_weight: Callable[[str], float],
                  max_chars: int | None = None) -> list[list[str]]:
    """What the model reads in each of its asks: one list of passage texts
    (`evidence_texts`) for most questions. A question about "the articles"
    ("How do the articles rank ...?", "do the articles agree?") gets one ask
    per article the joint evidence draws on (up to MOST_ARTICLES_ASKED, in
    rank order), each with that article's passages alone and the whole
    budget, the other passages blank so that [n] keeps its meaning. Shown all
    articles at once, a small model answers from the first and stops, and
    these questions want each article's figure.
    """
    question = as_question(question)
    joint = evidence_texts(question, passages, term_weight, max_chars)
    if not question.about_the_articles:
        return [joint]
    articles = list(dict.fromkeys(p.chunk.doc_id for p, text in zip(passages, joint) if text))
    if len(articles) < 2:
        return [joint]
    sets = []
    for doc_id in articles[:MOST_ARTICLES_ASKED]:
        own = [i for i, p in enumerate(passages) if p.chunk.doc_id == doc_id]
        texts = evidence_texts(question, [passages[i] for i in own], term_weight, max_chars)
        chosen = dict(zip(own, texts))
        sets.append([chosen.get(i, "") for i in range(len(passages))])
    return sets


def _render(passage: Passage, texts: list[str], keep: list[bool]) -> str:
    """The kept sentences with the article's own spacing between neighbours
    and " … " across a gap; "" when none is kept."""
    if not any(keep):
        return ""
    if all(keep):
        return passage.chunk.text
    spans = passage.chunk.sentences
    start = passage.chunk.start
    out = "" if keep[0] else "…"
    for i, (s, _) in enumerate(spans):
        if not keep[i]:
            continue
        if i > 0 and keep[i - 1]:
            out += passage.chunk.text[spans[i - 1][1] - start:s - start]
        elif out:
            out += " … " if out != "…" else " "
        out += texts[i]
    return out + ("" if keep[-1] else " …")
