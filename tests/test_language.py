"""Questions in another language than the articles' (Korean here): reading
them into terms common to both, cross-lingual search, the prompt, the
citation checks on a Korean claim against its English quote, follow-ups and
the eval's translated items. The models are fakes; tests/test_eval.py runs
the real ones."""

import dataclasses
import json

import numpy as np
import pytest

from rag import Assistant
from rag.cite import check_answer
from rag.crosslingual import CrossLingualVectors
from rag.evaluate import Item, in_language, missing_facts
from rag.followup import rewrite
from rag.prompts import (TRANSLATE_ANSWER_SYSTEM, TRANSLATE_QUESTION_SPELLINGS, TRANSLATE_QUESTION_SYSTEM,
                         answer_messages, request_kind)
from rag.question import read_question
from rag.text import foreign_country, numbers, script_language, terms
from rag.translate import (answer_in_language, asked_in_english, kept_in_translation, ordinary_words, repair_figure,
                           question_to_english)
from rag.types import Progress

from .conftest import FakeGenerator, HashEmbedder
from .test_cite import _assert_quotes_exact, _passages

JAPAN_2023 = "OECD 조사에서 일본은 2023년 AI 인재 순유입을 얼마로 기록했나요?"  # a dev item's question


class FakeMultilingual(HashEmbedder):
    """Hashed terms, which `terms` makes common to both languages ("일본" ->
    "japan"), so a Korean question lands near the English chunk it asks about."""

    model_id = "test/multilingual"
    model_hash = "fake-multilingual"  # names its cache file

    def __init__(self) -> None:
        super().__init__(salt="ml")
        self.queries: list[str] = []

    def encode_queries(self, texts):
        self.queries += texts
        return self.encode(texts)

    def encode_passages(self, texts):
        return self.encode(texts)


@pytest.mark.parametrize("text, language", [
    (JAPAN_2023, "Korean"),
    ("What was Japan's net inflow in 2023?", ""),
    ("Was ist mit Japan?", ""),  # Latin script is read as English
    ("2023年の日本のAI人材の純流入は?", "Japanese"),
    ("2023年日本的人工智能人才净流入是多少?", "Chinese"),
    ("Who is 하정우?", ""),  # one Korean name in an English question
])
def test_the_language_is_read_from_the_script(text, language):
    assert script_language(text) == language
    assert read_question(text).language == language


def test_figures_years_names_and_countries_are_terms_both_languages_share():
    korean = terms("2023년 일본의 인구 1만 명당 Ha Jung-woo를 +0.54")
    english = terms("Japan, per 10,000 people in 2023: Ha Jung-woo +0.54")
    assert {"2023", "japan", "10000", "ha", "jung", "woo", "0.54"} <= set(korean) & set(english)
    assert numbers("72억 6천만 달러, 3만 2천 명, 1만 명당") == {"7260000000", "32000", "10000"}
    assert foreign_country("인도네시아") == "indonesia" and foreign_country("인도의") == "india"
    assert foreign_country("한국은") == "korea" and foreign_country("인재") is None


def test_a_korean_question_asks_its_years():
    asked = read_question("AI 인덱스 2024에 따르면 2023년 일본의 순유입은?")
    assert asked.years == {"2023"} and asked.given_figures == {"2024"}


def test_the_prompt_asks_for_the_questions_language():
    english = answer_messages("q", [("t", "text")])
    korean = answer_messages("q", [("t", "text")], "Korean")
    assert "Korean" in korean[0]["content"] and "Korean" not in english[0]["content"]
    assert korean[1] == english[1]


def test_a_korean_claim_is_checked_against_its_english_quote():
    passages = _passages("Korea had a net outflow")
    answer = check_answer(JAPAN_2023, "2023년 일본의 인구 1만 명당 AI 인재 순유입은 +0.54였습니다 [1].", passages)
    assert not answer.refused and "+0.54" in answer.citations[0].quote
    _assert_quotes_exact(answer)
    wrong_figure = check_answer(JAPAN_2023, "2023년 일본의 순유입은 +0.69였습니다 [1].", passages)
    assert wrong_figure.refused
    other_country = check_answer(JAPAN_2023, "2023년 한국의 인구 1만 명당 순유입은 +0.54였습니다 [1].", passages)
    assert other_country.refused


def test_korean_follow_ups_swap_a_year_or_a_country():
    previous = ["2022년 한국의 인구 10만 명당 AI 특허 수는 몇 건이었나요?"]
    assert rewrite("일본은요?", previous) == "2022년 일본의 인구 10만 명당 AI 특허 수는 몇 건이었나요?"
    assert rewrite("2020년은?", previous) == "2020년 한국의 인구 10만 명당 AI 특허 수는 몇 건이었나요?"
    assert rewrite("그럼 삼성은?", previous) == previous[0] + " 그럼 삼성은?"  # no rule: the context
    assert rewrite("삼성전자의 AI 인재 채용 계획은 무엇인가요?", previous) == "삼성전자의 AI 인재 채용 계획은 무엇인가요?"


def test_without_translation_a_korean_question_is_searched_with_the_multilingual_model_and_drafted_in_korean(
        settings, tmp_path):
    multilingual = FakeMultilingual()
    generator = FakeGenerator("2023년 일본의 인구 1만 명당 AI 인재 순유입은 +0.54였습니다 [1].")
    settings = dataclasses.replace(settings, cache_dir=tmp_path / "cache" / "models", crosslingual_min_dense_score=0.0,
                                   translate_questions=False)
    assistant = Assistant(settings, embedder=HashEmbedder(), generator=generator, multilingual=multilingual)
    answer = assistant.ask(JAPAN_2023)
    assert multilingual.queries == [JAPAN_2023]
    assert "Korean" in generator.messages[-1][0]["content"]
    assert not answer.refused and "+0.54" in answer.citations[0].quote
    assistant.ask("What net AI talent inflow did Japan record in 2023?")
    assert multilingual.queries == [JAPAN_2023]  # English questions keep the English model
    assert "Korean" not in generator.messages[-1][0]["content"]


def test_multilingual_vectors_are_cached_by_chunk_text_and_a_damaged_cache_is_rebuilt(tmp_path):
    chunks = [p.chunk for p in _passages("Korea had a net outflow", "appointed Ha Jung-woo")]
    embedder = FakeMultilingual()
    first = CrossLingualVectors(embedder, chunks, tmp_path)
    scores = first.similarities(JAPAN_2023)
    assert scores.shape == (2,)
    assert embedder.calls == [1, 2]  # the question, then the chunks once
    again = CrossLingualVectors(embedder, chunks[:1], tmp_path)
    again.similarities(JAPAN_2023)
    assert embedder.calls == [1, 2, 1]  # from the cache: only the question
    first.cache_file.write_bytes(b"not an npz")
    damaged = CrossLingualVectors(embedder, chunks, tmp_path)
    assert np.allclose(damaged.similarities(JAPAN_2023), scores)


def test_eval_items_in_another_language_take_its_questions_and_fact_aliases(tmp_path):
    folder = tmp_path / "ko"
    folder.mkdir()
    (folder / "questions.jsonl").write_text(json.dumps({"id": "a", "question": "인도는?"}, ensure_ascii=False) + "\n")
    (folder / "facts.jsonl").write_text(json.dumps({"id": "a", "facts": [["인도"]]}, ensure_ascii=False) + "\n")
    items = [Item("a", "fact", "dev", "India?", facts=(("India",),)), Item("b", "fact", "dev", "B?")]
    (korean,) = in_language(items, folder)
    assert korean.question == "인도는?" and korean.facts == (("India", "인도"),)
    assert not missing_facts(korean, "인도입니다 [1]") and not missing_facts(korean, "India [1]")


# --- translation (rag/translate.py) -----------------------------------------

JAPAN_2023_EN = "What net AI talent inflow did Japan record in 2023 in the OECD survey?"
JAPAN_DRAFT = "Japan recorded a net AI talent inflow of +0.54 in 2023 [1]."


def _translating_assistant(settings, tmp_path, replies, draft=JAPAN_DRAFT):
    multilingual = FakeMultilingual()
    generator = FakeGenerator(draft, replies)
    settings = dataclasses.replace(settings, cache_dir=tmp_path / "cache" / "models")
    return Assistant(settings, embedder=HashEmbedder(), generator=generator, multilingual=multilingual), generator


def test_a_korean_question_is_answered_as_its_english_translation_and_the_checked_answer_put_into_korean(
        settings, tmp_path):
    korean = "2023년 일본은 AI 인재 +0.54명 순유입을 기록했습니다."
    assistant, generator = _translating_assistant(settings, tmp_path, {JAPAN_2023: JAPAN_2023_EN,
                                                                       JAPAN_DRAFT.replace(" [1]", ""): korean})
    items = list(assistant.stream(JAPAN_2023))
    answer = items[-1]
    # The reader sees that the answer is being put into Korean before it comes.
    assert items[-2] == Progress("Writing the answer in Korean…") and all(isinstance(i, str) for i in items[:-2])
    system_prompts = [m[0]["content"] for m in generator.messages]
    assert system_prompts[0] == TRANSLATE_QUESTION_SYSTEM
    assert system_prompts[-1] == TRANSLATE_ANSWER_SYSTEM.format(language="Korean")
    assert f"Question: {JAPAN_2023_EN}" in generator.messages[1][-1]["content"]  # the model answers in English
    assert "Korean" not in generator.messages[1][0]["content"]
    assert assistant._multilingual.queries == []  # searched as English
    assert not answer.refused and answer.text == "2023년 일본은 AI 인재 +0.54명 순유입을 기록했습니다 [1]."
    assert "+0.54" in answer.citations[0].quote
    assert answer.question == JAPAN_2023 and answer.asked == JAPAN_2023_EN
    assert set(answer.timings) >= {"translate_question", "translate_answer"}


def test_a_question_is_translated_once_for_its_sources_and_its_answer(settings, tmp_path):
    assistant, generator = _translating_assistant(settings, tmp_path, {JAPAN_2023: JAPAN_2023_EN})
    passages = assistant.retrieve(JAPAN_2023)
    assistant.stream(JAPAN_2023, passages=passages)
    list(assistant.stream(JAPAN_2023, passages=passages))
    translations = [m for m in generator.messages if m[0]["content"] == TRANSLATE_QUESTION_SYSTEM]
    assert len(translations) == 1


def test_the_translator_is_told_how_the_articles_spell_the_names_the_question_writes_in_hangul(settings, tmp_path):
    question = "김상균 교수는 무엇을 제안했나요?"  # what did professor Kim Sang-kyun propose?
    assistant, generator = _translating_assistant(settings, tmp_path, {})
    assistant.retrieve(question)
    (system, *_), = [m for m in generator.messages if request_kind(m) == "translate_question"]
    assert system["content"] == TRANSLATE_QUESTION_SYSTEM + TRANSLATE_QUESTION_SPELLINGS.format("김상균 = Kim Sang-kyun")
    # A question that spells no name of theirs is asked as before.
    assistant.retrieve(JAPAN_2023)
    assert generator.messages[-1][0]["content"] == TRANSLATE_QUESTION_SYSTEM


def test_each_sentence_is_translated_alone_and_one_that_changes_a_figure_or_drops_a_name_stays_english():
    draft = "Japan recorded a net AI talent inflow of +0.54 in 2023 [1]. Ha Jung-woo said so [1][2]."
    first, second = "Japan recorded a net AI talent inflow of +0.54 in 2023.", "Ha Jung-woo said so."
    wrong = {first: "2023년 일본은 AI 인재 -0.54명 순유입을 기록했습니다.", second: "하정우가 그렇게 말했습니다."}
    text, notes = answer_in_language(draft, "Korean", FakeGenerator("", wrong))
    assert text == draft  # "+0.54" became "-0.54", and Ha Jung-woo lost his name
    assert len(notes) == 2 and "figures" in notes[0] and "names" in notes[1]
    right = {first: "2023년 일본은 AI 인재 +0.54명 순유입을 기록했습니다.", second: "Ha Jung-woo가 그렇게 말했습니다."}
    assert answer_in_language(draft, "Korean", FakeGenerator("", right)) == (
        "2023년 일본은 AI 인재 +0.54명 순유입을 기록했습니다 [1]. Ha Jung-woo가 그렇게 말했습니다 [1][2].", [])


def test_a_name_made_of_ordinary_words_may_be_translated_a_proper_one_may_not():
    sentence = "The Ministry of Employment and Labor met Stanford."
    ordinary = ordinary_words(["New employment fell, said the labor ministry (hai.stanford.edu).",
                               "Stanford University agreed."])
    assert "employ" in ordinary and "stanford" not in ordinary  # a web address is no word
    assert kept_in_translation(sentence, "고용노동부가 Stanford를 만났다.", ordinary) == []
    assert kept_in_translation(sentence, "고용노동부가 스탠퍼드를 만났다.", ordinary) == ["names ['stanford'] are missing"]


@pytest.mark.parametrize("english, translated, problems", [
    ("Korea ranked ninth [1].", "한국은 9위였습니다 [1].", 0),  # an ordinal spelled out and in digits
    ("It was 81.9% [1].", "81.9퍼센트였습니다 [1].", 0),
    ("Japan recorded +0.54 per 10,000 people.", "일본은 인구 1만 명당 +0.54를 기록했다.", 0),
    ("Korea's index fell to -0.30.", "한국의 지수는 0.30으로 떨어졌다.", 1),  # the sign is the fact
    ("Japan recorded +0.54.", "한국은 +0.54를 기록했다.", 1),  # another country
    ("Samsung hired 100 people.", "삼성은 1000명을 채용했다.", 2),  # a figure changed, a Latin name dropped
    ("It costs $3.87 billion.", "38억 7천만 달러가 든다.", 0),  # a scale word or myriad units
    ("It costs $585 million.", "585억 달러가 든다.", 1),  # 58.5 billion
    ("They hire 12,800 people in February.", "2월에 1만 2,800명을 채용한다.", 0),  # months named or numbered
    ("They hire in March.", "2월에 채용한다.", 1),
])
def test_a_translated_sentence_keeps_figures_signs_and_names(english, translated, problems):
    assert len(kept_in_translation(english, translated)) == problems


def test_the_translation_is_one_english_line_or_nothing():
    assert question_to_english("질문", FakeGenerator("", {"질문": "Who won?\nNote: I translated it."})) == "Who won?"
    assert question_to_english("질문", FakeGenerator("", {"질문": "질문입니다"})) == ""  # not English


def test_years_and_figures_come_from_the_users_words_not_the_translation():
    asked = read_question("지난해 한국을 떠난 AI 인재는 인구 10만 명당 몇 명이었나요?")
    english = asked_in_english(asked, "How many AI professionals per 10,000 people left Korea in 2020?")
    assert english.years == frozenset() and english.figures == frozenset({"100000"})  # "2020" was invented
    assert english.language == "" and "korea" in english.terms


@pytest.mark.parametrize("question, english, repaired", [
    # The one figure the translation changed is put back, in English digits.
    ("2022년 인구 1만 명당 순유입은?", "What was the net inflow per 100,000 people in 2022?",
     "What was the net inflow per 10,000 people in 2022?"),
    ("약 672억 달러의 투자는?", "What was the investment of about 672 billion dollars?",
     "What was the investment of about 67.2 billion dollars?"),
    ("인구 3만 2천 명 중 몇 명이 떠났나요?", "How many of 23,000 people left?", "How many of 32,000 people left?"),
    # A year the translation adds ("지난해" as "in 2020") is no changed figure: it stays for the checks to judge.
    ("지난해 인구 10만 명당 몇 명이 떠났나요?", "How many per 100,000 people left in 2020?",
     "How many per 100,000 people left in 2020?"),
    # Two figures changed, or one dropped and none added: which goes where is unknown, so nothing changes.
    ("2023년 10만 명당 3.6명과 1만 명당 0.3명?", "What of 1 million and 5 people in 2023?",
     "What of 1 million and 5 people in 2023?"),
    ("2022년 인구 10만 명당 특허 수는?", "How many patents were granted in 2022?",
     "How many patents were granted in 2022?"),
    # A month is a word to translate, not a figure to put back.
    ("6월 말까지 몇 명을 채용하나요?", "How many will it hire by the end of 6?", "How many will it hire by the end of 6?"),
])
def test_a_figure_the_question_translation_changed_is_put_back(question, english, repaired):
    assert repair_figure(question, english) == repaired
