"""Reading a question once into what it asks."""

from __future__ import annotations

from rag.question import as_question, read_question, years_as_times


def test_years_asked_are_told_from_years_in_names():
    q = read_question("What did Korea record in 2021, according to the AI Index 2024?")
    assert q.years == {"2021"} and q.given_figures == {"2024"}
    assert years_as_times("the 2022 World Cup final") == frozenset()
    assert years_as_times("between 2019 and 2023") == {"2019", "2023"}


def test_the_form_of_a_question():
    assert read_question("How do the articles rank it?").about_the_articles
    assert read_question("Who wrote the report?").asks_who_wrote
    assert read_question("Was it gaining or losing talent?").offers_choice
    assert read_question("Did the ministry respond?").offers_choice
    assert read_question("Which two countries lead?").asks_which_country
    assert read_question("Where do they go?").asks_where
    assert all(read_question(q).asks_amount for q in ("How many left?", "How much did it cost?",
                                                      "What share of firms agreed?", "What was the growth rate?"))
    plain = read_question("What was the budget?")
    assert not (plain.about_the_articles or plain.asks_who_wrote or plain.offers_choice
                or plain.asks_which_country or plain.asks_where or plain.asks_amount)


def test_terms_keep_their_order_and_text_is_read_once():
    q = read_question("Japan's inflow of +0.54 in 2023?")
    assert q.terms == ("japan", "inflow", "0.54", "2023") and q.figures == {"0.54", "2023"}
    assert as_question(q) is q and as_question(q.text) == q
