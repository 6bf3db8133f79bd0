"""Faults and abuse over HTTP: hostile questions and uploads sent to the chat's running Gradio server
(through `gradio_client`, and its raw upload route as any client can call it) and to `rag serve` (through
FastAPI's TestClient), uploads that arrive while an answer is being written, and a model cache folder
that cannot be written. Fake models throughout. As in tests/test_robustness.py, each case asserts its
exact outcome (one sentence with its status, or the right answer), that every article already indexed is
still indexed and answerable, and that nothing was logged as an error (no traceback)."""

from __future__ import annotations

import dataclasses
import html
import logging
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import httpx
import pytest
from fastapi.testclient import TestClient

from rag import config
from rag.app import Assistants, Chat
from rag.serve import build_app

from .conftest import SEEDS, HashEmbedder, StoppableGenerator
from .test_app import answer_text
from .test_robustness import DRAFT, JAPAN, JAPAN_DOC, SEED_IDS, _assert_nothing_lost, _outside_files, _snapshot
from .test_serve import PausingGenerator, assert_one_sentence_error

# Gradio 6.31's queue calls pandas options that pandas 3 deprecates; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:.*(no_silent_downcasting|copy keyword)")

EMPTY = "the question is empty — ask something about the articles"
MAX_CHARS = config.Settings.max_question_chars
SMALL_LIMIT = 8_000  # article bytes: above every seed (7,451 at most), small enough to send one byte more
BAD_QUESTIONS = {
    "empty": ("", EMPTY),
    "whitespace only": (" \t\n\u3000", EMPTY),
    "only invisible characters": ("\u200b\u200f\u202e\u2060\ufeff", EMPTY),
    "only NUL and control characters": ("\x00\x01\x7f", EMPTY),
    "over the limit": ("y" * (MAX_CHARS + 1),
                       f"the question is {MAX_CHARS + 1:,} characters long; the limit is {MAX_CHARS:,}"),
}
# Answered as the clean question is; markup stays text (escaped in the chat, a JSON string in the API).
ANSWERED = {
    "NUL and control characters inside": JAPAN.replace("Japan's", "Japan's\x00").replace("talent", "talent\x07"),
    "invisible characters around": f"\u200b\u200f{JAPAN}\u2060",
    "script": f"<script>alert(1)</script> {JAPAN}",
    "img onerror": f"<img src=x onerror=alert(1)> {JAPAN}",
    "attribute breakout": f'"><svg onload=alert(1)> {JAPAN}',
}
GOOD = b"Gimpo robot lab\nThe Gimpo robot lab hired 31 engineers in May."
BINARY = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
UTF16 = "Gimpo robot lab\nThe Gimpo robot lab hired 31 engineers in May.".encode("utf-16")


def _exactly(size: int) -> bytes:
    """An article of exactly `size` bytes."""
    return (b"Gimpo hired engineers. " * (size // 23 + 1))[:size - 1] + b"."


def _shown(sentence: str) -> str:
    """A sentence as the chat shows it: with a capital."""
    return sentence[0].upper() + sentence[1:]


def _no_errors_logged(caplog) -> None:
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info] == []


def _added_files(settings) -> list[Path]:
    """Files in the article folder besides the seeds: what a test added."""
    return [p for p in settings.seeds_dir.iterdir() if p.stem not in SEED_IDS and p.name != "metadata.toml"]


# --- the chat's Gradio server ----------------------------------------------------------------

class ChatServer(NamedTuple):
    url: str
    settings: config.Settings
    assistants: Assistants
    generator: StoppableGenerator


@pytest.fixture(scope="module")
def chat_server(tmp_path_factory):
    """One running chat app for the module (starting Gradio takes seconds), over its own copy of the seeds."""
    from .chat_server import serve

    root = tmp_path_factory.mktemp("chat-project")
    shutil.copytree(SEEDS, root / "seeds")
    settings = config.load(root=root, config_file=root / "none.toml", min_dense_score=0.0,
                           min_question_coverage=0.0, max_article_bytes=SMALL_LIMIT)
    generator = StoppableGenerator(DRAFT)
    assistants = Assistants(settings, embedder=HashEmbedder(), generator_for=lambda model: generator)
    assistants.get().index()
    with serve(settings, assistants) as url:
        yield ChatServer(url, settings, assistants, generator)


@pytest.fixture
def chat(chat_server):
    """The running chat; what a test added to the article folder is removed after it, so each starts
    from the five seeds."""
    yield chat_server
    chat_server.generator.go_on.set()
    added = _added_files(chat_server.settings)
    for path in added:
        path.unlink()
    if added:
        chat_server.assistants.get().index()


def _chat_ask(url: str, question: str) -> tuple[str, str]:
    """The chat HTML after step 1 (the sources) and after step 2 (the answer), as a new tab sees them."""
    from gradio_client import Client

    client = Client(url, verbose=False)
    transcript, _question_box = client.predict(question, api_name="/ask")
    return transcript, client.predict(api_name="/answer")


def _chat_upload(url: str, name: str, data: bytes) -> tuple[str, str]:
    """Upload `data` under `name` as any HTTP client can: Gradio's upload route, then the page's
    add_articles event. Returns who answered and what: ("page", its status line), or Gradio's own
    refusal, ("upload route <status>", its text) or ("event", its error)."""
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    response = httpx.post(f"{url}gradio_api/upload", files=[("files", (name, data))])
    if response.status_code != 200:
        return f"upload route {response.status_code}", response.text
    files = [{"path": path, "meta": {"_type": "gradio.FileData"}, "orig_name": name} for path in response.json()]
    try:
        status, _articles, _cleared = Client(url, verbose=False).predict(files, api_name="/add_articles")
    except AppError as error:
        return "event", str(error)
    return "page", status


@pytest.mark.parametrize("case", list(BAD_QUESTIONS))
def test_chat_bad_question_is_one_sentence_before_the_model(chat, caplog, case):
    question, sentence = BAD_QUESTIONS[case]
    before, asked = _snapshot(chat.settings), len(chat.generator.messages)
    for page in _chat_ask(chat.url, question):
        assert f'<div class="msg bot error" role="alert">{html.escape(_shown(sentence))}</div>' in page
        assert "answer-text" not in page and "Passages found" not in page
    assert len(chat.generator.messages) == asked  # the model never saw it
    _no_errors_logged(caplog)
    _assert_nothing_lost(chat.settings, before)


@pytest.mark.parametrize("case", list(ANSWERED))
def test_chat_answers_a_question_carrying_a_payload_as_the_clean_one_shown_as_text(chat, caplog, case):
    question = ANSWERED[case]
    before = _snapshot(chat.settings)
    _sources, page = _chat_ask(chat.url, question)
    assert answer_text(page) == DRAFT and JAPAN_DOC in page
    assert f'<div class="msg user">{html.escape(" ".join(question.split()))}</div>' in page
    for tag in ("<script", "<img", "<svg"):
        assert tag not in page
    _no_errors_logged(caplog)
    _assert_nothing_lost(chat.settings, before)


CHAT_REFUSED_UPLOADS = {
    # Gradio refuses these before the page's handler sees them.
    "one byte over the size limit": ("big.txt", _exactly(SMALL_LIMIT + 1), "upload route 413",
                                     f"File size exceeded maximum allowed size of {SMALL_LIMIT} bytes."),
    "unsupported suffix": ("gimpo.pdf", b"%PDF-1.7 Gimpo", "event",
                           "Invalid file type. Please upload a file that is one of these formats: ['.txt', '.md']"),
    # Gradio turns "..\\evil.txt" into "..evil.txt": a hidden name, refused as `rag serve` refuses it.
    "Windows ..\\ name": ("..\\evil.txt", GOOD, "page",
                          "**Not added:** '..evil.txt' is not a usable article file name"),
    "hidden name": (".gimpo.txt", GOOD, "page", "**Not added:** '.gimpo.txt' is not a usable article file name"),
    "binary content": ("photo.txt", BINARY, "page",
                       "**Not added:** photo.txt looks binary (it contains NUL bytes), not a text article"),
    "UTF-16 with BOM": ("gimpo.txt", UTF16, "page", "**Not added:** gimpo.txt is UTF-16 text — save it as UTF-8"),
}


@pytest.mark.parametrize("case", list(CHAT_REFUSED_UPLOADS))
def test_chat_bad_upload_is_one_sentence_and_nothing_is_lost(chat, caplog, case):
    name, data, who, shown = CHAT_REFUSED_UPLOADS[case]
    before = _snapshot(chat.settings)
    assert _chat_upload(chat.url, name, data) == (who, shown)
    _no_errors_logged(caplog)
    _assert_nothing_lost(chat.settings, before)


@pytest.mark.parametrize("sent, saved", [
    ("../gimpo.txt", "gimpo.txt"), ("notes/../../gimpo.txt", "gimpo.txt"),
    ("/etc/rag-robustness-gimpo.txt", "rag-robustness-gimpo.txt"),
], ids=["../ name", "folder and ../ name", "absolute name"])
def test_chat_upload_with_a_path_in_its_name_lands_in_the_article_folder_by_its_base_name(chat, caplog, sent, saved):
    root = chat.settings.seeds_dir.parent
    outside = _outside_files(root)
    assert _chat_upload(chat.url, sent, GOOD) == ("page", f"Added {Path(saved).stem}.")
    assert [p.name for p in _added_files(chat.settings)] == [saved]
    assert (chat.settings.seeds_dir / saved).read_bytes() == GOOD
    assert _outside_files(root) == outside and not Path("/etc/rag-robustness-gimpo.txt").exists()
    assert SEED_IDS | {Path(saved).stem} == set(chat.assistants.articles())
    _no_errors_logged(caplog)


def test_chat_upload_exactly_at_the_size_limit_is_added(chat, caplog):
    assert _chat_upload(chat.url, "exact.txt", _exactly(SMALL_LIMIT)) == ("page", "Added exact.")
    assert (chat.settings.seeds_dir / "exact.txt").stat().st_size == SMALL_LIMIT
    assert SEED_IDS | {"exact"} == set(chat.assistants.articles())
    _no_errors_logged(caplog)


def test_chat_serves_no_article_index_or_uploaded_file_by_its_path(chat):
    """Gradio serves files by path only from its own upload cache: the article folder, the index and a
    file just uploaded and saved as an article are not fetched back through `/gradio_api/file=`."""
    [cached] = httpx.post(f"{chat.url}gradio_api/upload", files=[("files", ("gimpo.txt", GOOD))]).json()
    assert httpx.get(f"{chat.url}gradio_api/file={cached}").content == GOOD  # the route works for its own cache
    assert _chat_upload(chat.url, "gimpo.txt", GOOD)[0] == "page"
    saved = chat.settings.seeds_dir / "gimpo.txt"
    for path in (saved, chat.settings.seeds_dir / f"{JAPAN_DOC}.txt", chat.settings.index_dir / "CURRENT"):
        response = httpx.get(f"{chat.url}gradio_api/file={path}")
        assert response.status_code in (403, 404) and GOOD not in response.content, path


def test_chat_upload_while_an_answer_is_written_completes_and_both_are_there(chat, caplog):
    from gradio_client import Client

    generator = chat.generator
    generator.first_word_out.clear()
    generator.go_on.clear()  # the answer stops after its first word until released
    asker = Client(chat.url, verbose=False)
    asker.predict(JAPAN, api_name="/ask")
    answering = asker.submit(api_name="/answer")
    assert generator.first_word_out.wait(10)
    # Uploads have their own queue slot: the upload is indexed while the answer waits.
    assert _chat_upload(chat.url, "gimpo.txt", GOOD) == ("page", "Added gimpo.")
    assert not answering.done()
    generator.go_on.set()
    page = answering.result(timeout=20)
    assert answer_text(page) == DRAFT and JAPAN_DOC in page  # the answer, whole, from the sources it started with
    assert SEED_IDS | {"gimpo"} == set(chat.assistants.articles())
    sources, _ = _chat_ask(chat.url, "How many engineers did the Gimpo robot lab hire in May?")
    assert "gimpo" in sources.split('class="source passage"', 2)[1]  # the new article is the top source
    _no_errors_logged(caplog)


# --- rag serve's HTTP API --------------------------------------------------------------------

@pytest.fixture
def api(settings):
    """`rag serve`'s app over the fixture's project with the fake models and an 8,000-byte article limit;
    returns (client, generator, settings)."""
    small = dataclasses.replace(settings, max_article_bytes=SMALL_LIMIT)
    generator = PausingGenerator(DRAFT)
    assistants = Assistants(small, embedder=HashEmbedder(), generator_for=lambda model: generator)
    assistants.get().index()
    with TestClient(build_app(small, assistants), raise_server_exceptions=False) as client:
        yield client, generator, small
    generator.go_on.set()


def _ask_bodies(question: str) -> dict[str, dict]:
    return {"/v1/ask": {"question": question}, "/v1/ask/stream": {"question": question},
            "/v1/chat/completions": {"model": "qwen2.5-coder-1.5b",
                                     "messages": [{"role": "user", "content": question}]}}


@pytest.mark.parametrize("path", list(_ask_bodies("")))
@pytest.mark.parametrize("case", list(BAD_QUESTIONS))
def test_serve_bad_question_is_400_with_one_sentence_before_the_model(api, caplog, case, path):
    client, generator, settings = api
    question, sentence = BAD_QUESTIONS[case]
    before = _snapshot(settings)
    assert assert_one_sentence_error(client.post(path, json=_ask_bodies(question)[path]), 400) == sentence
    assert generator.messages == []
    _no_errors_logged(caplog)
    _assert_nothing_lost(settings, before)


@pytest.mark.parametrize("case", list(ANSWERED))
def test_serve_answers_a_question_carrying_a_payload_as_the_clean_one_in_json(api, caplog, case):
    client, _generator, settings = api
    question = ANSWERED[case]
    before = _snapshot(settings)
    response = client.post("/v1/ask", json={"question": question})
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["question"] == " ".join(question.split()) and body["text"] == DRAFT and not body["refused"]
    assert body["citations"][0]["doc_id"] == JAPAN_DOC
    _no_errors_logged(caplog)
    _assert_nothing_lost(settings, before)


SERVE_REFUSED_UPLOADS = {
    "../ name": ("../evil.txt", GOOD, 400,
                 "'../evil.txt' points outside its folder; send the article under its own file name"),
    "folder and ../ name": ("notes/../../evil.txt", GOOD, 400, "'notes/../../evil.txt' points outside its folder; "
                                                               "send the article under its own file name"),
    "absolute name": ("/etc/rag-robustness-evil.txt", GOOD, 400,
                      "'/etc/rag-robustness-evil.txt' is an absolute path; send the article under its own file name"),
    "hidden name": (".gimpo.txt", GOOD, 400, "'.gimpo.txt' is not a usable article file name"),
    "binary content": ("photo.txt", BINARY, 400, "photo.txt looks binary (it contains NUL bytes), not a text article"),
    "UTF-16 with BOM": ("gimpo.txt", UTF16, 400, "gimpo.txt is UTF-16 text — save it as UTF-8"),
    "one byte over the size limit": ("big.txt", _exactly(SMALL_LIMIT + 1), 413,
                                     f"big.txt is {SMALL_LIMIT + 1:,} bytes; articles are limited to "
                                     f"{SMALL_LIMIT:,} bytes"),
}


@pytest.mark.parametrize("case", list(SERVE_REFUSED_UPLOADS))
def test_serve_bad_upload_is_4xx_with_one_sentence_and_nothing_is_lost(api, caplog, case):
    client, _generator, settings = api
    name, data, status, sentence = SERVE_REFUSED_UPLOADS[case]
    root = settings.seeds_dir.parent
    before, outside = _snapshot(settings), _outside_files(root)
    assert assert_one_sentence_error(client.post("/v1/articles", files=[("files", (name, data))]), status) \
        == sentence
    assert _outside_files(root) == outside and not Path("/etc/rag-robustness-evil.txt").exists()
    _no_errors_logged(caplog)
    _assert_nothing_lost(settings, before)


def test_serve_upload_exactly_at_the_size_limit_is_added(api, caplog):
    client, _generator, settings = api
    chunks = len(_snapshot(settings)[1])
    response = client.post("/v1/articles", files=[("files", ("exact.txt", _exactly(SMALL_LIMIT)))])
    assert response.status_code == 200, response.text
    assert response.json()["added"] == ["exact"] and response.json()["message"].startswith("indexed 6 articles as ")
    assert (settings.seeds_dir / "exact.txt").stat().st_size == SMALL_LIMIT
    assert len(_snapshot(settings)[1]) > chunks
    _no_errors_logged(caplog)


def test_serve_upload_while_an_answer_is_written_completes_and_both_are_there(api, caplog):
    client, generator, settings = api
    chunks = len(_snapshot(settings)[1])
    generator.go_on.clear()  # the answer stops after its first word until released
    with ThreadPoolExecutor(2) as pool:  # requests from threads share the TestClient's one event loop
        answering = pool.submit(client.post, "/v1/ask", json={"question": JAPAN})
        try:
            assert generator.first_word_out.wait(10)
            # Adding an article takes no answer turn: it completes while the answer waits.
            added = pool.submit(client.post, "/v1/articles", files=[("files", ("gimpo.txt", GOOD))]).result(10)
            assert added.status_code == 200, added.text
            assert added.json() == {"added": ["gimpo"], "message": f"indexed 6 articles as {chunks + 1} chunks"}
            assert not answering.done()
        finally:
            generator.go_on.set()
        answer = answering.result(10).json()
    assert answer["text"] == DRAFT and answer["citations"][0]["doc_id"] == JAPAN_DOC
    listed = {a["doc_id"] for a in client.get("/v1/articles").json()["articles"]}
    assert listed == SEED_IDS | {"gimpo"}
    found = client.post("/v1/ask", json={"question": "How many engineers did the Gimpo robot lab hire in May?"})
    assert found.json()["passages"][0]["chunk"]["doc_id"] == "gimpo"
    _no_errors_logged(caplog)


# --- a model cache folder that cannot be written ---------------------------------------------

def _blocked_cache(settings, tmp_path) -> config.Settings:
    """`settings` with the real generator's cache folder under a file, so it fails before any model loads."""
    (tmp_path / "cache").write_text("a file where the cache folder should be")
    return dataclasses.replace(settings, cache_dir=tmp_path / "cache" / "models")


def _cannot_write(settings) -> str:
    return (f"the model cache folder {settings.cache_dir} cannot be written (a file is in its way) — make it "
            "writable, or set RAG_CACHE_DIR (cache_dir in rag.toml) to a folder that is")


def test_serve_with_a_model_cache_that_cannot_be_written_is_500_with_one_sentence(settings, tmp_path, caplog):
    blocked = _blocked_cache(settings, tmp_path)
    with TestClient(build_app(blocked, Assistants(blocked, embedder=HashEmbedder())),
                    raise_server_exceptions=False) as client:
        response = client.post("/v1/ask", json={"question": JAPAN})
        # The sentence is longer than a client mistake's (it names the folder): compared whole instead.
        assert response.status_code == 500 and response.json() == {
            "error": {"message": _cannot_write(blocked), "type": "server_error", "code": None}}
        assert client.get("/v1/articles").status_code == 200  # the index still serves
    _no_errors_logged(caplog)


def test_chat_with_a_model_cache_that_cannot_be_written_shows_one_sentence(settings, tmp_path, caplog):
    blocked = _blocked_cache(settings, tmp_path)
    chat = Chat(Assistants(blocked, embedder=HashEmbedder()))
    turns = chat.start(JAPAN, [], blocked.model, 4, "tab")
    turn = list(chat.answer(turns, "tab"))[-1][-1]
    assert turn.error == _shown(_cannot_write(blocked)) and turn.answer is None
    _no_errors_logged(caplog)
