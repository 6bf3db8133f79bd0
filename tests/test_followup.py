"""Follow-up questions become standalone questions by rule."""

import pytest

from rag.followup import rewrite

KOREA = "What was Korea's net AI talent outflow per 10,000 people in 2023?"


@pytest.mark.parametrize("question, previous, expected", [
    # The same-kind entity is swapped: country, year, name.
    ("And Japan?", KOREA, "What was Japan's net AI talent outflow per 10,000 people in 2023?"),
    ("Japan?", KOREA, "What was Japan's net AI talent outflow per 10,000 people in 2023?"),
    ("and japan", KOREA, "What was Japan's net AI talent outflow per 10,000 people in 2023?"),
    ("What about 2019?", KOREA, "What was Korea's net AI talent outflow per 10,000 people in 2019?"),
    ("And in 2020?", KOREA, "What was Korea's net AI talent outflow per 10,000 people in 2020?"),
    ("How about Samsung?", "How many researchers does Sakana AI employ?", "How many researchers does Samsung employ?"),
    ("What about Kakao?", "Which AI experts did Naver hire in 2024?", "Which AI experts did Kakao hire in 2024?"),
    # Numbers other than years: the year stays.
    ("What about 100,000?", KOREA, "What was Korea's net AI talent outflow per 100,000 people in 2023?"),
    # Every mention of the country changes, adjectives stay adjectives.
    ("And Japan?", "How many Korean researchers left South Korea in 2023?",
     "How many Japanese researchers left Japan in 2023?"),
    ("And Japanese?", "How many Korean researchers left Korea?", "How many Japanese researchers left Japan?"),
    # Initials take "the"; a swapped-out "the U.S." loses it.
    ("And the US?", KOREA, "What was the US's net AI talent outflow per 10,000 people in 2023?"),
    ("And Japan?", "How many researchers moved to the U.S. in 2023?", "How many researchers moved to Japan in 2023?"),
    # Pronouns take the previous question's subject.
    ("What did they pay?", "How much did Naver and Kakao spend on AI talent?", "What did Naver and Kakao pay?"),
    ("What is its population?", KOREA, "What is Korea's population?"),
    ("How many people left there?", KOREA, "How many people left in Korea?"),
    ("How many employees does it have?", "When was Sakana AI founded?", "How many employees does Sakana AI have?"),
])
def test_follow_ups_are_rewritten(question, previous, expected):
    assert rewrite(question, [previous]) == expected


@pytest.mark.parametrize("question, previous", [
    ("Why did that happen?", KOREA),  # nothing to substitute: the context goes in front
    ("Why?", KOREA),
    ("How many of them left?", KOREA),  # "them" are people, not Korea
    ("What did she do before?", "Who was nominated as Minister of Science and ICT?"),
    ("What about the outflow?", "What did the OECD report?"),  # a common noun: no entity to swap
    ("And Japan?", "Who was nominated as Minister of Science and ICT?"),  # no country to swap
])
def test_follow_ups_without_a_swap_keep_the_previous_question_as_context(question, previous):
    assert rewrite(question, [previous]) == f"{previous} {question}"


@pytest.mark.parametrize("question", [
    "What was Japan's net AI talent inflow per 10,000 people in 2023?",  # standalone, though a country differs
    "Is there a plan to stem the outflow?",  # existential "there"
    "Which country has the most AI talent that left?",  # relative "that"
    "Who was nominated as Minister of Science and ICT?",
    "Thanks",
])
def test_standalone_questions_are_unchanged(question):
    assert rewrite(question, [KOREA]) == question


def test_first_question_and_empty_history_are_unchanged():
    assert rewrite("And Japan?", []) == "And Japan?"
    assert rewrite("  And   Japan? ", ["", "  "]) == "And Japan?"
    assert rewrite("", [KOREA]) == ""


def test_chains_use_the_latest_rewritten_question():
    history = [KOREA]
    history.append(rewrite("And Japan?", history))
    history.append(rewrite("What about 2019?", history))
    assert history[-1] == "What was Japan's net AI talent outflow per 10,000 people in 2019?"


def test_names_join_across_of_and_and():
    assert rewrite("How about the Ministry of Education?", ["What did the Minister of Science and ICT announce?"]) \
        == "What did the Ministry of Education announce?"
