"""The generator that drafts on a serving engine over the OpenAI chat protocol.

Fast tests talk to a small OpenAI-compatible HTTP server started here (real
sockets, real HTTP, server-sent events); the slow one starts llama.cpp's own
server on the project's GGUF file and answers through the whole pipeline.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rag import config
from rag.cli import run
from rag.errors import BadInput, ConfigError, ModelLoadError, RagError
from rag.generate import Generator, make_generator
from rag.ingest import load_corpus
from rag.pipeline import Assistant
from rag.remote import RemoteGenerator, RemoteSpec, parse_spec

from .conftest import SEEDS, HashEmbedder

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
QUESTION = "What was Japan's net AI talent inflow per 10,000 people in 2023?"
DRAFT = "Japan recorded a net inflow of +0.54 [1]."


# --- a fake OpenAI-compatible server ---------------------------------------------------

class FakeServer(ThreadingHTTPServer):
    """Answers GET /v1/models and streams POST /v1/chat/completions as configured by the test."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.models_status = 200
        self.models_body: bytes = json.dumps({"object": "list", "data": [{"id": "fake-model"},
                                                                          {"id": "other"}]}).encode()
        self.chat_status = 200
        self.chat_body: bytes | None = None  # a whole non-streamed body instead of the SSE events
        self.pieces = ["Hello", " there", "."]
        self.events: list[str] | None = None  # raw `data:` payloads instead of ones built from pieces
        self.delay_s = 0.0  # before each event
        self.first_delay_s = 0.0  # before the first event (a slow prefill)
        self.requests: list[dict] = []
        self.headers_seen: list[dict] = []
        self.active = 0
        self.max_active = 0
        self.disconnected = threading.Event()
        self._count_lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def chunk(self, content: str | None = None, finish: str | None = None) -> str:
        delta = {} if content is None else {"content": content}
        return json.dumps({"id": "c1", "object": "chat.completion.chunk", "model": "fake-model",
                           "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})


class _Handler(BaseHTTPRequestHandler):
    server: FakeServer

    def log_message(self, *args) -> None:  # keep pytest's output clean
        pass

    def _send(self, status: int, body: bytes, kind: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        s = self.server
        s.headers_seen.append(dict(self.headers))
        if self.path == "/v1/models":
            self._send(s.models_status, s.models_body)
        else:
            self._send(404, b'{"detail": "Not Found"}')

    def do_POST(self) -> None:  # noqa: N802
        s = self.server
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        s.requests.append(body)
        s.headers_seen.append(dict(self.headers))
        if self.path != "/v1/chat/completions":
            return self._send(404, b'{"detail": "Not Found"}')
        if s.chat_status != 200 or s.chat_body is not None:
            return self._send(s.chat_status, s.chat_body or b"")
        with s._count_lock:
            s.active += 1
            s.max_active = max(s.max_active, s.active)
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            events = s.events if s.events is not None else (
                [s.chunk()] + [s.chunk(p) for p in s.pieces] + [s.chunk(finish="stop"), "[DONE]"])
            time.sleep(s.first_delay_s)
            for i, data in enumerate(events):
                time.sleep(s.delay_s)
                # A comment line and a multi-line event, as SSE allows.
                prefix = ": ping\n\n" if i == 1 else ""
                self.wfile.write(f"{prefix}data: {data}\n\n".encode())
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            s.disconnected.set()
        finally:
            with s._count_lock:
                s.active -= 1


@pytest.fixture
def server():
    fake = FakeServer()
    thread = threading.Thread(target=fake.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield fake
    fake.shutdown()
    fake.server_close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- the model setting ---------------------------------------------------------------------

@pytest.mark.parametrize("name, spec", [
    ("openai:http://127.0.0.1:8080/v1", RemoteSpec("http://127.0.0.1:8080/v1", None)),
    ("openai:http://127.0.0.1:8080/v1/", RemoteSpec("http://127.0.0.1:8080/v1", None)),
    ("openai:https://llm.example/v1#qwen2.5-coder:1.5b", RemoteSpec("https://llm.example/v1", "qwen2.5-coder:1.5b")),
    ("openai:http://[::1]:11434/v1", RemoteSpec("http://[::1]:11434/v1", None)),
])
def test_good_specs_parse(name, spec):
    assert parse_spec(name) == spec


@pytest.mark.parametrize("name, message", [
    ("openai:", "lacks the server's URL"),
    ("openai:127.0.0.1:8080/v1", "needs an http:// or https:// URL"),
    ("openai:ftp://127.0.0.1/v1", "needs an http:// or https:// URL"),
    ("openai:http:///v1", "needs an http:// or https:// URL"),
    ("openai:http://127.0.0.1:99999/v1", "has a bad URL"),
    ("openai:http://127.0.0.1:8080/v1?key=1", "must not have a query string"),
    ("openai:http://127.0.0.1:8080/v1#", "empty model name"),
    ("openai:http://127.0.0.1:8080/v1 ", "must not contain spaces"),
])
def test_bad_specs_are_config_errors_naming_the_form(name, message):
    with pytest.raises(ConfigError) as info:
        parse_spec(name)
    assert message in str(info.value) and "openai:http://127.0.0.1:8080/v1" in str(info.value)
    with pytest.raises(ConfigError):  # and the Assistant refuses it before anything loads
        Assistant(config.Settings(model=name), embedder=HashEmbedder())


def test_the_setting_selects_the_remote_generator_from_toml_env_and_flag(project, monkeypatch, server):
    (project / "rag.toml").write_text(f'model = "openai:{server.url}"\n')
    settings = config.load(root=project)
    generator = Assistant(settings, embedder=HashEmbedder()).generator
    assert isinstance(generator, RemoteGenerator) and generator.base_url == server.url
    monkeypatch.setenv("RAG_MODEL", f"openai:{server.url}#other")
    assert make_generator(config.load(root=project)).spec.model == "other"
    assert isinstance(make_generator(config.load(root=project, model="qwen2.5-coder-0.5b")), Generator)
    assert server.requests == [] and server.headers_seen == []  # building one contacts nothing


def test_command_line_reports_a_bad_url_in_one_sentence(project, monkeypatch, capsys):
    monkeypatch.setenv("RAG_HOME", str(project))
    assert run(["ask", "What?", "--model", "openai:ftp://127.0.0.1/v1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rag: model 'openai:ftp://127.0.0.1/v1' needs an http") and "Traceback" not in err
    assert err.count("\n") == 1


def test_api_key_comes_from_the_environment_and_is_no_setting(project, monkeypatch, server):
    monkeypatch.setenv("RAG_GENERATOR_API_KEY", "s3cret")
    settings = config.load(root=project, model=f"openai:{server.url}")  # not an unknown setting
    assert "s3cret" not in repr(settings)
    generator = make_generator(settings)
    assert "".join(generator.stream(MESSAGES)) == "Hello there."
    assert {h.get("Authorization") for h in server.headers_seen} == {"Bearer s3cret"}


# --- talking to the server -----------------------------------------------------------------

def test_stream_yields_the_content_deltas_of_a_greedy_bounded_request(server):
    generator = RemoteGenerator(f"openai:{server.url}", max_new_tokens=77)
    assert list(generator.stream(MESSAGES)) == ["Hello", " there", "."]
    body = server.requests[0]
    assert body["model"] == "fake-model"  # the first one listed
    assert body["messages"] == MESSAGES and body["stream"] is True
    assert body["temperature"] == 0 and body["max_tokens"] == 77
    assert "Authorization" not in server.headers_seen[0]


def test_a_named_model_is_asked_for_and_must_be_served(server):
    generator = RemoteGenerator(f"openai:{server.url}#other")
    assert "".join(generator.stream(MESSAGES)) == "Hello there."
    assert server.requests[0]["model"] == "other"
    with pytest.raises(ModelLoadError) as info:
        RemoteGenerator(f"openai:{server.url}#missing").load()
    assert str(info.value) == (f"the generator server at {server.url} does not serve 'missing'; "
                               f"it serves: fake-model, other")


def test_stop_ends_the_answer_and_closes_the_response(server):
    server.pieces = [f" w{i}" for i in range(200)]
    server.delay_s = 0.01
    stop = threading.Event()
    generator = RemoteGenerator(f"openai:{server.url}")
    pieces = []
    for piece in generator.stream(MESSAGES, stop=stop):
        pieces.append(piece)
        stop.set()
    assert pieces == [" w0"]
    # The server notices the closed connection long before its 2 s of pieces are written.
    assert server.disconnected.wait(1.5)
    # Stopped before it was asked: no request at all.
    assert list(generator.stream(MESSAGES, stop=stop)) == [] and len(server.requests) == 1


def test_an_abandoned_stream_frees_the_generator(server):
    generator = RemoteGenerator(f"openai:{server.url}")
    stream = generator.stream(MESSAGES)
    next(stream)
    stream.close()  # a reader that goes away mid-answer
    assert "".join(generator.stream(MESSAGES)) == "Hello there."


def test_one_generation_at_a_time(server):
    server.delay_s = 0.05
    generator = RemoteGenerator(f"openai:{server.url}")
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append("".join(generator.stream(MESSAGES))))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == ["Hello there."] * 3 and server.max_active == 1


def test_unreachable_server_is_one_sentence_naming_the_url():
    url = f"http://127.0.0.1:{_free_port()}/v1"
    generator = RemoteGenerator(f"openai:{url}")
    with pytest.raises(ModelLoadError) as info:
        "".join(generator.stream(MESSAGES))
    message = str(info.value)
    assert message.startswith(f"cannot reach the generator server at {url} — start it") and "\n" not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_a_server_that_never_answers_times_out_with_one_sentence():
    with socket.socket() as silent:  # accepts connections (the kernel does) but never replies
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/v1"
        generator = RemoteGenerator(f"openai:{url}", read_timeout_s=0.3)
        started = time.perf_counter()
        with pytest.raises(ModelLoadError) as info:
            generator.load()
        assert time.perf_counter() - started < 5
    assert str(info.value) == f"the generator server at {url} did not answer GET /models within 0.3 s"


@pytest.mark.parametrize("status, body, message", [
    (500, b"oops", "answered HTTP 500 to GET {url}/models — is this its OpenAI-compatible base URL"),
    (404, b'{"detail": "Not Found"}', "answered HTTP 404"),
    (401, b'{"error": {"message": "bad key"}}', "refused the request (HTTP 401) — set RAG_GENERATOR_API_KEY"),
    (200, b"<html>a web page</html>", "does not speak the OpenAI API"),
    (200, b'{"models": ["x"]}', "does not speak the OpenAI API"),
    (200, b'{"data": []}', "lists no model; name one as openai:{url}#<model>"),
])
def test_bad_model_list_answers_are_model_load_errors(server, status, body, message):
    server.models_status, server.models_body = status, body
    with pytest.raises(ModelLoadError) as info:
        RemoteGenerator(f"openai:{server.url}").load()
    assert message.format(url=server.url) in str(info.value) and server.url in str(info.value)


def test_the_wrong_base_url_is_caught_when_loading(server):
    with pytest.raises(ModelLoadError, match="answered HTTP 404 to GET .*/v1/v1/models"):
        RemoteGenerator(f"openai:{server.url}/v1").load()


@pytest.mark.parametrize("status, body, message", [
    (400, b'{"error": {"message": "prompt is too long", "type": "invalid_request_error"}}',
     "answered HTTP 400: prompt is too long"),
    (503, b'{"detail": "busy"}', "answered HTTP 503: busy"),
    (500, b"Internal Server Error", "answered HTTP 500: Internal Server Error"),
    (200, b'{"choices": []}', "closed the answer half-way"),  # not a stream at all
])
def test_bad_completion_answers_are_rag_errors(server, status, body, message):
    server.chat_status, server.chat_body = status, body
    with pytest.raises(RagError) as info:
        list(RemoteGenerator(f"openai:{server.url}").stream(MESSAGES))
    assert message in str(info.value) and server.url in str(info.value)


@pytest.mark.parametrize("events, message", [
    (["not json"], "sent something that is not JSON mid-answer: 'not json'"),
    (['{"object": "chat.completion.chunk"}'], "sent a chunk that is not a chat completion"),
    (['{"choices": [{"delta": {"content": 5}}]}'], "sent a chunk that is not a chat completion"),
    (['{"error": {"message": "out of memory"}}'], "failed mid-answer: out of memory"),
    (["{CHUNK}"], "closed the answer half-way"),  # no finish reason and no [DONE]
])
def test_garbage_mid_stream_is_a_rag_error(server, events, message):
    server.events = [e.replace("{CHUNK}", server.chunk("Hel")) for e in events]
    with pytest.raises(RagError) as info:
        list(RemoteGenerator(f"openai:{server.url}").stream(MESSAGES))
    assert message in str(info.value)


def test_a_finish_reason_without_done_ends_the_answer_cleanly(server):
    server.events = [server.chunk("Hi"), json.dumps({"choices": []}), server.chunk(".", finish="length")]
    assert "".join(RemoteGenerator(f"openai:{server.url}").stream(MESSAGES)) == "Hi."


def test_a_stalled_answer_times_out(server):
    server.first_delay_s = 1.0
    with pytest.raises(RagError, match="sent nothing for 0.3 s"):
        list(RemoteGenerator(f"openai:{server.url}", read_timeout_s=0.3).stream(MESSAGES))


# --- through the pipeline and the app ------------------------------------------------------

def test_the_pipeline_checks_a_served_draft_as_its_own(settings, server):
    server.pieces = ["Japan recorded", " a net inflow", " of +0.54 [1]."]
    name = f"openai:{server.url}"
    assistant = Assistant(settings, model=name, embedder=HashEmbedder())
    answer = assistant.ask(QUESTION)
    assert not answer.refused and answer.model == name
    article = {a.doc_id: a.text for a in load_corpus(settings.seeds_dir, 2_000_000)[0]}
    c = answer.citations[0]
    assert c.doc_id == "004_8845b63d3c664428" and article[c.doc_id][c.start:c.end] == c.quote
    prompt = server.requests[0]["messages"][-1]["content"]
    assert QUESTION in prompt and "[1] (" in prompt
    # A draft the passages do not back is refused by this project's checks, not the server.
    server.pieces = ["Japan recorded a net inflow of +9.99 [1]."]
    assert assistant.ask(QUESTION).refused


def test_the_app_offers_the_configured_server_and_no_other(settings, server):
    from rag.app import Assistants

    name = f"openai:{server.url}"
    assistants = Assistants(dataclasses.replace(settings, model=name), embedder=HashEmbedder())
    assert isinstance(assistants.get().generator, RemoteGenerator)
    with pytest.raises(BadInput, match="is not offered here"):
        assistants.get("openai:http://127.0.0.1:1/v1")


# --- the real thing: llama.cpp's server on the project's GGUF ------------------------------

LLAMA_SERVER_START_S = 240  # loads and maps the 1.1 GB GGUF; a busy 2-core machine is slow
SERVED_NAME = "qwen2.5-coder-1.5b"  # what the server lists (else the GGUF's path)


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    """llama-cpp-python's OpenAI-compatible server on the default model's GGUF, on a free loopback port."""
    pytest.importorskip("llama_cpp.server.app", reason="llama-cpp-python[server] is not installed (the dev extra)")
    from rag import models

    gguf = models.assembled_gguf(models.get_spec(models.DEFAULT_MODEL), config.Settings().cache_dir, progress=False)
    port = _free_port()
    log_path = tmp_path_factory.mktemp("llama-server") / "server.log"
    with open(log_path, "wb") as log_file:
        # No --chat_format: the server then renders the GGUF's own chat
        # template, the one the in-process generator's tokenizer uses.
        process = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1",
             "--port", str(port), "--model_alias", SERVED_NAME, "--n_ctx", "4096", "--n_threads", "2",
             "--n_threads_batch", "2"],
            stdout=log_file, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + LLAMA_SERVER_START_S
        while True:
            try:
                RemoteGenerator(f"openai:{url}", connect_timeout_s=1, read_timeout_s=5).load()
                break
            except ModelLoadError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"llama.cpp's server did not start: {log_path.read_text(errors='replace')[-2000:]}")
                time.sleep(1)
        yield url
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(15)
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.slow
def test_llama_cpp_server_drafts_cited_answers_and_refusals(llama_server, tmp_path):
    shutil.copytree(SEEDS, tmp_path / "seeds")
    name = f"openai:{llama_server}"
    assistant = Assistant(config.load(root=tmp_path, config_file=tmp_path / "none.toml", model=name),
                          progress=False)
    assert isinstance(assistant.generator, RemoteGenerator)
    assistant.warm_up()
    assert assistant.generator.served_model == SERVED_NAME
    articles = {a.doc_id: a.text for a in load_corpus(SEEDS, 2_000_000)[0]}

    answer = assistant.ask("What net AI talent inflow did Japan record in 2023 in the OECD survey?")
    assert not answer.refused, answer.notes
    assert "0.54" in answer.text and answer.model == name
    assert answer.citations and "004_8845b63d3c664428" in {c.doc_id for c in answer.citations}
    for c in answer.citations:
        assert articles[c.doc_id][c.start:c.end] == c.quote and f"[{c.marker}]" in answer.text

    refused = assistant.ask("Who won the 2022 FIFA World Cup?")
    assert refused.refused and refused.citations == ()

    # Stop closes the response; the server is free for the next question at once.
    stop = threading.Event()
    items = []
    for item in assistant.stream("Why do Korean AI researchers leave for the U.S.?", stop=stop):
        items.append(item)
        stop.set()
    assert "stopped by the user" in items[-1].notes and len(items) <= 3
    assert "0.54" in assistant.ask("What net AI talent inflow did Japan record in 2023 in the OECD survey?").text
