"""Question text -> Question: what a question asks, read once.

Retrieval, evidence choice and the citation checks all need the question's
terms, figures, years and a few facts about its form ("which country …?",
"who wrote …?", "… or …?"). Reading them here, once, keeps the stages from
each parsing the text their own way. Nothing here looks at the articles.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from .text import numbers, script_language, terms

# A year as a time a question asks about ("in 2021", "by 2027"), not one
# inside a name ("AI Index 2024", "the 2022 World Cup").
_ASKED_YEAR = re.compile(r"\b(?:in|by|since|from|for|of|until|during|between|before|after|and)\s+((?:19|20)\d\d)\b"
                         # Korean, Japanese and Chinese mark a year as a time with 년/年 ("2023년").
                         r"|(?<!\d)((?:19|20)\d\d)\s?[년年]", re.IGNORECASE)
# "How do the articles rank ...", "given in more than one article": the
# answer is spread over articles.
_ABOUT_THE_ARTICLES = re.compile(r"\barticles\b|\b(?:more than one|each|every|another) article\b", re.IGNORECASE)
# "Who wrote the report?" is answered by a byline, which shares no word with it.
_ASKS_WHO_WROTE = re.compile(r"\bwho (?:wrote|reported|authored)\b|\b(?:author|reporter|byline|writer)\b",
                             re.IGNORECASE)
# A question that names its possible answers ("gaining or losing", "Did ...?")
# is answered by choosing among its own words.
_OFFERS_CHOICE = re.compile(r"\bor\b|^\W*(?:is|are|was|were|do|does|did|has|have|had|can|could|will|would)\b",
                            re.IGNORECASE)
# Questions answered by naming a country ("Which two countries ...?") or a
# place ("Where do they go?").
_ASKS_WHICH_COUNTRY = re.compile(r"\b(?:which|what)(?: \w+)? (?:country|countries|nations?)\b", re.IGNORECASE)
_ASKS_WHERE = re.compile(r"\bwhere\b", re.IGNORECASE)
# Questions answered by an amount ("How many ...?", "What share ...?").
_ASKS_AMOUNT = re.compile(r"\bhow (?:many|much)\b|\bwhat (?:(?:is|was|are|were) )?(?:the )?(?:\w+ )?"
                          r"(?:percentage|percent|share|proportion|fraction|number|amount|figure|rate|ratio)\b",
                          re.IGNORECASE)


@dataclass(frozen=True)
class Question:
    """A question as every stage reads it."""

    text: str
    terms: tuple[str, ...]  # in order, repeats kept (BM25 counts them); see text.terms
    figures: frozenset[str]  # as text.numbers writes them: "-0.3", "17%", "3rd", "2023"
    years: frozenset[str]  # years it asks about ("in 2021"); a year in a name is a given figure
    about_the_articles: bool  # wants each article's view
    asks_who_wrote: bool
    offers_choice: bool  # "gaining or losing?", "Did ...?"
    asks_which_country: bool
    asks_where: bool
    asks_amount: bool  # "how many", "what share": the answer is a figure
    language: str = ""  # "" for English; else the language its script shows ("Korean"), see text.script_language

    @functools.cached_property
    def term_set(self) -> frozenset[str]:
        return frozenset(self.terms)

    @property
    def given_figures(self) -> frozenset[str]:
        """Figures the question gives as part of a name ("the AI Index 2024"), not years it asks about."""
        return self.figures - self.years


def years_as_times(text: str) -> frozenset[str]:
    """Years `text` gives as a time ("in 2021", "by 2027"), not as part of a
    name ("AI Index 2024"): what a question asks about, or what a claim dates."""
    return frozenset(a or b for a, b in _ASKED_YEAR.findall(text))


def read_question(text: str) -> Question:
    """Read `text` once into what it asks.

    >>> q = read_question("Which country led in 2023, per the AI Index 2024?")
    >>> sorted(q.years), sorted(q.given_figures), q.asks_which_country
    (['2023'], ['2024'], True)
    """
    return Question(
        text=text,
        terms=tuple(terms(text)),
        figures=frozenset(numbers(text)),
        years=years_as_times(text),
        about_the_articles=bool(_ABOUT_THE_ARTICLES.search(text)),
        asks_who_wrote=bool(_ASKS_WHO_WROTE.search(text)),
        offers_choice=bool(_OFFERS_CHOICE.search(text)),
        asks_which_country=bool(_ASKS_WHICH_COUNTRY.search(text)),
        asks_where=bool(_ASKS_WHERE.search(text)),
        asks_amount=bool(_ASKS_AMOUNT.search(text)),
        language=script_language(text),
    )


def as_question(question: Question | str) -> Question:
    """`question` read, if it is still text (for callers holding only text)."""
    return question if isinstance(question, Question) else read_question(question)
