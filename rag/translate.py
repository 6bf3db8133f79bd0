"""A question in another language -> English; a checked English answer -> that language.

The articles are English, and so are the retriever's best embedder, the
refusal gate's term coverage and every citation check. A question in Korean
is therefore put into English first (one short generation) and answered as an
English question; the checked English answer is then put into the reader's
language, sentence by sentence, and a sentence is kept only where its figures
and names survive the translation (else the English sentence stays).
On the Korean dev questions this found the gold chunk for 91% of them against
81% with the multilingual embedder, and answered 46.8% right against 29.0%
when the model read the Korean question itself (see the README).

A small model's translation drops or invents figures ("지난해" became "in
2020"), so the years and figures the stages check come from the user's own
words (`asked_in_english`), never from the translation; and where it changed
one figure of the question, the question's is put back (`repair_figure`).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping, Set as AbstractSet
from contextlib import closing
from decimal import Decimal

from .cite import parse_claims, with_markers
from .hangul import names_in
from .prompts import translate_answer_messages, translate_question_messages
from .question import Question, read_question
from .text import canonical_number, names, numbers, script_language, terms
from .types import DraftGenerator

# A translated question is one line; anything after it is the model going on.
_MAX_QUESTION_CHARS = 400


def question_to_english(question: str, generator: DraftGenerator, name_keys: Mapping[str, str] | None = None) -> str:
    """`question` in English, or "" when the model gave no English question
    (the caller then reads the question as it was asked). `name_keys` (see
    hangul.name_keys) are the articles' names: those the question spells in
    Hangul are given to the model with their spelling."""
    text = ""
    spellings = names_in(question, name_keys) if name_keys else None
    with closing(generator.stream(translate_question_messages(question, spellings))) as pieces:
        for piece in pieces:
            text += piece
            if "\n" in text.strip() or len(text) > _MAX_QUESTION_CHARS:
                break  # one line is the question; stop paying for more
    english = text.strip().split("\n")[0].strip().strip('"“”')
    return repair_figure(question, english) if english and script_language(english) == "" else ""


# A figure as an English question writes it: "100,000", "-0.3", "10 million",
# "35th". Unlike text.numbers' pattern, its span never takes the comma after
# a figure ("100,000, how many"), since the span is replaced.
_ENGLISH_FIGURE = re.compile(r"[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:st|nd|rd|th|%)?"
                             r"(?:\s+(?:thousand|million|billion|trillion)\b)?")
_YEAR = re.compile(r"(?:19|20)\d\d")


def repair_figure(question: str, english: str) -> str:
    """`english` (the model's translation of `question`) with the one figure
    it changed put back: where exactly one of its figures is none of the
    question's and exactly one of the question's is missing from it ("1만
    명당" translated "per 100,000"), the question's replaces it ("per
    10,000"). Years are left alone: a year the translation adds stands for a
    relative time, not for a figure it changed.

    >>> repair_figure("2023년 인구 1만 명당 순유입은?", "What was the inflow per 100,000 people in 2023?")
    'What was the inflow per 10,000 people in 2023?'
    """
    # Months ("6월", read as "month 6") are words to translate, not figures.
    ours = {f for f in _figures(question) if not _YEAR.fullmatch(f) and not f.startswith("month ")}
    found = [(m, _figures(m.group())) for m in _ENGLISH_FIGURE.finditer(english)]
    changed = [m for m, figures in found if figures and not figures & ours and not _YEAR.fullmatch(m.group())]
    missing = ours - set().union(*(figures for _, figures in found))
    if len(changed) != 1 or len(missing) != 1:
        return english
    figure, (match,) = next(iter(missing)), changed
    return english[:match.start()] + _as_english_figure(figure) + english[match.end():]


def _as_english_figure(figure: str) -> str:
    """`figure` (as `_figures` writes it) as an English question would:
    "10000" -> "10,000", "67200000000" -> "67.2 billion", "-0.3" -> "-0.3"."""
    if not re.fullmatch(r"-?\d+", figure):
        return figure
    value = int(figure)
    for scale, word in ((10 ** 12, "trillion"), (10 ** 9, "billion"), (10 ** 6, "million")):
        if abs(value) >= scale and value % (scale // 100) == 0:
            return f"{Decimal(value) / scale:f}".rstrip("0").rstrip(".") + f" {word}"
    return f"{value:,}"


def asked_in_english(asked: Question, english: str) -> Question:
    """The record of `english` (the translation of the question `asked`), with
    the years and figures of the user's own words and no language: every stage
    reads it as an English question."""
    read = read_question(english)
    return dataclasses.replace(read, figures=asked.figures, years=asked.years, language="")


# Months, which one language names and another numbers ("February", "2월").
_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
           "november", "december")
_ENGLISH_MONTH = re.compile(r"\b(" + "|".join(_MONTHS) + r")\b", re.IGNORECASE)
_MONTH_TERMS = frozenset(terms(" ".join(_MONTHS)))
_NUMBERED_MONTH = re.compile(r"(?<![\d.])(1[0-2]|0?[1-9])\s?[월月]")


def _figures(text: str) -> set[str]:
    """Figures as both languages can write them: signed, without "%", "th" or
    "위" ("35th" and "35위" are one figure; "-0.30" and "0.30" are not), and
    months as "month N" ("February" and "2월")."""
    months = {f"month {_MONTHS.index(m.lower()) + 1}" for m in _ENGLISH_MONTH.findall(text)}
    months |= {f"month {int(n)}" for n in _NUMBERED_MONTH.findall(text)}
    text = _NUMBERED_MONTH.sub(" ", text)
    return months | {("-" if n.startswith("-") else "") + (canonical_number(n) or n)
                     for n in numbers(text, spelled_ordinals=True)}


def _scales_to(figure: str, other: str) -> bool:
    """Whether `other` is `figure` times a thousand, million, billion or trillion."""
    try:
        a, b = Decimal(figure), Decimal(other)
    except ArithmeticError:
        return False
    return a != 0 and any(a * 10 ** k == b for k in (3, 6, 9, 12))


def ordinary_words(texts: Iterable[str]) -> frozenset[str]:
    """The terms of words `texts` write in lower case somewhere ("employment",
    "global"): words of the language, which a translation may translate,
    unlike a name only ever capitalised ("Stanford"). Words inside web and
    mail addresses do not count."""
    words = (w.strip(".,;:!?\"'“”‘’()[]") for text in texts for w in text.split())
    return frozenset(terms(" ".join(w for w in words if w.isalpha() and w.islower())))


def kept_in_translation(english: str, translated: str, ordinary: AbstractSet[str] = frozenset()) -> list[str]:
    """What `translated` loses of the English sentence `english`: figures it
    drops, changes or adds, and proper names it leaves out: names (see
    text.names) that are not `ordinary` words (see `ordinary_words`) or
    months, kept in Latin letters or, for a country, in either script. []
    when it keeps them all.

    >>> kept_in_translation("Japan recorded +0.54 per 10,000 people.", "일본은 인구 1만 명당 +0.54를 기록했다.")
    []
    """
    problems = []
    ours, theirs = _figures(english), _figures(translated)
    # "$3.87 billion" reads as 3.87 and 3,870,000,000; "38억 7천만 달러" only as the second.
    lost = {f for f in ours - theirs if not any(_scales_to(f, g) for g in ours & theirs)}
    added = theirs - ours
    if lost or added:
        problems.append(f"figures {sorted(lost)} became {sorted(added)}")
    missing = names(english) - ordinary - _MONTH_TERMS - set(terms(translated))
    if missing:
        problems.append(f"names {sorted(missing)} are missing")
    return problems


def answer_in_language(text: str, language: str, generator: DraftGenerator,
                       ordinary: AbstractSet[str] = frozenset()) -> tuple[str, list[str]]:
    """`text` (a checked English answer with [n] markers) in `language`, and
    notes on what stayed in English. Each sentence is translated on its own,
    without its markers (the model drops them), which are put back after; a
    translation that loses a figure or a proper name of its sentence (see
    `kept_in_translation`) is replaced by the English sentence."""
    out, notes = [], []
    for claim in parse_claims(text):
        with closing(generator.stream(translate_answer_messages(claim.text, language))) as pieces:
            translated = " ".join("".join(pieces).split())
        problems = kept_in_translation(claim.text, translated, ordinary) if translated else ["nothing came back"]
        if problems:
            notes.append(f"kept in English: {claim.text!r} ({'; '.join(problems)} in {translated!r})")
            translated = claim.text
        out.append(with_markers(translated, claim.markers))
    return " ".join(out), notes
