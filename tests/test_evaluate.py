"""The eval's scoring on hand-made answers: fact matching, citation support,
refusal figures and gold ranks."""

from __future__ import annotations

import dataclasses

import pytest

from rag.evaluate import (Gold, Item, alias_pattern, below_thresholds, citation_is_right, metrics, missing_facts,
                          score)
from rag.prompts import request_kind
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


def test_a_citation_is_judged_by_the_item_alone():
    # Right when its quote overlaps a gold quote (one of its sentences will do) ...
    assert citation_is_right(ITEM, "004", JAPAN)
    assert citation_is_right(ITEM, "004", "Earlier text. " + JAPAN)
    assert citation_is_right(ITEM, "004", "In the same period, Japan recorded a net inflow of +0.54, amounting")
    # ... or states a required fact, from whichever article.
    assert citation_is_right(ITEM, "003", "Japan's inflow stood at 0.54 that year.")
    # Wrong otherwise: another article's quote, another figure.
    assert not citation_is_right(ITEM, "003", JAPAN.replace("0.54", "0.45"))
    assert not citation_is_right(ITEM, "004", "Korea fell to -0.30.")


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
    # A refuse item's citations have no gold to be judged by: the wrongly
    # answered one counts in wrong answers shown, not here.
    assert figures["citation_precision"] == 1 / 2  # the -0.30 quote states no required fact
    assert figures["citation_recall"] == 1 / 2
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


def test_given_english_replaces_only_the_questions_translation(settings):
    from rag.evaluate import GivenEnglish
    from rag.pipeline import Assistant
    from tests.conftest import FakeGenerator, HashEmbedder

    english = "What was Japan's net AI talent inflow in 2023?"
    korean = "2023년 일본의 AI 인재 순유입은  얼마였나요?"
    model = FakeGenerator("Japan recorded a net inflow of +0.54 [1].",
                          replies={" ".join(korean.split()): "How did Korea fare?"})
    generator = GivenEnglish(model, {korean: english})
    answer = Assistant(settings, embedder=HashEmbedder(), generator=generator).ask(korean)
    assert answer.asked == english  # not the model's "How did Korea fare?"
    kinds = [request_kind(m) for m in model.messages]
    assert "translate_question" not in kinds and kinds[0] == "answer"  # the draft is still the model's
    assert english in model.messages[0][-1]["content"]


def test_given_english_needs_a_language(settings, tmp_path):
    from rag.errors import BadInput
    from rag.evaluate import evaluate

    with pytest.raises(BadInput, match="--language"):
        evaluate(settings, "test", [tmp_path / "none.jsonl"], tmp_path, given_english=True)


def test_a_fact_item_counts_any_of_its_gold_quotes_and_a_multi_item_each(tmp_path):
    other = "Elsewhere, Japan's inflow was put at +0.54 as well."
    fact = Item(id="f2", kind="fact", split="dev", question="q", facts=(("0.54",),),
                gold=(Gold("004", JAPAN), Gold("003", other)))
    multi = dataclasses.replace(fact, id="m1", kind="multi")
    found = Chunk("003#a", "003", other, 0, len(other))
    answer = _answer("Japan's net inflow was +0.54 [1].", {1: JAPAN})
    as_fact, as_multi = score(fact, answer, [found]), score(multi, answer, [found])
    assert as_fact.gold_ranks == [1] and as_fact.cites_gold
    assert as_multi.gold_ranks == [None, 1] and as_multi.cites_gold is False


def test_items_load_from_any_files_and_ids_must_be_unique(tmp_path):
    from rag.errors import BadInput
    from rag.evaluate import load_items

    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text('{"id": "x1", "kind": "refuse", "split": "dev", "question": "q?"}\n', encoding="utf-8")
    b.write_text('{"id": "x2", "kind": "refuse", "split": "test", "question": "r?"}\n', encoding="utf-8")
    assert [i.id for i in load_items([a, b])] == ["x1", "x2"]
    assert [i.id for i in load_items([a, b], "test")] == ["x2"]
    b.write_text('{"id": "x1", "kind": "refuse", "split": "test", "question": "r?"}\n', encoding="utf-8")
    with pytest.raises(BadInput, match="repeat"):
        load_items([a, b])
    with pytest.raises(BadInput, match="line 1"):
        a.write_text('{"id": "x1"}\n', encoding="utf-8")
        load_items([a])


def test_another_corpus_gets_an_index_of_its_own(settings, tmp_path):
    from rag.evaluate import corpus_settings

    corpus = tmp_path / "news"
    corpus.mkdir()
    other = corpus_settings(settings, corpus)
    assert other.seeds_dir == corpus.resolve() and other.index_dir != settings.index_dir
    assert other.index_dir == corpus_settings(settings, corpus).index_dir  # a second run reuses it


def test_replay_writes_back_the_stored_drafts(settings, tmp_path):
    import json

    from rag.evaluate import ReplayGenerator
    from rag.pipeline import Assistant
    from tests.conftest import HashEmbedder

    question = "What was Japan's net AI talent inflow per 10,000 people in 2023?"
    report = tmp_path / "r.json"
    report.write_text(json.dumps({"results": [{"question": question, "draft": "Japan recorded +0.54 [1]."}]}))
    answer = Assistant(settings, embedder=HashEmbedder(), generator=ReplayGenerator(report)).ask(question)
    assert answer.draft == "Japan recorded +0.54 [1]." and not answer.refused


def test_replay_writes_a_joined_draft_once_for_the_asks_of_each_article_and_again_when_asked_anew(tmp_path):
    import json

    from rag.evaluate import ReplayGenerator

    question = "How do the articles rank Korea?"
    report = tmp_path / "r.json"
    report.write_text(json.dumps({"results": [{"question": question, "draft": "A [1]. B [2]."}]}))
    replay = ReplayGenerator(report)

    def ask(passages: str) -> str:
        return "".join(replay.stream([{"role": "user", "content": f"Passages:\n{passages}\n\nQuestion: {question}"}]))

    assert [ask("[1] a"), ask("[2] b"), ask("[1] a"), ask("[2] b")] == ["A [1]. B [2].", "", "A [1]. B [2].", ""]


def test_replay_of_a_translated_question_uses_its_recorded_english_and_keeps_the_answer_english(settings, tmp_path):
    import json

    from rag.evaluate import ReplayGenerator
    from rag.pipeline import Assistant
    from tests.conftest import HashEmbedder

    korean = "2023년 일본의 인구 1만 명당 AI 인재 순유입은 얼마였나요?"
    english = "What was Japan's net AI talent inflow per 10,000 people in 2023?"
    report = tmp_path / "r.json"
    report.write_text(json.dumps({"results": [{"question": korean, "asked": english,
                                               "draft": "Japan recorded +0.54 [1]."}]}))
    answer = Assistant(settings, embedder=HashEmbedder(), generator=ReplayGenerator(report)).ask(korean)
    assert answer.asked == english and answer.draft == "Japan recorded +0.54 [1]."
    assert not answer.refused and answer.text == "Japan recorded +0.54 [1]."
