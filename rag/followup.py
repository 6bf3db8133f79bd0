"""Follow-up questions -> standalone questions, by rule, before retrieval.

A chat user writes "And Japan?" after "What was Korea's net AI talent outflow
per 10,000 people in 2023?". Retrieval sees one question at a time, so the
fragment is rewritten into the previous question with the entity of the same
kind swapped (country, year, number, name), and a question that leans on
"it"/"they" gets the previous question's subject. When no rule fits, the
previous question is put in front as context. No model is asked: a rule is
instant and predictable, and the app shows the rewrite, so a wrong guess is
seen and can be rephrased.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .text import COUNTRIES, STOPWORDS, foreign_country, foreign_country_length, script_language, terms

# Openers that mark a fragment: "And Japan?", "What about 2019?", "How about Samsung?".
_FRAGMENT = re.compile(
    r"^(?:and\s+)?(?:what|how)\s+(?:about|of)\s+(?P<a>.+)$"
    r"|^(?:and\s+)?(?:the\s+)?same\s+(?:for|with|in)\s+(?P<b>.+)$"
    r"|^and\s+(?P<c>.+)$",
    re.IGNORECASE,
)
# A fragment is short; "And how many left Japan in 2019?" is a whole question.
_MAX_FRAGMENT_WORDS = 4
_QUESTION_WORDS = frozenset("what which who whom whose when where why how is are was were do does did "
                            "can could should would will has have had".split())
# Pronouns that stand for the previous question's subject and can be replaced
# by it; he/she/his/her also refer back but a person's name is rarely the
# previous question's only name, so those questions get the context instead.
_REPLACEABLE = re.compile(r"\b(?:it|its|they|them|their)\b|(?<!\bis )(?<!\bare )(?<!\bwas )(?<!\bwere )"
                          r"\bthere\b(?!\s+(?:is|are|was|were|been|be)\b)", re.IGNORECASE)
_PERSONAL = re.compile(r"\b(?:he|him|his|she|her|hers)\b", re.IGNORECASE)
# "that"/"this" refer back when they end the question ("Why did that happen?"
# ends in a verb from this list) or head one of these words ("that figure");
# elsewhere they are usually a relative pronoun ("the talent that left").
_DEMONSTRATIVE = re.compile(
    r"\b(?:that|this|those|these)\b(?=\s*(?:[?.!]|$|(?:happen|happened|mean|means|change|changed|cause|caused|"
    r"compare|compared|affect|affected|figure|figures|number|numbers|rate|year|years|country|countries|"
    r"company|companies|person|people|report|survey|study)\b))",
    re.IGNORECASE,
)

_YEAR = re.compile(r"\b(?:19|20)\d{2}\b")
_NUMBER = re.compile(r"[+-]?\d[\d,]*(?:\.\d+)?%?")
_WORD = re.compile(r"[^\W\d_][\w.’'&-]*")
# Countries a word-by-word look-up misses ("US" is a stopword as "us").
_SPECIAL_COUNTRIES = re.compile(
    r"\b(?:South|North)\s+Korea\b|\bUnited\s+(?:States|Kingdom)\b|\bU\.S\.(?!\w)|\bU\.K\.(?!\w)|\bUSA?\b")
# Countries written as initials take "the": "the US", "the U.K.".
_ABBREVIATED = re.compile(r"[A-Z]{2,3}|(?:[A-Z]\.){2,3}")
# Capitalised words that are topics, not entities to swap ("net AI talent").
_NOT_NAMES = frozenset("AI CEO CEOs GDP PhD IT R&D".split())
# Lowercase words allowed inside a name: "Minister of Science and ICT".
_NAME_JOINERS = frozenset("of and for & de".split())
_DEMONYMS = {
    "korea": "Korean", "japan": "Japanese", "china": "Chinese", "india": "Indian", "israel": "Israeli",
    "france": "French", "britain": "British", "canada": "Canadian", "australia": "Australian",
    "singapore": "Singaporean", "germany": "German", "america": "American", "europe": "European",
    "taiwan": "Taiwanese", "vietnam": "Vietnamese", "russia": "Russian", "ireland": "Irish",
}
_COUNTRY_OF_DEMONYM = {d.lower(): c.title() for c, d in _DEMONYMS.items()}


@dataclass(frozen=True)
class _Span:
    start: int
    end: int
    text: str


def _bare(word: str) -> str:
    """A word without a possessive or trailing punctuation: "Korea's" -> "Korea"."""
    return re.sub(r"(?:['’]s)?[.,;:!?]*$", "", word) or word


def _country_terms(text: str) -> set[str]:
    return set(terms(text)) & COUNTRIES


def _is_country(text: str) -> bool:
    return bool(_SPECIAL_COUNTRIES.fullmatch(text)) or (len(text.split()) == 1 and bool(_country_terms(text)))


def _is_name(text: str) -> bool:
    words = text.split()
    return bool(words) and words[0][0].isupper() and words[-1][0].isupper() and all(
        w[0].isupper() or w.lower() in _NAME_JOINERS for w in words)


def _kind(entity: str) -> str:
    """"year", "number", "country", "name" or "" (words we cannot place)."""
    if _YEAR.fullmatch(entity):
        return "year"
    if _NUMBER.fullmatch(entity):
        return "number"
    if _is_country(entity):
        return "country"
    if _is_name(entity):
        return "name"
    return ""


def _spans(question: str, kind: str) -> list[_Span]:
    """Where `question` mentions an entity of `kind`, in order."""
    if kind == "year":
        return [_Span(m.start(), m.end(), m.group()) for m in _YEAR.finditer(question)]
    if kind == "number":
        years = {m.start() for m in _YEAR.finditer(question)}
        return [_Span(m.start(), m.end(), m.group()) for m in _NUMBER.finditer(question)
                if m.start() not in years]
    special = [_Span(m.start(), m.end(), m.group()) for m in _SPECIAL_COUNTRIES.finditer(question)]
    words = [(m.start(), _bare(m.group())) for m in _WORD.finditer(question)
             if not any(s.start <= m.start() < s.end for s in special)]
    if kind == "country":
        found = special + [_Span(start, start + len(w), w) for start, w in words if _is_country(w)]
        return sorted(found, key=lambda s: s.start)
    # Names: runs of capitalised words, e.g. "Sakana AI", "OECD", leaving out
    # countries, topic words and the question's first word ("What", "Name").
    names: list[_Span] = []
    open_run = False  # the last word read belongs to names[-1] (or joins it)
    joiners: list[str] = []
    for start, word in words:
        capitalised = (start > 0 and word[0].isupper() and word.lower() not in STOPWORDS
                       and not _is_country(word))
        if capitalised and word in _NOT_NAMES and not open_run:
            capitalised = False  # "net AI talent" is a topic; "Sakana AI" a name
        if capitalised:
            between = [w.lower() for w in question[names[-1].end:start].split()] if names else None
            if open_run and between == joiners:
                names[-1] = _Span(names[-1].start, start + len(word), question[names[-1].start:start + len(word)])
            else:
                names.append(_Span(start, start + len(word), word))
            open_run, joiners = True, []
        elif open_run and word.lower() in _NAME_JOINERS:
            joiners.append(word.lower())
        else:
            open_run, joiners = False, []
    return names


def _fragment_entity(question: str) -> str | None:
    """The entity of a fragment question ("And Japan?" -> "Japan"), else None."""
    body = question.rstrip("?!. ").strip()
    match = _FRAGMENT.match(body)
    if match:
        entity = next(g for g in match.groups() if g is not None)
    elif question.endswith("?") and 0 < len(body.split()) <= 2:
        entity = body  # "Japan?", "In 2019?"
    else:
        return None
    entity = re.sub(r"^(?:in|for|at|with|the)\s+", "", entity.strip(), flags=re.IGNORECASE)
    entity = re.sub(r"\s+(?:then|instead|too)$", "", entity, flags=re.IGNORECASE)
    words = entity.split()
    if not words or len(words) > _MAX_FRAGMENT_WORDS or words[0].lower() in _QUESTION_WORDS:
        return None
    return entity


def _swap(previous: str, entity: str) -> str | None:
    """`previous` with its first entity of `entity`'s kind replaced by `entity`
    (every mention of that same entity), or None when it has none."""
    kind = _kind(entity)
    if not kind:
        return None
    if kind == "country":
        entity = _bare(entity)
        entity = _COUNTRY_OF_DEMONYM.get(entity.lower(), entity)
        entity = entity[0].upper() + entity[1:]
    spans = _spans(previous, kind)
    if not spans:
        return None
    first = spans[0].text
    out, cursor = [], 0
    for span in spans:
        same = span.text == first or (kind == "country" and _country_terms(span.text) == _country_terms(first)
                                      and bool(_country_terms(first)))
        if not same:
            continue
        replacement, start = entity, span.start
        if kind == "country":
            adjective = span.text.lower() in _COUNTRY_OF_DEMONYM
            if adjective:
                replacement = _DEMONYMS.get(entity.lower(), entity)  # "Korean talent" -> "Japanese talent"
            takes_the = bool(_ABBREVIATED.fullmatch(replacement)) and not adjective
            has_the = previous[max(0, start - 4):start].lower() == "the "
            if has_the and not takes_the:
                start -= 4  # "the U.S." -> "Japan"
            elif takes_the and not has_the:
                replacement = "the " + replacement  # "Korea" -> "the US"
        out += [previous[cursor:start], replacement]
        cursor = span.end
    out.append(previous[cursor:])
    return "".join(out)


def _has_own_subject(question: str) -> bool:
    """True when the question names a country, a year or a name of its own."""
    return bool(_YEAR.search(question) or _spans(question, "country") or _spans(question, "name"))


def _subject(previous: str) -> str | None:
    """What the previous question is about: a name first, else a country."""
    names = _spans(previous, "name")
    if names:
        return names[0].text
    countries = _spans(previous, "country")
    if countries:
        country = countries[0].text
        return _COUNTRY_OF_DEMONYM.get(country.lower(), country)  # "Korean" -> "Korea"
    return None


def _resolve_pronouns(question: str, subject: str) -> str:
    """Put `subject` where the question says it/they/its/their/there."""
    def replace(match: re.Match) -> str:
        word = match.group().lower()
        if word in ("its", "their"):
            return subject + "'s"
        if word == "there":
            return "in " + subject
        return subject
    return _REPLACEABLE.sub(replace, question)


# A follow-up in another script is a fragment when it is this short ("일본은?",
# "2023년에는?", "그럼 구글은요?"); Korean marks the fragment's topic with a
# particle, which is cut off to find the entity, and may open with a
# connective ("그럼", "then").
_MAX_FOREIGN_FRAGMENT_WORDS = 3
_KOREAN_PARTICLES = re.compile(r"(?:은요|는요|이요|에는요|에는|에선|에서는|은|는|요|의|도)$")
_KOREAN_OPENERS = frozenset("그럼 그러면 그리고 그렇다면 또 그해 그때".split())
_ANY_YEAR = re.compile(r"(?<!\d)(?:19|20)\d{2}(?!\d)")


def _foreign_rewrite(question: str, last: str) -> str | None:
    """A follow-up in another script rewritten like an English one: a year or
    a country swapped into the previous question; None when the question is
    no fragment. Country names are read as `text.terms` reads them (ISO 3166's
    translations), so the swap keeps the previous question's particles:
    "한국의 ... ?" + "일본은?" -> "일본의 ... ?"."""
    words = [w for w in question.rstrip("?!.？ ").split() if w not in _KOREAN_OPENERS]
    if not words or len(words) > _MAX_FOREIGN_FRAGMENT_WORDS:
        return None
    if len(words) > 1:
        return f"{last} {question}"  # "과기정통부 장관 후보는?": context, not a swap
    entity = _KOREAN_PARTICLES.sub("", words[0]) or words[0]
    year = _ANY_YEAR.search(entity)
    if year:
        spans = list(_ANY_YEAR.finditer(last))
        if spans:
            first = spans[0].group()
            return _ANY_YEAR.sub(lambda m: year.group() if m.group() == first else m.group(), last)
    country = foreign_country(entity)
    if country:
        for match in re.finditer(r"\S+", last):
            name_length = foreign_country_length(match.group())
            if name_length:
                return last[:match.start()] + entity + last[match.start() + name_length:]
    return f"{last} {question}"


def rewrite(question: str, previous: list[str]) -> str:
    """Turn a follow-up into a standalone question, using the earlier ones.

    `previous` holds the chat's earlier questions, oldest first, each as it
    was asked after its own rewrite. A question that needs nothing from them
    comes back unchanged (its whitespace tidied).

    >>> rewrite("And Japan?", ["What was Korea's net AI talent outflow per 10,000 people in 2023?"])
    "What was Japan's net AI talent outflow per 10,000 people in 2023?"
    >>> rewrite("What about 2019?", ["What was Japan's net AI talent inflow in 2023?"])
    "What was Japan's net AI talent inflow in 2019?"
    """
    question = " ".join(question.split())
    last = next((" ".join(p.split()) for p in reversed(previous) if p and p.strip()), "")
    if not question or not last:
        return question
    if question.rstrip("?!. ").lower() in _QUESTION_WORDS:
        return f"{last} {question}"  # "Why?"
    if script_language(question):
        foreign = _foreign_rewrite(question, last)
        return foreign if foreign is not None else question
    entity = _fragment_entity(question)
    if entity is not None:
        swapped = _swap(last, entity)
        return swapped if swapped is not None else f"{last} {question}"
    leans_back = _REPLACEABLE.search(question) or _PERSONAL.search(question) or _DEMONSTRATIVE.search(question)
    if not leans_back or _has_own_subject(question):
        return question
    subject = _subject(last)
    if subject and _REPLACEABLE.search(question) and not _PERSONAL.search(question):
        # "they"/"them" are people or firms, not a country: "How many of them
        # left?" after a question about Korea is about Korea's talent.
        plural = re.search(r"\b(?:they|them|their)\b", question, re.IGNORECASE)
        if _kind(subject) == "name" or not plural:
            return _resolve_pronouns(question, subject)
    return f"{last} {question}"
