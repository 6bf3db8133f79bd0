"""Every prompt the project sends to a model, and the phrases read back from it.

Kept in one place so the pipeline, the tests and the eval use the same text.
The prompts are short on purpose: on two CPU cores every prompt token costs
about 6 ms of prefill with the 1.5B model.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

# The model sees passages numbered [1]..[n] and must tag each sentence with the
# numbers it rests on. Small models copy a format better than they follow
# abstract rules, hence the worked example of the marker style.
EXAMPLE_SENTENCE = "The bridge reopened in May 1998 after a $40 million repair"
ANSWER_SYSTEM = (
    "You answer questions about news articles using only the numbered passages given. "
    "Answer in one to three complete sentences that name what the figure or fact is about. "
    "When passages give different figures for the same thing, give each in its own sentence. "
    "End every sentence with the number of the passage it comes from in square brackets, "
    f"like this: {EXAMPLE_SENTENCE} [2]. "
    "Copy names and figures exactly as the passage writes them."
)
# There is deliberately no "say the articles do not say" way out: the 1.5B
# model took it for about one answerable question in six. Whether the
# articles answer is decided in code instead — the refusal gate before the
# model (pipeline), and cite.py after it, which refuses a draft whose
# sentences the passages do not back.
ANSWER_USER = "Passages:\n{passages}\n\nQuestion: {question}"
# A question in another language (question.Question.language) is answered in
# it, with names as the passages spell them: the citation checks find them in
# the English quote that way, and the reader finds them in the article. Used
# only when `translate_questions` is off (see translate.py).
ANSWER_LANGUAGE = " Write the answer in {language}, but write names as the passages spell them."

# A question in another language is put into English before anything else
# reads it (translate.py). The worked example is about nothing in any corpus;
# it shows the form wanted (a question, figures in digits, "10만" as 100,000).
TRANSLATE_QUESTION_SYSTEM = (
    "Translate the user's question into English. Keep every name, number and unit. "
    "Write Korean names of people in their usual English spelling. Reply with the English question only."
)
# Added when words of the question spell names the articles write.
TRANSLATE_QUESTION_SPELLINGS = " The articles spell these names so: {}."
TRANSLATE_QUESTION_EXAMPLE = ("2020년 부산의 인구 10만 명당 병원 수는 몇 개였나요?",
                              "How many hospitals per 100,000 people did Busan have in 2020?")
# A checked English answer is put into the reader's language sentence by
# sentence, without its markers; translate.py keeps a translation only where
# its sentence's figures and names survive.
TRANSLATE_ANSWER_SYSTEM = (
    "Translate the user's sentence into {language}. Keep every number exactly as written, and write the names "
    "of people, organisations and places in Latin letters as written. Reply with the translation only."
)

# One passage line in the prompt: its number, article title and text.
PASSAGE_LINE = "[{number}] ({title}) {text}"

# What a refusal tells the user, and what it adds when the question asks for
# years no passage names (see cite._years_covered): in English, or in the
# language the answer is written in where these have it.
REFUSAL_TEXT = "The articles don't cover this question."
_REFUSALS = {
    "": (REFUSAL_TEXT, " The passages found are about {found}, not {asked}.", " and ", " or "),
    "Korean": ("기사에는 이 질문에 대한 내용이 없습니다.", " 찾은 구절은 {found}에 관한 것이며 {asked}에 관한 것은 없습니다.",
               "년과 ", "년이나 "),
}


def refusal_text(language: str = "", found_years: list[str] | None = None, asked_years: list[str] | None = None) -> str:
    """The refusal in `language` ("" for English, which also stands in for a
    language without its own text), saying which years the passages are
    about when `found_years` and `asked_years` are given.

    >>> refusal_text("", ["2020", "2023"], ["2021"])
    "The articles don't cover this question. The passages found are about 2020 and 2023, not 2021."
    """
    text, years, and_, or_ = _REFUSALS.get(language, _REFUSALS[""])
    if not (found_years and asked_years):
        return text
    unit = "년" if language == "Korean" else ""
    return text + years.format(found=and_.join(found_years) + unit, asked=or_.join(asked_years) + unit)

# Ways a model says the passages hold no answer. Matched case-insensitively
# against the whole draft; a draft that says so is a refusal even if it also
# carries markers.
MODEL_REFUSAL = re.compile(
    r"articles? (?:do(?:es)? not|don['’]t) (?:say|mention|contain|provide|specify|state|answer|cover)"
    r"|passages? (?:do(?:es)? not|don['’]t) (?:say|mention|contain|provide|specify|state|answer|cover)"
    r"|(?:is|are|was|were) not (?:mentioned|stated|provided|specified|given)"
    r"|no (?:information|mention|data)\b"
    r"|(?:cannot|can['’]t|unable to) (?:answer|find|determine|be determined)",
    re.IGNORECASE,
)


def format_passages(passages: list[tuple[str, str]]) -> str:
    """Number (title, text) pairs from 1 in the order given; a pair with no
    text is left out but keeps its number, so [n] still means passage n."""
    return "\n".join(PASSAGE_LINE.format(number=i, title=title, text=" ".join(text.split()))
                     for i, (title, text) in enumerate(passages, start=1) if text.strip())


def answer_messages(question: str, passages: list[tuple[str, str]], language: str = "") -> list[dict[str, str]]:
    """Chat messages asking for a cited answer to `question` from `passages`,
    written in `language` when it is not "" (English)."""
    system = ANSWER_SYSTEM + (ANSWER_LANGUAGE.format(language=language) if language else "")
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": ANSWER_USER.format(passages=format_passages(passages), question=question)},
    ]


def translate_question_messages(question: str, spellings: Mapping[str, str] | None = None) -> list[dict[str, str]]:
    """Chat messages asking for `question` in English; `spellings` (a word of
    the question -> the articles' name it spells, see hangul.py) are given
    to the model, which otherwise guesses a name's English spelling."""
    example_question, example_english = TRANSLATE_QUESTION_EXAMPLE
    system = TRANSLATE_QUESTION_SYSTEM
    if spellings:
        system += TRANSLATE_QUESTION_SPELLINGS.format("; ".join(f"{w} = {n}" for w, n in spellings.items()))
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": example_question},
        {"role": "assistant", "content": example_english},
        {"role": "user", "content": question},
    ]


def translate_answer_messages(sentence: str, language: str) -> list[dict[str, str]]:
    """Chat messages asking for one answer `sentence` (without markers) in `language`."""
    return [
        {"role": "system", "content": TRANSLATE_ANSWER_SYSTEM.format(language=language)},
        {"role": "user", "content": sentence},
    ]


_TRANSLATE_ANSWER_START = TRANSLATE_ANSWER_SYSTEM.split("{language}")[0]


def request_kind(messages: list[dict[str, str]]) -> str:
    """Which of the prompts above `messages` are: "translate_question",
    "translate_answer" or "answer" (for a generator that stands in for the
    model: the eval's replay, the tests' fake)."""
    system = messages[0]["content"] if messages else ""
    if system.startswith(TRANSLATE_QUESTION_SYSTEM):
        return "translate_question"
    if system.startswith(_TRANSLATE_ANSWER_START):
        return "translate_answer"
    return "answer"
