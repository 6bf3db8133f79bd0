"""`rag serve`, the HTTP API: every endpoint through FastAPI's TestClient with
the fake models (fast), and the real server as a subprocess asked through
httpx and the official `openai` client with the real models (slow)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from rag import config
from rag.app import GENERIC_ERROR, MAX_UPLOAD_FILES, MAX_TOP_K, Assistants
from rag.ingest import load_corpus
from rag.pipeline import Assistant
from rag.serve import (MAX_JSON_BYTES, TOKEN_VARIABLE, _answer_items, _Turns, add_arguments, build_app,
                       chat_question, upload_name)

from .conftest import SEEDS, BrokenGenerator, FakeGenerator, HashEmbedder, StoppableGenerator

JAPAN = "What net AI talent inflow did Japan record in 2023 in the OECD survey?"
JAPAN_DRAFT = "Japan's net AI talent inflow per 10,000 people in 2023 was +0.54 [1]."
# cite.py drops the second sentence (nothing supports it), so the checked text differs from the draft.
TRIMMED_DRAFT = JAPAN_DRAFT + " The survey was run on the Moon by 400 penguins [2]."
JAPAN_DOC = "004_8845b63d3c664428"
ARTICLES = {a.doc_id: a.text for a in load_corpus(SEEDS, 2_000_000)[0]}
MODEL = "qwen2.5-coder-1.5b"
SMALL_LIMIT = 8000  # an article size limit above every seed's, for the upload tests


class PausingGenerator(StoppableGenerator):
    """The chat tests' StoppableGenerator, which also records each answer's
    stop event and counts answers written at once."""

    running = 0
    most_at_once = 0
    _count_lock = threading.Lock()

    def __init__(self, draft: str) -> None:
        super().__init__(draft)
        self.stops: list[threading.Event | None] = []

    def stream(self, messages, stop=None):
        self.stops.append(stop)
        cls = PausingGenerator
        with cls._count_lock:
            cls.running += 1
            cls.most_at_once = max(cls.most_at_once, cls.running)
        try:
            yield from super().stream(messages, stop)
        finally:
            with cls._count_lock:
                cls.running -= 1


@pytest.fixture
def make_client(settings):
    """make(draft=..., generator=..., token=..., settings=...) -> a TestClient
    over the app; one shared event loop, so requests from threads run at once."""
    clients = []

    def make(draft: str = JAPAN_DRAFT, generator=None, token: str | None = None, generators=None,
             settings_=None) -> TestClient:
        made = generator or PausingGenerator(draft)
        generator_for = (lambda model: generators.setdefault(model, PausingGenerator(draft))) if generators \
            is not None else (lambda model: made)
        s = settings_ or settings
        app = build_app(s, Assistants(s, embedder=HashEmbedder(), generator_for=generator_for), token=token)
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def assert_one_sentence_error(response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "code"}
    message = body["error"]["message"]
    assert isinstance(message, str) and message.strip()
    # no pydantic dump, no traceback, no echo of a long input: one short line
    assert "\n" not in message and "Traceback" not in message and "{'type'" not in message
    assert len(message) < 200, message
    return message


def sse_events(text: str) -> list[dict]:
    """Parse a text/event-stream body strictly: events end with a blank line,
    each line is `field: value` or a `:` comment."""
    assert text.endswith("\n\n"), text[-80:]
    events = []
    for block in text[:-2].split("\n\n"):
        event: dict = {}
        for line in block.split("\n"):
            if line.startswith(":"):
                continue
            field, sep, value = line.partition(": ")
            assert sep and field in ("event", "data"), line
            assert field not in event, f"two {field} lines in one event: {block!r}"
            event[field] = value
        if event:
            events.append(event)
    return events


# --- /v1/ask, /v1/ask/stream ----------------------------------------------------------

def test_ask_returns_the_answer_as_rag_ask_json_prints_it(make_client, settings):
    client = make_client()
    response = client.post("/v1/ask", json={"question": JAPAN})
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    body = response.json()
    direct = Assistant(settings, embedder=HashEmbedder(), generator=FakeGenerator(JAPAN_DRAFT)).ask(JAPAN)
    expected = json.loads(json.dumps(direct.to_dict()))
    assert set(body) == set(expected)
    for key in expected:
        if key != "timings":
            assert body[key] == expected[key], key
    assert body["text"] == JAPAN_DRAFT and not body["refused"]
    citation = body["citations"][0]
    assert citation["doc_id"] == JAPAN_DOC
    assert ARTICLES[JAPAN_DOC][citation["start"]:citation["end"]] == citation["quote"]


def test_ask_takes_k_and_a_known_model(make_client):
    generators: dict = {}
    client = make_client(generators=generators)
    body = client.post("/v1/ask", json={"question": JAPAN, "k": 2, "model": "qwen2.5-coder-0.5b"}).json()
    assert len(body["passages"]) == 2 and list(generators) == ["qwen2.5-coder-0.5b"]
    assert len(client.post("/v1/ask", json={"question": JAPAN}).json()["passages"]) == 4
    for model in ("gpt-5", "openai:http://127.0.0.1:9/v1"):  # no request may make the server call out
        message = assert_one_sentence_error(client.post("/v1/ask", json={"question": JAPAN, "model": model}), 400)
        assert "unknown model" in message
    message = assert_one_sentence_error(client.post("/v1/ask", json={"question": JAPAN, "k": MAX_TOP_K + 1}), 400)
    assert message.startswith("the field 'k' is not valid")


def test_ask_stream_sends_the_draft_then_the_checked_answer_as_events(make_client):
    client = make_client(TRIMMED_DRAFT)
    response = client.post("/v1/ask/stream", json={"question": JAPAN})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    events = sse_events(response.text)
    assert [e["event"] for e in events] == ["draft"] * (len(events) - 1) + ["answer"]
    draft = "".join(json.loads(e["data"])["text"] for e in events[:-1])
    answer = json.loads(events[-1]["data"])
    assert draft == TRIMMED_DRAFT and answer["draft"] == TRIMMED_DRAFT
    assert answer["text"] == JAPAN_DRAFT  # the unsupported sentence is gone from the checked Answer
    assert answer["citations"][0]["doc_id"] == JAPAN_DOC


def test_ask_stream_says_when_the_answer_is_put_into_another_language(make_client):
    korean = "OECD 조사에서 일본은 2023년 AI 인재 순유입을 얼마로 기록했나요?"
    client = make_client(generator=FakeGenerator(JAPAN_DRAFT, {korean: JAPAN}))
    events = sse_events(client.post("/v1/ask/stream", json={"question": korean}).text)
    assert [e["event"] for e in events] == ["draft"] * (len(events) - 2) + ["status", "answer"]
    assert json.loads(events[-2]["data"]) == {"status": "Writing the answer in Korean…"}
    assert json.loads(events[-1]["data"])["asked"] == JAPAN


@pytest.mark.parametrize("path", ["/v1/ask", "/v1/ask/stream"])
@pytest.mark.parametrize("kwargs, says", [
    ({"json": {"question": ""}}, "the question is empty"),
    ({"json": {"question": "   \n "}}, "the question is empty"),
    ({"json": {"question": "why " * 400}}, "characters long; the limit is 1,000"),
    ({"content": b'{"question": "What', "headers": {"content-type": "application/json"}}, "not valid JSON"),
    ({"json": {}}, "the field 'question' is missing"),
    ({"json": {"question": 5}}, "the field 'question' is not valid"),
    ({"json": {"question": JAPAN, "top_k": 3}}, "unknown field 'top_k'"),
    ({"json": [JAPAN]}, "must be a JSON object"),
    ({"json": {"question": JAPAN, "k": 0}}, "the field 'k' is not valid"),
])
def test_user_mistakes_get_400_with_one_sentence(make_client, path, kwargs, says):
    client = make_client()
    message = assert_one_sentence_error(client.post(path, **kwargs), 400)
    assert says in message


def test_other_bad_requests_get_4xx_with_one_sentence(make_client):
    client = make_client()
    assert "no such endpoint" in assert_one_sentence_error(client.get("/v1/nothing"), 404)
    assert "does not accept GET" in assert_one_sentence_error(client.get("/v1/ask"), 405)
    huge = json.dumps({"question": "x" * (MAX_JSON_BYTES + 1)})
    message = assert_one_sentence_error(
        client.post("/v1/ask", content=huge, headers={"content-type": "application/json"}), 413)
    assert "the limit here is 1,000,000 bytes" in message
    chunked = client.post("/v1/ask", content=iter([b'{"question": ', b'"What?"}']),
                          headers={"content-type": "application/json"})
    assert "Content-Length" in assert_one_sentence_error(chunked, 411)
    broken = client.post("/v1/articles", content=b"--x\r\nnonsense", headers={"content-type": "multipart/form-data"})
    assert "the upload cannot be read" in assert_one_sentence_error(broken, 400)
    as_json = client.post("/v1/articles", json={"files": ["a.txt"]})
    assert "multipart form field 'files'" in assert_one_sentence_error(as_json, 400)


def test_unexpected_errors_are_one_generic_sentence(make_client, caplog):
    client = make_client(generator=BrokenGenerator("x"))
    with caplog.at_level(logging.ERROR, logger="rag.serve"):
        message = assert_one_sentence_error(client.post("/v1/ask", json={"question": JAPAN}), 500)
        assert message == GENERIC_ERROR and "CUDA" not in message
        events = sse_events(client.post("/v1/ask/stream", json={"question": JAPAN}).text)
        assert events[-1]["event"] == "error" and json.loads(events[-1]["data"])["error"]["message"] == GENERIC_ERROR
        chunks = [line[6:] for line in client.post("/v1/chat/completions", json={
            "model": MODEL, "stream": True, "messages": [{"role": "user", "content": JAPAN}]}).text.split("\n")
            if line.startswith("data: ")]
        assert json.loads(chunks[-1])["error"]["message"] == GENERIC_ERROR  # the openai client raises on it
    assert "CUDA out of memory" in caplog.text  # the details are in the server's log


# --- the token ---------------------------------------------------------------------------

def test_a_token_from_the_environment_is_required_when_set(make_client, monkeypatch):
    monkeypatch.setenv(TOKEN_VARIABLE, "s3cret-token")
    config.load(config_file=SEEDS / "none.toml")  # the variable is not taken for an unknown setting
    client = make_client(token="s3cret-token")
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Bearer s3cret-toke"},
                    {"Authorization": "Basic s3cret-token"}, {"Authorization": "s3cret-token"}):
        response = client.post("/v1/ask", json={"question": JAPAN}, headers=headers)
        assert "API token" in assert_one_sentence_error(response, 401)
        assert response.headers["www-authenticate"] == "Bearer"
        assert client.get("/v1/models", headers=headers).status_code == 401
    good = {"Authorization": "Bearer s3cret-token"}
    assert client.post("/v1/ask", json={"question": JAPAN}, headers=good).json()["text"] == JAPAN_DRAFT
    assert client.get("/v1/articles", headers=good).status_code == 200
    assert client.get("/healthz").json()["status"] == "ok"  # probes need no token


# --- OpenAI's chat API ------------------------------------------------------------------------

def test_chat_completion_has_openais_shape_the_checked_text_and_citations(make_client):
    from openai.types.chat import ChatCompletion

    client = make_client(TRIMMED_DRAFT)
    response = client.post("/v1/chat/completions", json={
        "model": MODEL, "temperature": 0.2, "max_tokens": 300,  # accepted, not used
        "messages": [{"role": "system", "content": "You are helpful."}, {"role": "user", "content": JAPAN}]})
    assert response.status_code == 200
    body = response.json()
    completion = ChatCompletion.model_validate(body)  # the openai package's own type
    assert completion.object == "chat.completion" and completion.model == MODEL
    assert completion.choices[0].message.content == JAPAN_DRAFT  # checked text, [n] markers kept
    assert completion.choices[0].finish_reason == "stop"
    assert body["refused"] is False and body["question"] == JAPAN
    (citation,) = body["citations"]
    assert set(citation) == {"marker", "doc_id", "title", "quote", "start", "end"}
    assert citation["marker"] == 1 and citation["doc_id"] == JAPAN_DOC
    assert ARTICLES[JAPAN_DOC][citation["start"]:citation["end"]] == citation["quote"]


def test_chat_completion_stream_sends_only_the_checked_text_in_chunks(make_client):
    from openai.types.chat import ChatCompletionChunk

    client = make_client(TRIMMED_DRAFT)
    response = client.post("/v1/chat/completions", json={
        "model": MODEL, "stream": True, "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": [{"type": "text", "text": JAPAN}]}]})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.text)
    assert all("event" not in e for e in events)  # OpenAI's stream uses data lines only
    assert events[-1]["data"] == "[DONE]"
    chunks = [ChatCompletionChunk.model_validate(json.loads(e["data"])) for e in events[:-1]]
    assert len({c.id for c in chunks}) == 1 and all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == JAPAN_DRAFT != TRIMMED_DRAFT  # what the client joins is the checked answer
    assert len(chunks) > 5  # in word pieces, not one lump
    assert [c.choices[0].finish_reason for c in chunks] == [None] * (len(chunks) - 1) + ["stop"]
    last = json.loads(events[-2]["data"])
    assert last["citations"][0]["doc_id"] == JAPAN_DOC and last["refused"] is False


def test_chat_follow_ups_are_rewritten_from_the_earlier_user_messages(make_client):
    generator = PausingGenerator(JAPAN_DRAFT)
    client = make_client(generator=generator)
    body = client.post("/v1/chat/completions", json={"model": MODEL, "messages": [
        {"role": "user", "content": "What was Korea's net AI talent outflow per 10,000 people in 2023?"},
        {"role": "assistant", "content": "Korea's net outflow was -0.30 [1]."},
        {"role": "user", "content": "And Japan?"}]}).json()
    assert body["question"] == "What was Japan's net AI talent outflow per 10,000 people in 2023?"
    assert body["question"] in generator.messages[-1][-1]["content"]  # the model was asked the rewrite
    assert chat_question([("user", "What net AI talent inflow did Japan record in 2023?"),
                          ("user", "And Korea?"), ("user", "What about 2019?")]) \
        == "What net AI talent inflow did Korea record in 2019?"


@pytest.mark.parametrize("request_body, says", [
    ({"model": MODEL, "messages": [{"role": "system", "content": "Be brief."}]}, "no user message"),
    ({"model": MODEL, "messages": [{"role": "user", "content": "  "}]}, "the question is empty"),
    ({"model": MODEL, "messages": []}, "the field 'messages' is not valid"),
    ({"messages": [{"role": "user", "content": JAPAN}]}, "the field 'model' is missing"),
    ({"model": "gpt-4o", "messages": [{"role": "user", "content": JAPAN}]}, "unknown model 'gpt-4o'"),
    ({"model": MODEL, "n": 2, "messages": [{"role": "user", "content": JAPAN}]}, "the field 'n' is not valid"),
    ({"model": MODEL, "messages": [{"content": JAPAN}]}, "the field 'messages.0.role' is missing"),
])
@pytest.mark.parametrize("stream", [False, True])
def test_chat_mistakes_get_400_before_any_stream(make_client, request_body, says, stream):
    client = make_client()
    message = assert_one_sentence_error(client.post("/v1/chat/completions", json={**request_body, "stream": stream}),
                                        400)
    assert says in message


def test_models_lists_the_one_model(make_client):
    from openai.types import Model

    client = make_client()
    body = client.get("/v1/models").json()
    assert body["object"] == "list" and [m["id"] for m in body["data"]] == [MODEL]
    assert Model.model_validate(client.get(f"/v1/models/{MODEL}").json()).id == MODEL
    assert assert_one_sentence_error(client.get("/v1/models/gpt-4o"), 404)


# --- articles --------------------------------------------------------------------------------

def test_articles_are_listed_and_uploads_added_under_their_own_names(make_client, settings):
    client = make_client("The Vostrel station employs 47 glaciologists [1].")
    listed = client.get("/v1/articles").json()["articles"]
    assert [a["doc_id"] for a in listed] == sorted(ARTICLES) and all(a["title"] for a in listed)
    text = "Vostrel station opens\nThe Vostrel research station employs 47 glaciologists.\n"
    response = client.post("/v1/articles", files=[("files", ("uploads/vostrel_station.txt", text.encode()))])
    assert response.status_code == 200, response.text
    assert response.json()["added"] == ["vostrel_station"] and "indexed 6 articles" in response.json()["message"]
    assert (settings.seeds_dir / "vostrel_station.txt").read_text(encoding="utf-8") == text  # the base name only
    assert "vostrel_station" in [a["doc_id"] for a in client.get("/v1/articles").json()["articles"]]
    answer = client.post("/v1/ask", json={"question": "How many glaciologists does the Vostrel research "
                                                      "station employ?"}).json()
    assert answer["citations"][0]["doc_id"] == "vostrel_station"


@pytest.mark.parametrize("files, status, says", [
    ([("files", ("../evil.txt", b"An article."))], 400, "points outside its folder"),
    ([("files", ("notes/../../evil.txt", b"An article."))], 400, "points outside its folder"),
    ([("files", ("/etc/evil.txt", b"An article."))], 400, "absolute path"),
    ([("files", (".hidden.txt", b"An article."))], 400, "not a usable article file name"),
    ([("files", ("report.pdf", b"%PDF-1.4"))], 400, "only .txt and .md"),
    ([("files", ("binary.txt", b"abc\x00def"))], 400, "looks binary"),
    ([("files", ("latin1.txt", "caf\xe9".encode("latin-1")))], 400, "not UTF-8"),
    ([("files", ("empty.txt", b"  \n"))], 400, "is empty"),
    ([("files", ("big.txt", b"x" * (SMALL_LIMIT + 1)))], 413, "limited to 8,000 bytes"),
    ([("files", ("good.txt", b"Fine.")), ("files", ("good.txt", b"Twice."))], 400, "same name"),
    ([("files", ("good.txt", b"Fine.")), ("files", ("big.txt", b"y" * 9000))], 413, "big.txt is 9,000 bytes"),
    ([("other", ("good.txt", b"Fine."))], 400, "field 'files'"),
    ([("files", (f"note{i}.txt", b"Note.")) for i in range(MAX_UPLOAD_FILES + 1)], 400,
     f"the upload cannot be read: too many files; maximum number of files is {MAX_UPLOAD_FILES}"),
])
def test_bad_uploads_get_4xx_and_change_nothing(make_client, settings, files, status, says):
    import dataclasses

    small = dataclasses.replace(settings, max_article_bytes=SMALL_LIMIT)
    client = make_client(settings_=small)
    before = sorted(p.name for p in settings.seeds_dir.iterdir())
    message = assert_one_sentence_error(client.post("/v1/articles", files=files), status)
    assert says in message
    assert sorted(p.name for p in settings.seeds_dir.iterdir()) == before
    assert not (settings.seeds_dir.parent / "evil.txt").exists()


@pytest.mark.parametrize("sent", ["\\\\server\\share\\evil.txt", "C:\\Users\\me\\evil.txt", "notes/evil.txt"])
def test_an_upload_with_a_folder_in_its_name_is_saved_under_its_base_name(make_client, settings, sent):
    # The multipart parser already cuts Windows paths to their last part, as browsers that sent them expect.
    client = make_client()
    response = client.post("/v1/articles", files=[("files", (sent, b"Evil corp\nEvil corp hired 12 people."))])
    assert response.status_code == 200 and response.json()["added"] == ["evil"]
    assert (settings.seeds_dir / "evil.txt").is_file() and not (settings.seeds_dir.parent / "evil.txt").exists()


def test_an_upload_larger_than_all_the_files_allowed_is_refused_before_it_is_read(make_client, settings):
    import dataclasses

    client = make_client(settings_=dataclasses.replace(settings, max_article_bytes=10))
    body = b"x" * (MAX_UPLOAD_FILES * 10 + 1_000_001)
    response = client.post("/v1/articles", content=body, headers={"content-type": "multipart/form-data; boundary=b"})
    assert "the request body is" in assert_one_sentence_error(response, 413)


def test_upload_names_keep_only_the_base_name():
    assert upload_name("vostrel.txt") == "vostrel.txt"
    assert upload_name("a/b/vostrel.md") == upload_name("a\\b\\vostrel.md") == "vostrel.md"
    for bad in ("", " ", "..", "a/..", "/x.txt", "D:x.txt", "x/", "new\nline.txt"):
        with pytest.raises(Exception):
            upload_name(bad)


# --- one answer at a time, and a free event loop ------------------------------------------------------

def test_concurrent_requests_queue_one_answer_at_a_time_and_the_loop_stays_free(make_client):
    generators: dict = {}
    client = make_client(generators=generators)
    PausingGenerator.most_at_once = 0
    post = client.post  # requests from threads share the TestClient's one event loop
    with ThreadPoolExecutor(4) as pool:
        generators.setdefault(MODEL, PausingGenerator(JAPAN_DRAFT)).go_on.clear()
        answering = pool.submit(post, "/v1/ask", json={"question": JAPAN})
        assert generators[MODEL].first_word_out.wait(10)
        # Another model has another Generator (and lock): the server's own turn queue holds it back.
        waiting = [pool.submit(post, "/v1/chat/completions", json={
            "model": "qwen2.5-coder-0.5b", "messages": [{"role": "user", "content": JAPAN}]}),
            pool.submit(post, "/v1/ask/stream", json={"question": JAPAN})]
        started = time.perf_counter()
        health = pool.submit(client.get, "/healthz").result(5)  # served while an answer is being written
        articles = pool.submit(client.get, "/v1/articles").result(5)
        assert health.status_code == 200 and articles.status_code == 200 and time.perf_counter() - started < 5
        time.sleep(0.3)
        assert not answering.done() and not any(w.done() for w in waiting)  # queued, not failed
        generators[MODEL].go_on.set()
        assert answering.result(10).json()["text"] == JAPAN_DRAFT
        chat, stream = (w.result(10) for w in waiting)
    assert chat.json()["choices"][0]["message"]["content"] == JAPAN_DRAFT
    assert json.loads(sse_events(stream.text)[-1]["data"])["text"] == JAPAN_DRAFT
    assert PausingGenerator.most_at_once == 1


def test_answers_are_written_in_the_order_asked():
    turns, order = _Turns(), []
    gate = threading.Event()

    def hold():
        with turns.turn():
            gate.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    time.sleep(0.05)
    waiting = []
    for i in range(5):
        def take(i=i):
            with turns.turn():
                order.append(i)
        waiting.append(threading.Thread(target=take))
        waiting[-1].start()
        time.sleep(0.05)  # each reaches the queue before the next
    gate.set()
    for thread in [holder, *waiting]:
        thread.join(5)
    assert order == [0, 1, 2, 3, 4]


def test_a_client_that_goes_away_stops_its_answer(settings):
    generator = PausingGenerator(JAPAN_DRAFT)
    generator.go_on.clear()
    assistant = Assistant(settings, embedder=HashEmbedder(), generator=generator)
    passages = assistant.retrieve(JAPAN)
    stop = threading.Event()

    async def read_one_piece_and_leave():
        items = _answer_items(assistant, JAPAN, passages, _Turns(), stop)
        first = await items.__anext__()
        await items.aclose()  # what a disconnect does to the response's generator
        return first

    assert asyncio.run(read_one_piece_and_leave()) == "Japan's "
    assert stop.is_set() and generator.stops[-1] is stop
    generator.go_on.set()


# --- the command -----------------------------------------------------------------------------------

def test_serve_flags():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args([])
    assert (args.host, args.port, args.model, args.top_k) == ("127.0.0.1", 8000, None, None)
    args = parser.parse_args(["--host", "0.0.0.0", "--port", "8001", "--model", "qwen2.5-coder-0.5b", "-k", "6"])
    assert (args.host, args.port, args.model, args.top_k) == ("0.0.0.0", 8001, "qwen2.5-coder-0.5b", 6)


@pytest.mark.parametrize("host, warned", [("127.0.0.1", False), ("localhost", False), ("::1", False),
                                          ("0.0.0.0", True), ("192.0.2.7", True)])
def test_serve_binds_loopback_by_default_and_warns_for_any_other_address(monkeypatch, caplog, capsys, settings,
                                                                         host, warned):
    import uvicorn

    import rag.serve as serve

    bound, served = [], []

    def listen(h, p):
        bound.append((h, p))
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))  # binds nothing the test was not asked to
        return sock

    monkeypatch.setattr(serve, "_listen", listen)
    monkeypatch.setattr(serve, "Assistants", lambda s: Assistants(s, embedder=HashEmbedder(),
                                                                  generator_for=lambda m: FakeGenerator("x")))
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: served.append((self.config, sockets)))
    monkeypatch.setenv(TOKEN_VARIABLE, "tok")
    with caplog.at_level("WARNING"):
        assert serve.main(argparse.Namespace(host=host, port=8123, verbose=False), settings) == 0
    assert bound == [(host, 8123)] and len(served) == 1
    assert ("anyone who can reach this address" in caplog.text) == warned
    assert "listening on http://127.0.0.1:" in capsys.readouterr().out
    app = served[0][0].app
    with TestClient(app) as client:  # the token came from the environment
        assert client.get("/v1/models").status_code == 401
        assert client.get("/v1/models", headers={"Authorization": "Bearer tok"}).status_code == 200
    served[0][1][0].close()


def test_a_port_in_use_is_one_sentence(home_with_seeds, capsys):
    from rag.cli import run

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert run(["serve", "--port", str(taken.getsockname()[1])]) == 1
    err = capsys.readouterr().err
    assert err.startswith("rag: cannot listen on 127.0.0.1:") and "Traceback" not in err


@pytest.fixture
def home_with_seeds(project, monkeypatch):
    monkeypatch.setenv("RAG_HOME", str(project))
    return project


# --- slow: the real server, the real models, httpx and the openai client ----------------------------

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """`python -m rag serve` on a free loopback port over a copy of the seeds, with a token."""
    import shutil

    import httpx

    root = tmp_path_factory.mktemp("project")
    shutil.copytree(SEEDS, root / "seeds")
    port, token = _free_port(), "slow-test-token"
    env = dict(os.environ, RAG_HOME=str(root), RAG_API_TOKEN=token)
    log_path = root / "server.log"
    with log_path.open("w") as log_file:
        server = subprocess.Popen([sys.executable, "-m", "rag", "serve", "--port", str(port)], env=env,
                                  stdout=log_file, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 900  # a first run on a machine dequantizes the model (minutes)
        while True:
            assert server.poll() is None, log_path.read_text()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/healthz", timeout=2).json()["ready"]:
                    break
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.5)
        yield url, token
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)
    assert "Traceback" not in log_path.read_text(), log_path.read_text()


def _check_cited(text: str, citations: list[dict]) -> None:
    assert "0.54" in text, text
    assert citations and JAPAN_DOC in {c["doc_id"] for c in citations}
    for c in citations:
        assert f"[{c['marker']}]" in text
        assert c["quote"] in ARTICLES[c["doc_id"]] and ARTICLES[c["doc_id"]][c["start"]:c["end"]] == c["quote"]


@pytest.mark.slow
def test_the_real_server_answers_through_httpx_and_the_openai_client(served):
    import httpx
    from openai import AuthenticationError, OpenAI

    url, token = served
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=auth, timeout=600) as http:
        assert http.post("/v1/ask", json={"question": JAPAN}, headers={"Authorization": "Bearer no"}).status_code \
            == 401
        answer = http.post("/v1/ask", json={"question": JAPAN}).json()
        assert not answer["refused"] and answer["model"] == MODEL
        _check_cited(answer["text"], answer["citations"])
        refused = http.post("/v1/ask", json={"question": "Who won the 2022 FIFA World Cup?"}).json()
        assert refused["refused"] and refused["citations"] == []

        with http.stream("POST", "/v1/ask/stream", json={"question": JAPAN}) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            events = sse_events("".join(response.iter_text()))
        assert [e["event"] for e in events][-1] == "answer" and events[0]["event"] == "draft"
        streamed = json.loads(events[-1]["data"])
        assert "".join(json.loads(e["data"])["text"] for e in events[:-1]) == streamed["draft"]
        _check_cited(streamed["text"], streamed["citations"])

    client = OpenAI(base_url=f"{url}/v1", api_key=token, timeout=600, max_retries=0)
    assert [m.id for m in client.models.list()] == [MODEL]
    completion = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": JAPAN}])
    extra = completion.model_extra
    assert extra["refused"] is False
    _check_cited(completion.choices[0].message.content, extra["citations"])

    chunks = list(client.chat.completions.create(model=MODEL, stream=True,
                                                 messages=[{"role": "user", "content": JAPAN}]))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == completion.choices[0].message.content  # the same checked answer, streamed
    _check_cited(text, chunks[-1].model_extra["citations"])

    refusal = client.chat.completions.create(model=MODEL, messages=[
        {"role": "user", "content": "Who won the 2022 FIFA World Cup?"}])
    assert refusal.model_extra["refused"] and refusal.model_extra["citations"] == []
    assert "don't cover" in refusal.choices[0].message.content
    with pytest.raises(AuthenticationError):
        OpenAI(base_url=f"{url}/v1", api_key="wrong", max_retries=0).models.list()
