import dataclasses
import re
import threading

import pytest

from rag import Answer, Assistant
from rag.errors import BadInput, ConfigError, IndexLoadError
from rag.index import IndexStore

from .conftest import FakeGenerator, HashEmbedder

QUESTION = "What was Japan's net AI talent inflow per 10,000 people in 2023?"
DRAFT = "Japan recorded a net inflow of +0.54 [1]."


def _assistant(settings, draft=DRAFT, **kwargs):
    return Assistant(settings, embedder=HashEmbedder(), generator=FakeGenerator(draft), **kwargs)


def test_missing_index_is_built_on_first_use_then_reused(settings, caplog):
    assistant = _assistant(settings)
    answer = assistant.ask(QUESTION)
    assert not answer.refused and answer.citations[0].doc_id == "004_8845b63d3c664428"
    assert "+0.54" in answer.citations[0].quote
    assert "building" in caplog.text and IndexStore(settings.index_dir).exists()
    current = (settings.index_dir / "CURRENT").read_text()
    # Re-ingesting unchanged articles changes nothing on disk.
    assert _assistant(settings).index().startswith("index is up to date")
    assert (settings.index_dir / "CURRENT").read_text() == current


def test_stream_yields_pieces_then_answer_with_timings(settings):
    items = list(_assistant(settings).stream(QUESTION))
    assert all(isinstance(i, str) for i in items[:-1]) and "".join(items[:-1]) == DRAFT
    answer = items[-1]
    assert isinstance(answer, Answer) and answer.model == "fake-generator"
    assert {"retrieve", "generate", "total", "first_token"} <= answer.timings.keys()
    assert [p.rank for p in answer.passages] == list(range(1, len(answer.passages) + 1))


def test_prompt_numbers_passages_in_rank_order(settings):
    assistant = _assistant(settings, k=3)
    answer = assistant.ask(QUESTION)
    prompt = assistant._generator.messages[0][-1]["content"]
    assert len(answer.passages) == 3
    # Passages with no sentence in the evidence budget are left out but keep their numbers.
    shown = [int(n) for n in re.findall(r"^\[(\d+)\] \(", prompt, re.MULTILINE)]
    assert shown[0] == 1 and shown == sorted(shown)
    for n in shown:
        assert f"[{n}] ({answer.passages[n - 1].title})" in prompt


def test_stale_index_is_updated_with_a_message(settings, caplog):
    _assistant(settings).index()
    (settings.seeds_dir / "000_9ee447cb686ba3f7.txt").unlink()
    message = _assistant(settings).index()
    assert "stale (1 article removed)" in caplog.text and "4 articles" in message


@pytest.mark.parametrize("question, message", [
    ("", "empty"), ("   \n\t", "empty"), ("x" * 1001, "1,001 characters"),
])
def test_bad_questions(settings, question, message):
    with pytest.raises(BadInput, match=message):
        _assistant(settings).ask(question)


def test_unknown_model_name_is_rejected_up_front(settings):
    with pytest.raises(ConfigError, match="qwen2.5-coder-0.5b"):
        Assistant(settings, model="gpt-5", embedder=HashEmbedder())


@pytest.mark.parametrize("gate, reason", [
    (dict(min_dense_score=0.99), "best similarity"),
    (dict(min_question_coverage=0.9, confident_dense_score=0.99), "coverage 0."),
])
def test_off_topic_question_is_refused_without_the_model(settings, gate, reason):
    assistant = _assistant(dataclasses.replace(settings, **gate))
    answer = assistant.ask("Who won the 2022 FIFA World Cup?")
    assert answer.refused and assistant._generator.messages == [] and answer.passages
    assert reason in answer.notes[0]


def test_question_coverage_weighs_missing_rare_terms(settings):
    assistant = _assistant(settings)
    retriever = assistant._ready_retriever()
    on_topic = "What was Japan's net inflow of AI talent?"
    off_topic = "Who won the FIFA World Cup?"
    assert retriever.coverage(on_topic, retriever.retrieve(on_topic, 4)) == 1.0
    assert retriever.coverage(off_topic, retriever.retrieve(off_topic, 4)) < 0.5


def test_add_article_indexes_it_and_bad_files_change_nothing(settings, tmp_path):
    assistant = _assistant(settings, draft="Busan opened an AI campus with 300 researchers [1].")
    assistant.index()
    before = (settings.index_dir / "CURRENT").read_text()
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\x00\x01binary")
    good = tmp_path / "busan.txt"
    good.write_text("Busan opened an AI campus in March. It hired 300 researchers from abroad.", encoding="utf-8")
    with pytest.raises(BadInput, match="binary"):
        assistant.add([good, bad])
    assert not (settings.seeds_dir / "busan.txt").exists()
    assert (settings.index_dir / "CURRENT").read_text() == before
    assert "6 articles" in assistant.add([good])
    answer = assistant.ask("How many researchers did the Busan AI campus hire?")
    assert answer.citations and answer.citations[0].doc_id == "busan"
    with pytest.raises(BadInput, match="already used"):
        other = tmp_path / "busan.md"
        other.write_text("# Busan\nAnother text.", encoding="utf-8")
        assistant.add([other])


def test_damaged_index_is_reported_and_rebuild_repairs_it(settings):
    _assistant(settings).index()
    version = settings.index_dir / (settings.index_dir / "CURRENT").read_text().strip()
    (version / "vectors.npy").write_bytes(b"junk")
    with pytest.raises(IndexLoadError, match="damaged"):
        _assistant(settings).ask(QUESTION)
    assert "indexed 5 articles" in _assistant(settings).index(rebuild=True)
    assert not _assistant(settings).ask(QUESTION).refused


def test_answer_in_progress_survives_an_article_being_added(settings, tmp_path):
    assistant = _assistant(settings)
    stream = assistant.stream(QUESTION)
    first = next(stream)  # retrieval done, generation under way
    new = tmp_path / "extra.txt"
    new.write_text("Seoul announced a new AI visa in 2025.", encoding="utf-8")
    assistant.add([new])
    rest = list(stream)
    assert isinstance(first, str) and not rest[-1].refused


def test_two_threads_asking_at_once_both_get_answers(settings):
    assistant = _assistant(settings)
    assistant.index()
    results = []
    threads = [threading.Thread(target=lambda: results.append(assistant.ask(QUESTION))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 2 and all(not a.refused for a in results)


def test_a_sentence_cut_off_by_stop_is_not_a_claim(settings):
    stop = threading.Event()
    stop.set()
    answer = _assistant(settings, draft=DRAFT + " Japan's").stream(QUESTION, stop=stop)
    final = list(answer)[-1]
    assert final.text == "Japan recorded a net inflow of +0.54 [1]." and "stopped by the user" in final.notes
    only_fragment = list(_assistant(settings, draft="Japan's").stream(QUESTION, stop=stop))[-1]
    assert only_fragment.refused


def test_the_prompt_offers_no_way_out_and_a_model_refusal_is_a_refusal(settings):
    generator = FakeGenerator("The articles do not say.")
    answer = Assistant(settings, embedder=HashEmbedder(), generator=generator).ask(QUESTION)
    assert answer.refused and len(generator.messages) == 1
    assert "do not say" not in generator.messages[0][0]["content"]


def test_a_question_about_the_articles_asks_each_article_apart(settings):
    assistant = _assistant(settings, draft="Korea ranked third [1].")
    answer = assistant.ask("How do the articles rank Korea's AI talent outflow?")
    asks = assistant._generator.messages
    shown = [{answer.passages[int(n) - 1].chunk.doc_id for n in re.findall(r"^\[(\d+)\] \(", m[-1]["content"],
                                                                          re.MULTILINE)} for m in asks]
    assert len(asks) >= 2 and all(len(docs) == 1 for docs in shown) and len(set().union(*shown)) == len(asks)
    assert answer.draft == " ".join(["Korea ranked third [1]."] * len(asks))
