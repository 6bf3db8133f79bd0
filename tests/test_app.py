"""The chat app: its handlers with fake models (fast), and the running server
asked through gradio_client with the real models (slow)."""

from __future__ import annotations

import argparse
import html
import logging
import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from rag import config
from rag.app import GENERIC_ERROR, Assistants, Chat, add_arguments

from .conftest import SEEDS, BrokenGenerator, FakeGenerator, HashEmbedder, StoppableGenerator

# Gradio 6.31's queue calls pandas options that pandas 3 deprecates; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:.*(no_silent_downcasting|copy keyword)")

JAPAN = "What net AI talent inflow did Japan record in 2023 in the OECD survey?"
JAPAN_DRAFT = "Japan's net AI talent inflow per 10,000 people in 2023 was +0.54 [1]."
JAPAN_DOC = "004_8845b63d3c664428"


@pytest.fixture
def make_chat(settings):
    def make(draft: str = JAPAN_DRAFT, generator=None) -> Chat:
        made = generator or StoppableGenerator(draft)
        return Chat(Assistants(settings, embedder=HashEmbedder(), generator_for=lambda model: made))
    return make


def ask(chat: Chat, question: str, turns=None, model="qwen2.5-coder-1.5b", k=4, session="s1"):
    started = chat.start(question, turns or [], model, k, session)
    return list(chat.answer(started, session))[-1]


def answer_text(page: str) -> str:
    """The visible text of the last answer in the chat HTML (chips become [n])."""
    last = page.rsplit('<div class="answer-text">', 1)[1].split("</div>", 1)[0]
    last = re.sub(r'<button[^>]*class="chip"[^>]*>(\d+)</button>', r"[\1]", last)
    return html.unescape(re.sub(r"<[^>]+>", "", last))


# --- fast: the handlers -------------------------------------------------------------

def test_passages_show_before_the_answer_then_the_checked_answer_replaces_the_draft(make_chat):
    chat = make_chat()
    turns = chat.start(JAPAN, [], "qwen2.5-coder-1.5b", 4, "s1")
    page = chat.render(turns)
    assert "Passages found" in page and "Waiting for the model" in page and "answer-text" not in page
    assert len(turns[-1].passages) == 4
    pages = [chat.render(t) for t in chat.answer(turns, "s1")]
    drafts = [p for p in pages if "msg bot draft" in p]
    assert any("Japan&#x27;s net" in p for p in drafts)  # the draft streamed in
    final = pages[-1]
    assert answer_text(final) == JAPAN_DRAFT
    assert 'class="chip" data-target="t0-s1"' in final and 'data-source="t0-s1"' in final
    # The source card: title, the quote marked inside its paragraph, rank, document.
    card = final.split('data-source="t0-s1"', 1)[1].split("</div></div>", 1)[0]
    assert "<mark>" in card and "+0.54" in card and JAPAN_DOC in card and "passage rank" in card
    assert "South Korea becomes an AI talent outflow country" in card
    assert re.search(r"fake-generator · retrieve [\d.]+ s · first token [\d.]+ s", final)


def test_an_answer_put_into_korean_says_so_while_it_is_written(make_chat):
    korean = "OECD 조사에서 일본은 2023년 AI 인재 순유입을 얼마로 기록했나요?"
    chat = make_chat(generator=FakeGenerator(JAPAN_DRAFT, {korean: JAPAN}))
    pages = [chat.render(t) for t in chat.answer(chat.start(korean, [], "qwen2.5-coder-1.5b", 4, "s1"), "s1")]
    assert any("Writing the answer in Korean…" in p for p in pages)
    assert "Writing the answer in Korean…" not in pages[-1] and f"Read in English as: “{JAPAN}”" in pages[-1]


def test_follow_up_is_rewritten_and_shown(make_chat):
    chat = make_chat()
    turns = ask(chat, "What was Korea's net AI talent outflow per 10,000 people in 2023?")
    turns = chat.start("And Japan?", turns, "qwen2.5-coder-1.5b", 4, "s1")
    assert turns[-1].asked == "What was Japan's net AI talent outflow per 10,000 people in 2023?"
    assert "Asked as: “What was Japan&#x27;s net AI talent outflow" in chat.render(turns)


def test_refusal_looks_different_and_lists_the_closest_passages(make_chat):
    chat = make_chat("The articles do not say.")
    page = chat.render(ask(chat, "Who won the 2022 FIFA World Cup?"))
    assert "msg bot refusal" in page and "The articles don&#x27;t cover this question." in page
    assert "Closest passages" in page and page.count('class="source passage"') == 3
    assert "answer-text" not in page


def test_user_errors_are_one_sentence_and_unexpected_ones_generic(make_chat, caplog):
    chat = make_chat()
    page = chat.render(ask(chat, "   "))
    assert "The question is empty" in page and "Traceback" not in page
    page = chat.render(ask(chat, "why " * 400))
    assert "the limit is 1,000" in page
    chat = make_chat(generator=BrokenGenerator(""))
    with caplog.at_level(logging.ERROR, logger="rag.app"):
        page = chat.render(ask(chat, JAPAN))
    assert GENERIC_ERROR in page and "CUDA" not in page and "Traceback" not in page
    assert "CUDA out of memory" in caplog.text  # the details go to the log
    page = chat.render(ask(chat, JAPAN, model="gpt-5"))
    assert "Unknown model &#x27;gpt-5&#x27;" in page


def test_stop_ends_the_running_answer(make_chat):
    generator = StoppableGenerator("Japan's figure was +0.54 [1]. Korea's was -0.30 [1]. More words follow here.")
    chat = make_chat(generator=generator)
    generator.go_on.clear()
    turns = chat.start(JAPAN, [], "qwen2.5-coder-1.5b", 4, "tab")
    answering = ThreadPoolExecutor(1).submit(lambda: list(chat.answer(turns, "tab"))[-1])
    assert generator.first_word_out.wait(10)
    chat.stop("tab")
    generator.go_on.set()
    turn = answering.result(10)[-1]
    assert turn.answer is not None and "stopped by the user" in turn.answer.notes
    assert "More words" not in turn.draft
    assert re.search(r"Stopped (early|before an answer was written)\.", chat.render([turn]))
    # Stop before the model starts: nothing is generated.
    turns = chat.start(JAPAN, [], "qwen2.5-coder-1.5b", 4, "tab")
    chat.stop("tab")
    turn = list(chat.answer(turns, "tab"))[-1][-1]
    assert turn.answer is None and turn.stopped and "Stopped before an answer was written." in chat.render([turn])


def test_sessions_stop_only_their_own_answer(make_chat):
    chat = make_chat()
    turns_a = chat.start(JAPAN, [], "qwen2.5-coder-1.5b", 4, "a")
    turns_b = chat.start(JAPAN, [], "qwen2.5-coder-1.5b", 4, "b")
    chat.stop("a")
    assert list(chat.answer(turns_a, "a"))[-1][-1].stopped
    assert list(chat.answer(turns_b, "b"))[-1][-1].answer.citations


def test_upload_adds_articles_under_their_own_names(make_chat, settings, tmp_path):
    chat = make_chat("The Vostrel station employs 47 glaciologists [1].")
    upload_dir = tmp_path / "gradio" / "9f2c"  # where Gradio keeps an upload
    upload_dir.mkdir(parents=True)
    article = upload_dir / "vostrel_station.txt"
    article.write_text("Vostrel station opens\nThe Vostrel research station employs 47 glaciologists.\n",
                       encoding="utf-8")
    assert chat.add_articles([str(article)]) == "Added vostrel_station."
    assert (settings.seeds_dir / "vostrel_station.txt").is_file()
    assert "Vostrel station opens" in chat.articles_html() and "6 articles in the index" in chat.articles_html()
    turns = ask(chat, "How many glaciologists does the Vostrel research station employ?")
    assert turns[-1].answer.citations[0].doc_id == "vostrel_station"


def test_a_bad_upload_changes_nothing(make_chat, settings, tmp_path):
    chat = make_chat()
    good, bad = tmp_path / "good.txt", tmp_path / "bad.txt"
    good.write_text("A fine article about glaciers.", encoding="utf-8")
    bad.write_bytes(b"caf\xe9")
    before = sorted(p.name for p in settings.seeds_dir.iterdir())
    with pytest.raises(Exception, match="not UTF-8"):
        chat.add_articles([str(good), str(bad)])
    assert sorted(p.name for p in settings.seeds_dir.iterdir()) == before


def test_every_model_and_k_see_an_added_article(settings, tmp_path):
    generators: dict[str, FakeGenerator] = {}
    assistants = Assistants(settings, embedder=HashEmbedder(),
                            generator_for=lambda m: generators.setdefault(m, FakeGenerator("x")))
    small, large = assistants.get("qwen2.5-coder-0.5b", 2), assistants.get("qwen2.5-coder-1.5b", 6)
    assert assistants.get("qwen2.5-coder-0.5b", 2) is small and small.settings.top_k == 2
    assert assistants.get("qwen2.5-coder-0.5b", 5).generator is small.generator  # one model load per model
    assert small.generator is not large.generator
    new = tmp_path / "new_article.txt"
    new.write_text("Fresh article\nSomething happened.", encoding="utf-8")
    assistants.add([new])
    assert "new_article" in small.articles() and "new_article" in large.articles()


def test_an_article_added_mid_answer_does_not_break_it(make_chat, settings, tmp_path):
    generator = StoppableGenerator(JAPAN_DRAFT)
    chat = make_chat(generator=generator)
    generator.go_on.clear()
    turns = chat.start(JAPAN, [], "qwen2.5-coder-1.5b", 4, "tab")
    answering = ThreadPoolExecutor(1).submit(lambda: list(chat.answer(turns, "tab"))[-1])
    assert generator.first_word_out.wait(10)
    new = tmp_path / "late_news.txt"
    new.write_text("Late news\nJapan's inflow was revised.", encoding="utf-8")
    chat.add_articles([str(new)])
    generator.go_on.set()
    answer = answering.result(10)[-1].answer
    assert answer.text == JAPAN_DRAFT and answer.citations[0].doc_id == JAPAN_DOC


def test_chat_flags():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args([])
    assert (args.host, args.port, args.model, args.top_k) == ("127.0.0.1", 7860, None, None)
    args = parser.parse_args(["--host", "0.0.0.0", "--port", "8001", "--model", "qwen2.5-coder-0.5b", "-k", "6"])
    assert (args.host, args.port, args.model, args.top_k) == ("0.0.0.0", 8001, "qwen2.5-coder-0.5b", 6)


# --- slow: the running app, the real models, gradio_client ---------------------------

@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    from .chat_server import serve

    root = tmp_path_factory.mktemp("project")
    (root / "seeds").symlink_to(SEEDS)  # read-only here: nothing is uploaded in this module
    with serve(config.load(root=root, config_file=root / "none.toml")) as url:
        yield url


def client_ask(url: str, question: str) -> str:
    """Ask through the two API steps, as the page does; returns the chat HTML."""
    from gradio_client import Client

    client = Client(url, verbose=False)
    transcript, _question_box = client.predict(question, api_name="/ask")
    assert "Passages found" in transcript  # sources come before the answer
    return client.predict(api_name="/answer")  # the chat is the endpoint's one output


@pytest.mark.slow
def test_gradio_client_gets_a_cited_answer(app_url):
    page = client_ask(app_url, JAPAN)
    assert "0.54" in answer_text(page), answer_text(page)
    assert re.search(rf'data-source="t0-s\d+".*?{JAPAN_DOC}', page, re.DOTALL)


@pytest.mark.slow
def test_two_tabs_asking_at_once_both_get_their_answers(app_url):
    eu = "How much money did the EU allocate in February to attract foreign AI researchers?"
    with ThreadPoolExecutor(2) as pool:
        japan_page, eu_page = pool.map(lambda q: client_ask(app_url, q), [JAPAN, eu])
    assert "0.54" in answer_text(japan_page) and JAPAN_DOC in japan_page
    assert "585" in answer_text(eu_page) and "001_b001572057e29601" in eu_page


def test_uploads_are_limited_in_count(make_chat, settings, tmp_path):
    from rag.app import MAX_UPLOAD_FILES
    from rag.errors import BadInput

    chat = make_chat()
    files = []
    for i in range(MAX_UPLOAD_FILES + 1):
        path = tmp_path / f"note{i}.txt"
        path.write_text(f"Note {i} about glaciers.", encoding="utf-8")
        files.append(str(path))
    before = sorted(p.name for p in settings.seeds_dir.iterdir())
    with pytest.raises(BadInput, match=f"upload at most {MAX_UPLOAD_FILES} at a time"):
        chat.add_articles(files)
    assert sorted(p.name for p in settings.seeds_dir.iterdir()) == before


class _RecordingApp:
    """Stands in for a Gradio app: records how it would be served, binds nothing."""

    def __init__(self) -> None:
        self.launched: dict = {}

    def queue(self, **kwargs) -> None:
        self.queued = kwargs

    def launch(self, **kwargs) -> None:
        self.launched = kwargs


@pytest.mark.parametrize("host, warned", [("127.0.0.1", False), ("localhost", False), ("0.0.0.0", True),
                                          ("192.0.2.7", True)])
def test_the_chat_binds_loopback_by_default_and_warns_for_any_other_address(caplog, host, warned):
    from rag.app import DEFAULT_HOST, launch

    assert DEFAULT_HOST == "127.0.0.1"
    app = _RecordingApp()
    with caplog.at_level("WARNING"):
        assert launch(app, host, 8123, max_file_bytes=2_000_000) == f"http://{host}:8123/"
    assert ("anyone who can reach this address" in caplog.text) == warned
    assert app.launched["server_name"] == host and app.launched["share"] is False
    assert app.launched["max_file_size"] == 2_000_000  # larger uploads are refused by the server
    assert app.queued == {"default_concurrency_limit": 1}
