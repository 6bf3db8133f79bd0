"""The model reads only the sentences of a passage that bear on the question."""

from __future__ import annotations

from rag.chunk import chunk_article
from rag.evidence import MOST_ARTICLES_ASKED, evidence_sets, evidence_texts
from rag.ingest import load_corpus
from rag.types import Chunk, Passage

from .conftest import SEEDS


def _passage(text: str, rank: int = 1, doc_id: str = "d") -> Passage:
    from rag.text import split_sentences

    chunk = Chunk(f"{doc_id}#{rank}", doc_id, text, 0, len(text), tuple(split_sentences(text)))
    return Passage(chunk=chunk, title="t", score=1.0, rank=rank, dense_score=0.5, lexical_score=1.0)


def evidence_text(question: str, passage: Passage, weight) -> str:
    return evidence_texts(question, [passage], weight)[0]


def _uniform(term: str) -> float:
    return 1.0


def test_sentences_without_question_terms_are_left_out():
    text = ("Professor Kim spoke at length. Japan recorded a net inflow of +0.54 in 2023. "
            "The weather was mild.")
    assert evidence_text("What was Japan's net inflow?", _passage(text), _uniform) == (
        "… Japan recorded a net inflow of +0.54 in 2023. …")


def test_a_sentence_pointing_back_keeps_the_one_before():
    text = ("Korea had a net outflow of -0.30 per 10,000 people in 2023. Officials met. "
            "In the same period, Japan recorded +0.54.")
    assert evidence_text("What was Japan's figure?", _passage(text), _uniform) == (
        "… Officials met. In the same period, Japan recorded +0.54.")
    text = "Korea had a net outflow of -0.30 in 2023. In the same period, Japan recorded +0.54."
    assert evidence_text("What was Japan's figure?", _passage(text), _uniform) == text


def test_a_passage_sharing_no_term_is_kept_whole():
    text = "Talent leaves. Firms worry."
    assert evidence_text("Who won the World Cup?", _passage(text), _uniform) == text


def test_kept_text_is_made_of_the_articles_own_sentences():
    articles, _ = load_corpus(SEEDS, 2_000_000)
    for article in articles:
        for chunk in chunk_article(article, 450, 120):
            passage = Passage(chunk=chunk, title="t", score=1, rank=1, dense_score=0.5, lexical_score=1)
            kept = evidence_text("Korea AI talent outflow 2023", passage, _uniform)
            for piece in kept.strip(" …").split(" … "):
                assert piece in article.text


def test_a_sentence_pointing_back_to_a_kept_one_is_kept():
    text = ("Korea's migration index reached -0.3 in 2023. The country's point was 0.3 in 2020 and began to "
            "decline in 2021. Officials met.")
    assert evidence_text("When did Korea's migration index start falling?", _passage(text), _uniform) == (
        "Korea's migration index reached -0.3 in 2023. The country's point was 0.3 in 2020 and began to "
        "decline in 2021. …")


def test_the_budget_keeps_the_best_sentences_across_passages():
    first = _passage("Officials met in Seoul. Korea's outflow was -0.36 in 2023.", rank=1)
    second = _passage("Japan recorded a net inflow of +0.54 in 2023. The weather was mild.", rank=2)
    third = _passage("Japan's inflow of AI talent rose. Net inflow figures came from the OECD.", rank=3)
    question = "What was Japan's net inflow in 2023?"
    texts = evidence_texts(question, [first, second, third], _uniform, max_chars=60)
    # Only the best sentence fits; the others' passages are left out of the prompt.
    assert texts == ["", "Japan recorded a net inflow of +0.54 in 2023. …", ""]
    everything = evidence_texts(question, [first, second, third], _uniform, max_chars=10_000)
    # A roomy budget adds every sentence with enough of the question's terms, and no other.
    assert everything == ["", "Japan recorded a net inflow of +0.54 in 2023. …", third.chunk.text]


def test_passages_left_out_keep_their_numbers_in_the_prompt():
    from rag.prompts import format_passages

    lines = format_passages([("A", "first"), ("B", ""), ("C", "third")]).splitlines()
    assert lines == ["[1] (A) first", "[3] (C) third"]


def test_a_question_about_the_writer_gets_the_byline():
    text = "Korea losing AI talent abroad: report\nBy Park Sae-jin Posted : April 17, 2024\nSEOUL (AJU PRESS) - Korea lost talent."
    shown = evidence_texts("Who wrote the report on Korea losing AI talent?", [_passage(text)], _uniform, 60)[0]
    assert "By Park Sae-jin" in shown
    # Other questions do not spend the budget on it.
    assert "Park" not in evidence_texts("Is Korea losing AI talent?", [_passage(text)], _uniform, 60)[0]


def test_a_question_about_the_articles_is_asked_of_each_article_apart():
    passages = [_passage("The harbour report put the toll at 40 ships.", 1, "a"),
                _passage("The harbour board counted 38 ships in the toll.", 2, "b"),
                _passage("The harbour toll rose in 1920.", 3, "a"),
                _passage("Rain fell all week.", 4, "c")]
    asks = evidence_sets("What toll of ships do the articles give for the harbour?", passages, _uniform)
    # Article a's passages, then article b's; c shares no term and is not asked.
    assert [[bool(text) for text in texts] for texts in asks] == [[True, False, True, False],
                                                                  [False, True, False, False]]
    assert asks[1][1] == passages[1].chunk.text
    # Any other question is one ask over all the passages.
    assert len(evidence_sets("What toll of ships did the harbour report give?", passages, _uniform)) == 1


def test_one_article_or_many_articles_keep_the_number_of_asks_small():
    same = [_passage(f"The harbour counted {n} ships.", n, "a") for n in (1, 2)]
    assert len(evidence_sets("How many ships do the articles count?", same, _uniform)) == 1
    many = [_passage(f"The harbour counted {n} ships.", n, f"doc{n}") for n in range(1, 6)]
    assert len(evidence_sets("How many ships do the articles count?", many, _uniform)) == MOST_ARTICLES_ASKED
