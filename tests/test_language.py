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
from rag.prompts import answer_messages
from rag.question import read_question
from rag.text import foreign_country, numbers, script_language, terms

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


def test_a_korean_question_is_searched_with_the_multilingual_model_and_answered_in_korean(settings, tmp_path):
    multilingual = FakeMultilingual()
    generator = FakeGenerator("2023년 일본의 인구 1만 명당 AI 인재 순유입은 +0.54였습니다 [1].")
    settings = dataclasses.replace(settings, cache_dir=tmp_path / "cache" / "models", crosslingual_min_dense_score=0.0)
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
