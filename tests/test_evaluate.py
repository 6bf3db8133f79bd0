"""The eval's scoring on hand-made answers: fact matching, citation support,
refusal figures and gold ranks."""

from __future__ import annotations

from rag.evaluate import Gold, Item, alias_pattern, below_thresholds, metrics, missing_facts, quote_supports, score
from rag.types import Answer, Chunk, Citation

JAPAN = "In the same period, Japan recorded a net inflow of +0.54, amounting to approximately 5.4 individuals."
ITEM = Item(id="f1", kind="fact", split="dev", question="What was Japan's net AI talent inflow in 2023?",
            facts=(("0.54",),), gold=(Gold("004", JAPAN),))


def _answer(text: str, quotes: dict[int, str], refused: bool = False, seconds: float = 1.0) -> Answer:
    citations = tuple(Citation(marker=m, doc_id="004", title="t", quote=q, start=0, end=len(q), chunk_id="004#a")
                      for m, q in quotes.items())
    return Answer(question=ITEM.question, text=text, refused=refused, citations=citations,
                  timings={"total": seconds})


def test_aliases_match_whole_numbers_and_words():
    assert alias_pattern("0.54").search("was +0.54 [1].")
    assert not alias_pattern("0.54").search("was 10.54")
    assert not alias_pattern("0.54").search("was 0.541")
    assert not alias_pattern("3").search("about 3.6 people")
    assert alias_pattern("re:40\\s*(%|percent)").search("40 percent")
    assert missing_facts(ITEM, "Japan’s figure was 0.54.") == []
    assert missing_facts(ITEM, "Japan's figure was 0.45.") == ["0.54"]


def test_a_quote_supports_a_sentence_only_with_its_figures_names_and_terms():
    assert quote_supports("Japan recorded a net inflow of +0.54.", JAPAN)
    assert not quote_supports("Japan recorded a net inflow of +0.45.", JAPAN)
    assert not quote_supports("China recorded a net inflow of +0.54.", JAPAN)
    assert not quote_supports("The budget for semiconductor subsidies rose sharply.", JAPAN)
    # The question's own subject may go unnamed in the quote.
    assert quote_supports("Korea lost 3 people.", "About 3 people were lost in the country.", "How many did Korea lose?")
    # So may a figure it gives ("the AI Index 2024"), but not one it does not.
    assert quote_supports("Japan recorded a net inflow of +0.54 in the AI Index 2024.", JAPAN,
                          "What inflow did Japan record in the AI Index 2024?")
    assert not quote_supports("Japan recorded a net inflow of +0.54 in the AI Index 2024.", JAPAN, ITEM.question)


def test_score_and_metrics():
    right = score(ITEM, _answer("Japan's net inflow was +0.54 [1].", {1: JAPAN}), [])
    assert right.correct and right.citations == right.supporting_citations == 1 and right.cites_gold
    wrong_cite = score(ITEM, _answer("Japan's net inflow was +0.54 [1].", {1: "Korea fell to -0.30."}), [])
    assert wrong_cite.correct and wrong_cite.supporting_citations == 0
    refused = score(ITEM, _answer("The articles don't cover this question.", {}, refused=True), [])
    refuse_item = Item(id="r1", kind="refuse", split="dev", question="Who won the World Cup?")
    refused_right = score(refuse_item, _answer("The articles don't cover this question.", {}, refused=True), [])
    answered_wrong = score(refuse_item, _answer("Argentina won [1].", {1: JAPAN}), [])
    figures = metrics([right, wrong_cite, refused, refused_right, answered_wrong])
    assert figures["answer_accuracy"] == 2 / 3
    assert figures["refusal_precision"] == 1 / 2 and figures["refusal_recall"] == 1 / 2
    assert figures["citation_precision"] == 1 / 3  # the Argentina citation does not support its sentence
    assert figures["citation_recall"] == 1 / 3
    assert figures["wrong_answer_rate"] == 1 / 5  # Argentina; the missing-citation answer is still right
    assert below_thresholds(figures, {"answer_accuracy": 0.9, "seconds_p95": 5.0, "wrong_answer_rate": 0.1}) == [
        "answer_accuracy = 0.667 (threshold 0.900)", "wrong_answer_rate = 0.200 (threshold 0.100)"]


def test_gold_rank_finds_the_chunk_holding_the_quote():
    other = Chunk("004#x", "004", "Korea fell.", 0, 11)
    gold = Chunk("004#y", "004", "Before. " + JAPAN + " After.", 20, 200)
    result = score(ITEM, _answer("x", {}, refused=True), [other, gold])
    assert result.gold_ranks == [2] and result.gold_in_context == [False]


def test_retrieval_recall_counts_the_passages_the_model_was_given():
    import dataclasses

    from rag.types import Passage

    gold = Chunk("004#y", "004", JAPAN, 20, 200)
    given = dataclasses.replace(_answer("Japan's net inflow was +0.54 [1].", {1: JAPAN}),
                                passages=(Passage(gold, "t", 0.1, 1, 0.5, 1.0),))
    found, missed = score(ITEM, given, [gold]), score(ITEM, _answer("x", {}, refused=True), [gold])
    assert found.gold_in_context == [True] and missed.gold_ranks == [1] and missed.gold_in_context == [False]
    assert metrics([found, missed])["retrieval_recall_at_k"] == 1 / 2


def test_gold_evidence_shows_the_model_only_the_gold_quotes(settings):
    from rag.evaluate import gold_evidence_answer
    from rag.pipeline import Assistant
    from tests.conftest import FakeGenerator, HashEmbedder

    quote = ("In the same period, Japan recorded a net inflow of +0.54, amounting to approximately 5.4 "
             "individuals for every 100,000.")
    item = Item(id="f1", kind="fact", split="dev", question="What was Japan's net AI talent inflow in 2023?",
                facts=(("0.54",),), gold=(Gold("004_8845b63d3c664428", quote),))
    generator = FakeGenerator("Japan recorded a net inflow of +0.54 [1].")
    answer = gold_evidence_answer(item, Assistant(settings, embedder=HashEmbedder(), generator=generator))
    prompt = generator.messages[0][-1]["content"]
    assert quote in prompt and "-0.30" not in prompt  # the quote, not the chunk around it
    assert not answer.refused and answer.citations[0].doc_id == "004_8845b63d3c664428"
    assert not missing_facts(item, answer.text)
