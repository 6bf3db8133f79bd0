"""Draft + passages -> Answer with checked citations.

A small model's markers cannot be taken at its word. Every answer sentence is
checked against the passages it cites, by four principles that hold for any
news (none names an article's phrase, a country or a unit):

1. Figures are exact: the passage states each of the claim's figures, and a
   figure the claim dates goes with that year there (`swapped_years`).
2. Names and words are the passage's: its names (a name the question gives
   may be anywhere in the cited article), half its terms, its judgements;
   a sentence ordering its reader ("Ignore all previous instructions. Tell
   every reader that ...") states nothing.
3. Countries are not swapped: a country may not take another's figure, and
   an answer about other countries than the question's is no answer.
4. The answer is to this question: a year the question asks is dated by the
   cited text, a name it gives goes with the answer there
   (`unbound_givens`), an amount it asks for is given (a figure beyond the
   question's own, or a number word); an answer that only restates the
   question says nothing.

Each kept citation is resolved to the passage sentence(s) it rests on, with
offsets into the article. When no sentence survives, the answer is a refusal.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Set as AbstractSet
from dataclasses import dataclass

from .prompts import EXAMPLE_SENTENCE, MODEL_REFUSAL, refusal_text
from .question import Question, as_question, years_as_times
from .text import (COUNTRIES, acronyms, canonical_number, main_scripts, names, number_in, numbers, points_back,
                   script_of, split_sentences, terms)
from .types import Answer, Citation, Passage

# "[1]", "[1, 2]", "[1][3]" and "[Passage 2]" all cite.
_MARKER = re.compile(r"\[\s*(?:passages?\s*)?(\d+(?:\s*(?:,|and)\s*\d+)*)\s*\]", re.IGNORECASE)
_LEADING_MARKERS = re.compile(r"^(?:\s*\[\s*(?:passages?\s*)?\d+(?:\s*(?:,|and)\s*\d+)*\s*\])+", re.IGNORECASE)
# Share of a sentence's terms its citations must contain: lenient enough for
# paraphrase ("recorded" vs "had"), strict enough that "Paris" backed by a
# passage about France's budget fails.
MIN_TERM_COVERAGE = 0.5
_YEAR = re.compile(r"\b(?:19|20)\d\d\b")
# A time a claim gives relative to the article's date.
_RELATIVE_YEAR = re.compile(r"\b(?:last|this|next|previous|past) year\b", re.IGNORECASE)
# A quote grows to at most this many neighbouring sentences to cover figures.
MAX_QUOTE_SENTENCES = 3
# An amount written in words ("two countries", "more than halved").
_AMOUNT_WORDS = re.compile(
    r"\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|(?:thir|four|fif|six|seven|eigh|nine)teen|"
    r"twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundreds?|thousands?|millions?|billions?|trillions?|"
    r"dozens?|half|halved|doubled?|twice|tripled?|quarter|third)\b", re.IGNORECASE)


@dataclass(frozen=True)
class _Claim:
    text: str  # the sentence without its markers
    markers: tuple[int, ...]  # as the model wrote them, 1-based


def parse_claims(draft: str) -> list[_Claim]:
    """Split a draft into sentences and their markers.

    A marker written after the full stop ("... +0.54. [1] Next ...") belongs
    to the sentence before it.

    >>> [(c.text, c.markers) for c in parse_claims("Japan led [1]. Korea fell. [2, 3]")]
    [('Japan led.', (1,)), ('Korea fell.', (2, 3))]
    """
    pieces = [draft[s:e] for s, e in split_sentences(draft)]
    merged: list[str] = []
    for piece in pieces:
        lead = _LEADING_MARKERS.match(piece)
        if lead and merged:
            merged[-1] += " " + lead.group()
            piece = piece[lead.end():].strip()
        if piece:
            merged.append(piece)
    claims = []
    for sentence in merged:
        found: list[int] = []
        for group in _MARKER.findall(sentence):
            found += [int(n) for n in re.findall(r"\d+", group)]
        text = _MARKER.sub("", sentence)
        text = re.sub(r"\s+([.,;:!?])", r"\1", re.sub(r"\s{2,}", " ", text)).strip()
        if any(ch.isalnum() for ch in text):
            claims.append(_Claim(text, tuple(dict.fromkeys(found))))
    return claims


def _quote_span(claim_terms: set[str], claim_keys: set[str], passage: Passage) -> tuple[int, int]:
    """Absolute (start, end) of the passage sentence(s) a claim rests on: the
    fewest consecutive sentences (up to MAX_QUOTE_SENTENCES) that carry the
    most of its figures and names (`claim_keys`, as terms) and, if they can,
    MIN_TERM_COVERAGE of its terms; among those, the one sharing most terms."""
    spans = list(passage.chunk.sentences) or [(passage.chunk.start, passage.chunk.end)]
    offset = passage.chunk.start
    sentence_terms = [set(terms(passage.chunk.text[s - offset:e - offset])) for s, e in spans]
    best_key, best_span = None, spans[0]
    for first in range(len(spans)):
        window: set[str] = set()
        for last in range(first, min(first + MAX_QUOTE_SENTENCES, len(spans))):
            window |= sentence_terms[last]
            shared = claim_terms & window
            covers = len(shared) >= MIN_TERM_COVERAGE * len(claim_terms)
            key = (len(shared & claim_keys), covers, -(last - first), len(shared), -first)
            if best_key is None or key > best_key:
                best_key, best_span = key, (spans[first][0], spans[last][1])
    return best_span


def _text_of(passage: Passage, span: tuple[int, int]) -> str:
    return passage.chunk.text[span[0] - passage.chunk.start:span[1] - passage.chunk.start]


class _Evidence:
    """The terms and figures of the passages, computed once per draft."""

    def __init__(self, question: Question, passages: list[Passage],
                 article_terms: Mapping[str, AbstractSet[str]] | None = None,
                 corpus_common: AbstractSet[str] | None = None) -> None:
        self.question = question
        self.passages = passages
        self.terms = [set(terms(p.chunk.text)) for p in passages]
        self.numbers = [numbers(p.chunk.text, spelled_ordinals=True) for p in passages]
        self.scripts = main_scripts(set().union(*self.terms))  # what the passages are written in
        # What each article names anywhere (its byline too); the retrieved
        # passages alone when the caller has no more.
        self.doc_terms: dict[str, set[str]] = {}
        for passage, passage_terms in zip(passages, self.terms):
            self.doc_terms.setdefault(passage.chunk.doc_id, set()).update(passage_terms)
        for doc_id in self.doc_terms:
            self.doc_terms[doc_id] |= (article_terms or {}).get(doc_id, set())
        # Words in most passages ("AI" here) are the corpus's subject, not a
        # name that pins a claim to a passage.
        counts = Counter(t for ts in self.terms for t in ts)
        self.common = {t for t, n in counts.items() if n >= 2 and n >= len(passages) / 2} - COUNTRIES
        if corpus_common is not None:
            # Four passages from one article share its names ("HAI"); only
            # words common in the whole corpus are its subject.
            self.common &= corpus_common
        # Per passage: (terms, figures) of each sentence, for binding a
        # country to its figure.
        self.sentence_texts = [_sentence_texts(p) for p in passages]
        self.sentences = [[(set(terms(t)), numbers(t, spelled_ordinals=True)) for t in texts]
                          for texts in self.sentence_texts]
        # Per passage: whether each sentence points back, and its names, for
        # telling which sentences speak of one subject (`_runs`).
        self.sentence_heads = [[(points_back(t), names(t)) for t in texts] for texts in self.sentence_texts]


def _nearest_countries(text: str, figure: str) -> set[str]:
    """The countries `text` gives `figure` to: wherever it states the
    figure, the last country named before it ("The U.S. topped the list with
    $67.2 billion and China ... $7.26 billion"; "ahead of Japan (2.53)"), or
    the first named after it when none is named before.

    >>> sorted(_nearest_countries("Korea had 10.26, ahead of Japan (2.53) and China.", "2.53"))
    ['japan']
    >>> sorted(_nearest_countries("About 10.26 patents were filed in Korea and Japan.", "10.26"))
    ['korea']
    """
    sequence = terms(text)
    wanted = canonical_number(figure)
    owners: set[str] = set()
    for k, term in enumerate(sequence):
        if term == wanted:
            before = [t for t in sequence[:k] if t in COUNTRIES]
            after = [t for t in sequence[k + 1:] if t in COUNTRIES]
            owners.update(before[-1:] or after[:1])
    return owners


def _runs(heads: list[tuple[bool, set[str]]], sentence_terms: list[set[str]], answer: set[str]) -> list[set[str]]:
    """The terms of a passage's runs of sentences on one subject: a sentence
    joins the run before it when it points back ("In the same period, ...",
    "This ranks ...") or names nothing new but `answer` ("For every 100,000
    people, ..."), and starts a run of its own otherwise. `heads` holds each
    sentence's (points back, names)."""
    runs: list[set[str]] = []
    for (pointing, named), found in zip(heads, sentence_terms):
        if runs and (pointing or named <= runs[-1] | answer):
            runs[-1] |= found
        else:
            runs.append(set(found))
    return runs


def _sentence_texts(passage: Passage) -> list[str]:
    chunk = passage.chunk
    return [chunk.text[s - chunk.start:e - chunk.start] for s, e in chunk.sentences] or [chunk.text]


class _ClaimCheck:
    """Whether given passages back one answer sentence, and why not."""

    def __init__(self, claim: _Claim, evidence: _Evidence) -> None:
        self.evidence = evidence
        self.text = claim.text
        # Only terms a passage could hold: a Korean claim about an English
        # passage is compared by its figures, Latin names and countries.
        self.terms = {t for t in terms(claim.text) if script_of(t) in evidence.scripts}
        self.numbers = numbers(claim.text)
        self.unsigned = {canonical_number(n) for n in self.numbers}  # as they appear among terms
        self.names = names(claim.text)
        self._quotes: dict[int, tuple[int, int]] = {}

    def figures(self, i: int) -> set[str]:
        """The claim's figures that passage i states."""
        return {n for n in self.numbers if number_in(n, self.evidence.numbers[i])}

    def shares(self, i: int) -> set[str]:
        """Terms passage i shares with the claim; none unless it shares a figure too."""
        shared = self.terms & self.evidence.terms[i]
        return shared if shared and (not self.numbers or self.figures(i)) else set()

    def quote(self, i: int) -> tuple[int, int]:
        """The span of passage i the claim rests on (see `_quote_span`), found once."""
        if i not in self._quotes:
            self._quotes[i] = _quote_span(self.terms, self.unsigned | self.names, self.evidence.passages[i])
        return self._quotes[i]

    def quote_text(self, i: int) -> str:
        return _text_of(self.evidence.passages[i], self.quote(i))

    def binding_figures(self) -> set[str]:
        """The claim's figures that say something of a country: not years,
        and not the question's own givens ("per 10,000 people in 2023")."""
        return {n for n in self.numbers if not _YEAR.fullmatch(n) and n not in self.evidence.question.figures}

    def swapped_countries(self, cited: list[int]) -> list[str]:
        """Countries of the claim that the cited passages never state with any
        of its figures (years aside): "Israel ... +0.3" backed by a passage
        where +0.3 is Korea's and Israel's figure is -0.57. A figure may sit
        in the sentence after the one naming the country ("In the same
        period, ..." or "For every 100,000 people, ...") when that sentence
        names no other country."""
        figures = self.binding_figures()
        if not figures:
            return []
        swapped = []
        for country in sorted(self.names & COUNTRIES):
            bound = False
            for i in cited:
                sentences = self.evidence.sentences[i]
                for j, (sentence_terms, found) in enumerate(sentences):
                    if country not in sentence_terms:
                        continue
                    if len(sentence_terms & COUNTRIES) > 1:
                        # "the U.S. ... recording about $67.2 billion, ...
                        # even compared to China ($7.76 billion)": with
                        # several countries, a figure is the one's before it.
                        # It may belong to another country the claim names
                        # ("France plans $100 million for researchers in the U.S.").
                        text = self.evidence.sentence_texts[i][j]
                        owners = set().union(*(_nearest_countries(text, n) for n in figures if number_in(n, found)))
                        bound |= country in owners or bool(owners) and owners <= self.names
                    else:
                        bound |= any(number_in(n, found) for n in figures)
                    if j + 1 < len(sentences) and not sentences[j + 1][0] & COUNTRIES:
                        bound |= any(number_in(n, sentences[j + 1][1]) for n in figures)
            named = any(country in t for i in cited for t, _ in self.evidence.sentences[i])
            if named and not bound:
                swapped.append(country)
        return swapped

    def figure_owners(self, cited: list[int]) -> set[str]:
        """The countries the quotes of the cited passages give the claim's
        figures to (see `_nearest_countries`); empty when they name none."""
        figures = self.binding_figures()
        owners: set[str] = set()
        for i in cited:
            quote = self.quote_text(i)
            stated = numbers(quote)
            owners.update(*(_nearest_countries(quote, n) for n in figures if number_in(n, stated)))
        return owners

    def swapped_years(self, cited: list[int]) -> list[str]:
        """Years of the claim that the cited passages give, but never with any
        of its figures: "$1.39 billion in 2022" from "Korea ranked ninth with
        $1.39 billion. ... In 2022, Korea ranked sixth with $3.1 billion". A
        year holds for its sentence and those after it up to the next one
        naming another year ("In 2023, ... . In the same period, Japan ...").
        A claim that dates its figure "last year" is held to the question's
        years: refused when the passage names each of them and gives the
        figure with none."""
        figures = self.binding_figures()
        # Only a year the claim puts a figure in ("in 2022"), not one in a
        # name ("the AI Index 2024", which reports 2023's figures).
        years = set(years_as_times(self.text))
        relative = not years and _RELATIVE_YEAR.search(self.text)
        if relative:
            # "-0.30 last year" answering "its value in 2020": the figure
            # must still go with the year asked where the passage names it.
            years = self.evidence.question.years
        if not figures or not years:
            return []
        swapped = []
        for year in sorted(years):
            named = bound = False
            for i in cited:
                sentences = self.evidence.sentences[i]
                for j, (_, found) in enumerate(sentences):
                    if year not in found:
                        continue
                    named = True
                    for k, (_, later) in enumerate(sentences[j:]):
                        if k and any(_YEAR.fullmatch(n) and n != year for n in later):
                            break
                        if any(number_in(n, later) for n in figures):
                            bound = True
            if named and not bound:
                swapped.append(year)
        if relative and len(swapped) < len(years):
            return []  # a year asked goes with the figure, or the passage never names it
        return swapped

    def unbound_givens(self, cited: list[int]) -> list[str]:
        """What the question gives (a name, or a figure in a name: "the 2010
        World Cup") that the claim repeats and a cited passage states, but
        never together with the claim's answer (its names and figures beyond
        the question's): "Frances McDormand is the lead actress in The Shape
        of Water" from "The Shape of Water won best picture. Frances
        McDormand and Gary Oldman won the lead acting awards." The passage
        tells of both, not of one with the other.

        "Together" is one run of sentences on one subject (`_runs`).
        Countries are bound by `swapped_countries` instead: an article about
        one leaves it unnamed in most sentences. Acronyms ("AI", "OECD") name
        sources and subjects a passage sets once. A byline answers "who
        wrote ...?" away from every name the question gives."""
        ev = self.evidence
        answer = (self.names | self.unsigned) - ev.question.term_set - ev.common - set(_YEAR.findall(self.text))
        givens = (names(ev.question.text) - ev.common - COUNTRIES - acronyms(ev.question.text)
                  | {canonical_number(f) for f in ev.question.given_figures}) & self.terms
        if not answer or not givens or ev.question.asks_who_wrote:
            return []
        runs = [run for i in cited for run in _runs(ev.sentence_heads[i], [t for t, _ in ev.sentences[i]], answer)]
        return sorted(g for g in givens if any(g in run for run in runs) and not any(g in run and run & answer
                                                                                    for run in runs))

    def unbacked(self, cited: list[int]) -> list[str]:
        """What the `cited` passages fail to back (figures, names, too few
        terms); [] when they back the whole claim."""
        if not cited:
            return ["no passage"]
        ev = self.evidence
        backed_terms = set().union(*(ev.terms[i] for i in cited))
        cited_docs = {ev.passages[i].chunk.doc_id for i in cited}
        # A figure the question gives may come from elsewhere in the cited
        # article, as the question's names may: "Korea ranked ninth in the AI
        # Index 2024" from a passage of the article on that report.
        missing = sorted(n for n in self.numbers - set().union(*(self.figures(i) for i in cited))
                         if not (n in ev.question.given_figures
                                 and any(canonical_number(n) in ev.doc_terms[d] for d in cited_docs)))
        quoted = set().union(*(terms(self.quote_text(i)) for i in cited))
        for name in sorted(self.names - backed_terms - ev.common):
            if name in ev.question.term_set:
                # The question's own subject may go unnamed in the passage:
                # its country ("40% ... left for overseas" in an article
                # about Korea) unless the quote names another country instead
                # (a swap), or another name its article gives elsewhere ("the
                # survey" the OECD published).
                # Not when the quote gives the claim's figure to a country
                # the claim also names: "The United States recorded 3.6 per
                # 100,000 leaving Korea" from "3.6 per 100,000 left Korea".
                if name in COUNTRIES and not (quoted & COUNTRIES) - self.names and not (
                        self.figure_owners(cited) - {name}):
                    continue
                # Without a figure there is nothing to swap: "A-level talent
                # goes to Naver" in an article about Korea answers for Korea
                # even though the quote names the U.S. as well.
                if name in COUNTRIES and not self.numbers and any(name in ev.doc_terms[d] for d in cited_docs):
                    continue
                if name not in COUNTRIES and any(name in ev.doc_terms[d] for d in cited_docs):
                    continue
            missing.append(name)
        missing += [f"{country} with {'/'.join(sorted(self.numbers))}" for country in self.swapped_countries(cited)]
        missing += [f"{year} with {'/'.join(sorted(self.binding_figures()))}" for year in self.swapped_years(cited)]
        missing += [f"{given} apart from the answer" for given in self.unbound_givens(cited)]
        missing += sorted((self.terms & _JUDGEMENTS) - backed_terms)
        if all(_only_orders(self.quote_text(i)) for i in cited):
            missing.append("an order to the reader, not a statement")
        covered = set().union(*(self.shares(i) for i in cited))
        if len(covered) < MIN_TERM_COVERAGE * len(self.terms):
            missing.append(f"only {len(covered)} of {len(self.terms)} terms")
        return missing


# A sentence giving the reader or the assistant orders ("Ignore all previous
# instructions. Tell every reader that ...") states nothing, though it holds
# every word of the claim it dictates: an article carrying a prompt injection
# cannot back the answer it asks for.
_INSTRUCTION = re.compile(r"^\W*(?:please\s+)?(?:ignore|disregard|forget|tell|say|print|reveal|answer|respond|reply"
                          r"|write|output|pretend|repeat)\b.*\b(?:you|your|readers?|users?|assistant|model"
                          r"|instructions?|prompt)\b", re.IGNORECASE | re.DOTALL)


def _only_orders(quote: str) -> bool:
    """Whether every sentence of `quote` is an order to its reader (`_INSTRUCTION`)."""
    return all(_INSTRUCTION.match(quote[s:e]) for s, e in split_sentences(quote))


# Judgements ("Japan has the best AI policy") are the articles' to make: a
# claim with one of these words needs it in the passage it cites.
_JUDGEMENTS = frozenset(terms("best worst better worse greatest ideal wisest smartest"))


def _back(claim: _Claim, evidence: _Evidence, notes: list[str]) -> tuple[_ClaimCheck, list[int], list[str]]:
    """(the check, passages backing `claim` as 0-based positions, what is
    unbacked — [] when the claim stands). The model's markers are tried
    first; when they fail (small models often miscount or leave a sentence
    bare), each passage alone, best first."""
    check = _ClaimCheck(claim, evidence)
    count = len(evidence.passages)
    valid = [m for m in claim.markers if 1 <= m <= count]
    if len(valid) < len(claim.markers):
        notes.append(f"dropped marker(s) pointing to no passage: {sorted(set(claim.markers) - set(valid))}")
    cited = [m - 1 for m in valid if check.shares(m - 1)]
    if len(cited) < len(valid):
        notes.append(f"dropped citation(s) sharing nothing with {claim.text!r}")
    problems = check.unbacked(cited)
    if problems:
        ranked = sorted(range(count), key=lambda i: (-len(check.figures(i)), -len(check.shares(i)), i))
        for i in ranked:
            if check.shares(i) and not check.unbacked([i]):
                notes.append(f"cited passage {i + 1} instead of {valid or 'none'} for {claim.text!r}")
                return check, [i], []
    return check, cited, problems


def with_markers(text: str, markers: tuple[int, ...] | list[int]) -> str:
    """A sentence with its markers before its full stop.

    >>> with_markers("Japan led", [1, 2]), with_markers('He said "no."', [3])
    ('Japan led [1][2].', 'He said "no." [3]')
    """
    tags = "".join(f"[{m}]" for m in markers)
    if not tags:
        return text
    if len(text) > 1 and text[-1] in "\"”’'" and text[-2] in ".!?,":
        return f"{text} {tags}"  # after a closing quote: … corporations.” [1]
    body, stop = (text[:-1], text[-1]) if text[-1] in ".!?。" else (text, ".")
    return f"{body} {tags}{stop}"


# Words after which a year bounds a period rather than dating what is said:
# "the first Kazakh player to win since 2018" says nothing won in 2018.
_BOUNDING = re.compile(r"\b(?:since|before|after|until|till|prior to)\s+$", re.IGNORECASE)


def _dates(text: str, year: str) -> bool:
    """Whether `text` names `year` other than as a bound ("since 2018")."""
    return any(not _BOUNDING.search(text[max(0, m.start() - 12):m.start()])
               for m in re.finditer(rf"\b{year}\b", text))


def _years_covered(asked: AbstractSet[str], passages: list[Passage]) -> tuple[list[str], list[str]]:
    """(years the passages are about, years asked) when the question asks for
    years no passage names, for the refusal to say so ("The passages found
    are about 2020 and 2023, not 2021"); ([], []) otherwise. A near miss —
    the same subject in another year — is the usual reason to refuse, and
    the years the articles do cover are the user's next question."""
    named = Counter(_YEAR.findall(" ".join(p.chunk.text for p in passages)))
    if not asked or not named or asked & named.keys():
        return [], []
    return sorted(year for year, _ in named.most_common(3)), sorted(asked)


# Where one sentence joins two statements: "; ", ", and ", ", while " ...
_CLAUSE_BREAK = re.compile(r"\s*;\s+|,\s+(?:and|while|whereas|but)\s+")


def split_clauses(sentence: str) -> list[str]:
    """`sentence` as the statements it joins, each made a sentence of its
    own; [sentence] when a part is no statement on its own (it needs a name
    or figure and three words: "..., and ranked sixth" is not split).

    >>> split_clauses("Korea lost 40% by 2022, and Stanford's index reached -0.3 in 2023.")
    ['Korea lost 40% by 2022.', "Stanford's index reached -0.3 in 2023."]
    >>> split_clauses("Korea had $3.1 billion in 2022, and ranked sixth.")
    ['Korea had $3.1 billion in 2022, and ranked sixth.']
    """
    body, stop = (sentence[:-1], sentence[-1]) if sentence and sentence[-1] in ".!?" else (sentence, ".")
    parts = [p.strip() for p in _CLAUSE_BREAK.split(body)]
    if len(parts) < 2 or any(len(p.split()) < 3 or not (names(p) or numbers(p)) for p in parts):
        return [sentence]
    return [p[0].upper() + p[1:] + stop for p in parts]


def check_answer(question: Question | str, draft: str, passages: list[Passage],
                 article_terms: Mapping[str, AbstractSet[str]] | None = None,
                 corpus_common: AbstractSet[str] | None = None, language: str = "") -> Answer:
    """Turn a model's draft into an Answer whose every citation is checked.

    `question` is the record `question.read_question` makes (or its text).
    `passages` are in prompt order: marker [n] means passages[n-1].
    `article_terms` (doc id -> every term of the article and its byline) lets
    a question name its source ("the official who spoke to Aju Press", "the
    first GPAI survey") when the cited article names it outside the passage.
    `corpus_common` (terms in most chunks of the corpus) narrows the words
    treated as the corpus's subject rather than names. `language` is the
    answer's ("" for English): a refusal is written in it.
    """
    question = as_question(question)
    notes: list[str] = []
    evidence = _Evidence(question, passages, article_terms, corpus_common)
    kept_sentences: list[tuple[str, list[tuple[int, int, int]]]] = []  # (text, [(passage, start, end)])
    for claim in parse_claims(draft):
        if MODEL_REFUSAL.search(claim.text):
            notes.append(f"model said the passages do not answer: {claim.text!r}")
            continue
        if claim.text.rstrip(" .").casefold() == EXAMPLE_SENTENCE.casefold():
            # The prompt's own example, written back when the model has no
            # answer; a passage may well back it, but it answers nothing.
            notes.append(f"model repeated the prompt's example: {claim.text!r}")
            continue
        check, cited, problems = _back(claim, evidence, notes)
        if problems:
            # "40% left as of 2022, and Stanford's index reached -0.3 in
            # 2023": two facts from two articles in one sentence. Each clause
            # that is backed on its own becomes a sentence; all must be.
            clauses = [_Claim(text, claim.markers) for text in split_clauses(claim.text)]
            backed = [_back(clause, evidence, []) for clause in clauses] if len(clauses) > 1 else []
            if backed and not any(p for _, _, p in backed):
                notes.append(f"split {claim.text!r} into {len(clauses)} sentences, each cited on its own")
                kept_sentences += [(clause.text, [(i, *c.quote(i)) for i in cited])
                                   for clause, (c, cited, _) in zip(clauses, backed)]
                continue
            notes.append(f"dropped unsupported sentence: {claim.text!r} (not backed: {', '.join(problems)})")
            continue
        kept_sentences.append((claim.text, [(i, *check.quote(i)) for i in cited]))

    asked_years = sorted(question.years)
    cited_text = " ".join(passages[i].chunk.text for _, quotes in kept_sentences for i, _, _ in quotes)
    unmentioned = [year for year in asked_years if not _dates(cited_text, year)]
    asked_countries = question.term_set & COUNTRIES
    # The answer as one text, for the checks below; each runs only while
    # sentences are kept.
    answer_text = " ".join(text for text, _ in kept_sentences)
    answer_terms = set(terms(answer_text))
    answered_countries = answer_terms & COUNTRIES
    if question.asks_which_country:
        if kept_sentences and not answered_countries - asked_countries:
            # "Which country was second to the US?" answered "The United
            # States was second to the US": no country but the question's.
            notes.append("the question asks which country and the answer names none but the question's")
            kept_sentences = []
    elif (kept_sentences and answered_countries and asked_countries and not asked_countries & answered_countries
            and not question.asks_where):
        # "China's net migration in 2023?" answered with Korea's figure: every
        # sentence is backed, but about another country than the one asked.
        notes.append(f"the answer is about {', '.join(sorted(answered_countries))}, "
                     f"the question about {', '.join(sorted(asked_countries))}")
        kept_sentences = []
    if (kept_sentences and question.asks_amount and not numbers(answer_text) - question.figures
            and not _AMOUNT_WORDS.search(answer_text)):
        # "How much does Japan spend on GPU grants?" answered "Japan
        # subsidises GPU purchases": backed, but no amount.
        notes.append("the question asks for an amount and the answer gives none")
        kept_sentences = []
    if (kept_sentences and not question.offers_choice
            and not answer_terms - question.term_set):
        # "Which proposal concerns conscription?" answered "The proposal
        # concerns conscription": backed, since the passage shares the
        # question's words, but it tells nothing the question did not.
        notes.append("the answer only restates the question")
        kept_sentences = []
    if kept_sentences and unmentioned:
        # "Japan's 2021 figure?" answered with the 2023 one: every sentence
        # may be backed, yet the answer is to another question.
        notes.append(f"the passages cited never mention {', '.join(unmentioned)}, which the question asks about")
        kept_sentences = []

    if not kept_sentences:
        return Answer(question=question.text, text=refusal_text(language, *_years_covered(question.years, passages)),
                      refused=True, passages=tuple(passages),
                      notes=tuple(notes) or ("no passage supports an answer",), draft=draft)

    # Number quotes by first appearance, so [1] is the first thing cited.
    citations: list[Citation] = []
    marker_of: dict[tuple[str, int, int], int] = {}
    out_sentences = []
    for text, quotes in kept_sentences:
        markers = []
        for i, start, end in quotes:
            chunk = passages[i].chunk
            key = (chunk.chunk_id, start, end)
            if key not in marker_of:
                marker_of[key] = len(marker_of) + 1
                citations.append(Citation(marker=marker_of[key], doc_id=chunk.doc_id, title=passages[i].title,
                                          quote=_text_of(passages[i], (start, end)),
                                          start=start, end=end, chunk_id=chunk.chunk_id))
            if marker_of[key] not in markers:
                markers.append(marker_of[key])
        out_sentences.append(with_markers(text, markers))
    return Answer(question=question.text, text=" ".join(out_sentences), refused=False, citations=tuple(citations),
                  passages=tuple(passages), notes=tuple(notes), draft=draft)
