"""`rag serve`: an HTTP API over `rag.pipeline`, its own and OpenAI-compatible.

Its own endpoints give the Answer as `rag ask --json` prints it (`/v1/ask`,
and `/v1/ask/stream` as server-sent events: the draft, a status while an
answer is put into another language, then the checked Answer), list and add
articles. `/v1/chat/completions` and `/v1/models` speak
OpenAI's chat API, so the `openai` package, LangChain or Open WebUI can ask
the articles; the citations travel in an extra `citations` field.

Answers are written one at a time, in the order asked, across all endpoints
and models (as in the chat): each runs in its own thread so the event loop
keeps serving. Retrieval and the question's checks run first, so a bad
question gets a 4xx before any stream starts. This is, with the CLI and the
chat, a place where a RagError becomes one sentence: here a JSON body
`{"error": {"message": ...}}`; anything unexpected is logged and answered
with a generic sentence.
"""

# No `from __future__ import annotations`: FastAPI reads the request models
# defined inside build_app() from the handlers' evaluated annotations.
import argparse
import asyncio
import contextlib
import hmac
import json
import logging
import os
import re
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import config
from .app import GENERIC_ERROR, LOOPBACK_HOSTS, MAX_TOP_K, MAX_UPLOAD_FILES, Assistants
from .errors import BadInput, RagError
from .ingest import upload_name
from .types import Answer, Progress

if TYPE_CHECKING:  # fastapi is imported when the server is built; the CLI builds every parser
    from fastapi import FastAPI

    from .pipeline import Assistant
    from .types import Passage

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
TOKEN_VARIABLE = "RAG_API_TOKEN"
# A JSON request is a question or a chat history; a megabyte is hundreds of turns.
MAX_JSON_BYTES = 1_000_000
# Multipart framing around the uploaded files, on top of their own sizes.
UPLOAD_OVERHEAD_BYTES = 1_000_000
# A waiting stream gets an SSE comment this often, so proxies and clients
# with read timeouts do not drop a request that is queued behind others.
KEEPALIVE_S = 15.0
OWNER = "rag-news"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `rag serve`; keep imports here light (the CLI builds every parser)."""
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST})")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port to listen on (default {DEFAULT_PORT})")
    parser.add_argument("--model", help="model used when a request names none (default: the settings' model)")
    parser.add_argument("-k", "--top-k", type=int, help="passages given to the model when a request names no k")


# --- one answer at a time ------------------------------------------------------------

class _Turns:
    """A first-come-first-served lock: answers are written one at a time, in
    the order their requests reached it. Two at once would each run at half
    speed on two cores, and each model's Generator only locks itself, so two
    models could otherwise run together. A plain Lock would let a late
    request overtake ones that have waited longer."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._next_ticket = 0
        self._serving = 0

    @contextlib.contextmanager
    def turn(self) -> Iterator[None]:
        with self._cond:
            ticket = self._next_ticket
            self._next_ticket += 1
            self._cond.wait_for(lambda: self._serving == ticket)
        try:
            yield
        finally:
            with self._cond:
                self._serving += 1
                self._cond.notify_all()


class _Failed:
    """An exception raised in the answer thread, carried to the event loop."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


_END = object()


async def _answer_items(assistant: "Assistant", question: str, passages: "list[Passage]", turns: _Turns,
                        stop: threading.Event) -> AsyncIterator[str | Progress | Answer | None]:
    """The pipeline's stream (draft pieces, a Progress, then the Answer),
    written in a thread of its own; None every KEEPALIVE_S while nothing new
    arrives.

    Leaving the loop early (a client that went away) sets `stop`, which ends
    the generation at the next token, or skips it if it has not started.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()

    def put(item: object) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:  # the server is shutting down: nobody reads any more
            stop.set()

    def write() -> None:
        try:
            with turns.turn():
                if not stop.is_set():
                    for item in assistant.stream(question, stop=stop, passages=passages):
                        put(item)
        except BaseException as exc:  # noqa: BLE001 - the event loop decides how to report it
            put(_Failed(exc))
        finally:
            put(_END)

    threading.Thread(target=write, name="rag-answer", daemon=True).start()
    # One pending get() reused across keep-alive waits, so no item is lost to a timeout.
    getting = asyncio.ensure_future(queue.get())
    try:
        while True:
            done, _ = await asyncio.wait({getting}, timeout=KEEPALIVE_S)
            if not done:
                yield None
                continue
            item = getting.result()
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise item.exc
            getting = asyncio.ensure_future(queue.get())
            yield item
    finally:
        getting.cancel()
        stop.set()


# --- requests -> questions -----------------------------------------------------------

def _known_model(name: str, settings: config.Settings) -> str:
    """`name` if a request may use it: one of the project's own models or the
    one the server was started with. Never a model setting from the request
    such as "openai:<URL>": a client must not make the server call out."""
    from .models import MODELS

    allowed = sorted(set(MODELS) | {settings.model})
    if name not in allowed:
        raise BadInput(f"unknown model {name!r}; this server answers with: {', '.join(allowed)}")
    return name


def _message_text(content: Any) -> str:
    """The text of a chat message: a string, or OpenAI's list of content parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return " ".join(part.get("text", "") for part in content if isinstance(part, dict) and part.get("type") == "text")


def chat_question(messages: list[tuple[str, Any]]) -> str:
    """The question a chat history asks: its last user message, a follow-up
    rewritten into a standalone question the way the chat does it (each
    earlier user message rewritten in turn, so "And Japan?" then "What about
    2019?" both resolve). System and assistant messages are not used: the
    pipeline has its own prompt, and its answers are not evidence.

    >>> chat_question([("user", "What net AI talent inflow did Japan record in 2023?"), ("assistant", "…"),
    ...                ("user", "What about 2019?")])
    'What net AI talent inflow did Japan record in 2019?'
    """
    from .followup import rewrite

    asked: list[str] = []
    for role, content in messages:
        if role == "user":
            asked.append(rewrite(_message_text(content), asked))
    if not asked:
        raise BadInput("the messages hold no user message to answer")
    return asked[-1]


def _citations(answer: Answer) -> list[dict[str, Any]]:
    return [{"marker": c.marker, "doc_id": c.doc_id, "title": c.title, "quote": c.quote, "start": c.start,
             "end": c.end} for c in answer.citations]


def _pieces(text: str) -> list[str]:
    """`text` cut before each word, so the pieces join back to exactly `text`."""
    return [piece for piece in re.split(r"(?<=\s)(?=\S)", text) if piece]


def _sse(data: Any, event: str | None = None) -> str:
    """One server-sent event; JSON keeps the data on one line, as the framing requires."""
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return (f"event: {event}\n" if event else "") + f"data: {payload}\n\n"


_KEEPALIVE = ": keep-alive\n\n"  # an SSE comment: clients skip it


# --- errors as one sentence ------------------------------------------------------------

def _error_body(message: str, status: int, code: str | None = None) -> dict[str, Any]:
    # OpenAI's error shape, so its clients raise their usual exceptions with our sentence.
    kind = "server_error" if status >= 500 else "invalid_request_error"
    return {"error": {"message": message, "type": kind, "code": code}}


def _validation_sentence(errors: list[dict[str, Any]]) -> str:
    """One sentence for FastAPI's validation errors: the first problem, named
    by its field, with no echo of the input."""
    if not errors:
        return "the request is not valid"
    first = errors[0]
    kind = first.get("type", "")
    field = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
    message = str(first.get("msg", "is not valid"))
    message = message[0].lower() + message[1:] if message else message
    if kind == "json_invalid":
        return "the request body is not valid JSON"
    if not field:
        return "the request body must be a JSON object" if kind in ("model_attributes_type", "dict_type") \
            else f"the request body is not valid: {message}"
    if kind == "missing":
        return f"the field {field!r} is missing"
    if kind == "extra_forbidden":
        return f"unknown field {field!r}"
    return f"the field {field!r} is not valid: {message}"


def _status_sentence(status: int, detail: Any, method: str, path: str) -> str:
    if status == 404 and detail == "Not Found":
        return f"no such endpoint: {method} {path}"
    if status == 405:
        return f"{path} does not accept {method}"
    return str(detail)


class _BodyLimit:
    """Refuses a request body larger than its endpoint's limit before it is read
    (uploads: the files' limits; anything else: MAX_JSON_BYTES)."""

    def __init__(self, app: Any, upload_limit: int) -> None:
        self.app = app
        self.upload_limit = upload_limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] in ("POST", "PUT", "PATCH"):
            from fastapi.responses import JSONResponse

            headers = dict(scope["headers"])
            length, chunked = headers.get(b"content-length"), b"transfer-encoding" in headers
            limit = self.upload_limit if scope["path"].rstrip("/") == "/v1/articles" else MAX_JSON_BYTES
            refusal = None
            if length is None and chunked:
                refusal = 411, "send the request with a Content-Length header"
            elif length is not None and not length.isdigit():
                refusal = 400, "the Content-Length header is not a number"
            elif length is not None and int(length) > limit:
                refusal = 413, f"the request body is {int(length):,} bytes; the limit here is {limit:,} bytes"
            if refusal:
                await JSONResponse(_error_body(refusal[1], refusal[0]), refusal[0])(scope, receive, send)
                return
        await self.app(scope, receive, send)


# --- the app -------------------------------------------------------------------------

def build_app(settings: config.Settings, assistants: Assistants | None = None, token: str | None = None,
              ready: threading.Event | None = None) -> "FastAPI":
    """The HTTP API; `assistants` lets tests pass fakes for the models.

    With a `token`, every endpoint but /healthz needs `Authorization: Bearer
    <token>`. `ready` is set once the models are loaded (shown by /healthz).
    """
    from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
    from fastapi.concurrency import run_in_threadpool
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, StreamingResponse
    from pydantic import BaseModel, ConfigDict, Field
    from starlette.datastructures import UploadFile
    from starlette.exceptions import HTTPException as StarletteHTTPException

    assistants = assistants or Assistants(settings)
    ready = ready or threading.Event()
    turns = _Turns()
    started = int(time.time())
    app = FastAPI(title="rag-news", summary="Cited answers from news articles", docs_url="/docs",
                  redoc_url=None)

    # --- errors
    def error(status: int, message: str, code: str | None = None, headers: dict | None = None) -> JSONResponse:
        return JSONResponse(_error_body(message, status, code), status, headers=headers)

    @app.exception_handler(BadInput)
    async def on_bad_input(request: Request, exc: BadInput) -> JSONResponse:
        return error(400, str(exc))

    @app.exception_handler(RagError)
    async def on_rag_error(request: Request, exc: RagError) -> JSONResponse:
        return error(500, str(exc))  # the server's own problem (a missing model, a damaged index), said plainly

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error(400, _validation_sentence(list(exc.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = _status_sentence(exc.status_code, exc.detail, request.method, request.url.path)
        return error(exc.status_code, message, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error serving %s %s", request.method, request.url.path, exc_info=exc)
        return error(500, GENERIC_ERROR)

    def check_token(request: Request) -> None:
        if token is None:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        # compare_digest takes as long for a near miss as for a wild guess.
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            raise HTTPException(401, f"this server needs its API token: send 'Authorization: Bearer <token>' "
                                     f"with the value of {TOKEN_VARIABLE}", headers={"WWW-Authenticate": "Bearer"})

    api = APIRouter(prefix="/v1", dependencies=[Depends(check_token)])

    # --- answering
    def prepare(question: str, model: str | None, k: int | None) -> "tuple[Assistant, list[Passage]]":
        """Pick the assistant and retrieve; raises BadInput for a bad question
        before anything is streamed. Runs in a worker thread (first use loads
        the index and the embedder)."""
        assistant = assistants.get(_known_model(model, settings) if model else None, k)
        return assistant, assistant.retrieve(question)

    async def answer_of(assistant: "Assistant", question: str, passages: "list[Passage]") -> Answer:
        items = _answer_items(assistant, question, passages, turns, threading.Event())
        async with contextlib.aclosing(items):
            async for item in items:
                if isinstance(item, Answer):
                    return item
        raise AssertionError("the answer stream ended without an Answer")

    def event_stream(events: AsyncIterator[str]) -> StreamingResponse:
        # no-cache and no proxy buffering, so each event reaches the client as it is written
        return StreamingResponse(events, media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    class AskRequest(BaseModel):
        model_config = ConfigDict(extra="forbid", protected_namespaces=())
        question: str
        k: int | None = Field(None, ge=1, le=MAX_TOP_K)
        model: str | None = None

    @api.post("/ask")
    async def ask(body: AskRequest) -> JSONResponse:
        assistant, passages = await run_in_threadpool(prepare, body.question, body.model, body.k)
        answer = await answer_of(assistant, body.question, passages)
        return JSONResponse(answer.to_dict())

    @api.post("/ask/stream")
    async def ask_stream(body: AskRequest) -> StreamingResponse:
        assistant, passages = await run_in_threadpool(prepare, body.question, body.model, body.k)

        async def events() -> AsyncIterator[str]:
            try:
                async for item in _answer_items(assistant, body.question, passages, turns, threading.Event()):
                    if item is None:
                        yield _KEEPALIVE
                    elif isinstance(item, Answer):
                        yield _sse(item.to_dict(), "answer")
                    elif isinstance(item, Progress):
                        yield _sse({"status": item.status}, "status")
                    else:
                        yield _sse({"text": item}, "draft")
            except Exception as exc:  # noqa: BLE001 - the status line is sent: report it as an event
                yield _sse(_error_body(*_sentence_and_status(exc)), "error")

        return event_stream(events())

    # --- OpenAI's chat API
    class ChatMessage(BaseModel):
        model_config = ConfigDict(extra="allow")
        role: str
        content: str | list[dict[str, Any]] | None = None

    class ChatRequest(BaseModel):
        # Clients send temperature, max_tokens, stream_options and more; the
        # pipeline decides those itself, so they are accepted and not used.
        model_config = ConfigDict(extra="allow", protected_namespaces=())
        model: str
        messages: list[ChatMessage] = Field(min_length=1)
        stream: bool | None = False
        n: int | None = Field(None, ge=1, le=1)  # one answer per request

    def completion_base(model: str) -> dict[str, Any]:
        return {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time()), "model": model,
                "system_fingerprint": None}

    @api.post("/chat/completions")
    async def chat_completions(body: ChatRequest) -> Any:
        model = _known_model(body.model, settings)
        question = chat_question([(m.role, m.content) for m in body.messages])
        assistant, passages = await run_in_threadpool(prepare, question, model, None)
        base = completion_base(model)
        if not body.stream:
            answer = await answer_of(assistant, question, passages)
            return JSONResponse({
                **base, "object": "chat.completion",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": answer.text, "refusal": None},
                             "logprobs": None, "finish_reason": "stop"}],
                "usage": None,
                # Extra fields: OpenAI clients keep them (`response.citations` in the openai package).
                "citations": _citations(answer), "refused": answer.refused, "question": answer.question})

        def chunk(delta: dict[str, Any], finish_reason: str | None = None, **extra: Any) -> str:
            return _sse({**base, "object": "chat.completion.chunk",
                         "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
                         **extra})

        async def events() -> AsyncIterator[str]:
            # What the stream sends: only the checked answer. An OpenAI client
            # joins the deltas into the message and cannot take text back, but
            # cite.py may drop draft sentences it cannot support and renumber
            # the [n] markers, so a streamed draft would leave the client
            # with unchecked claims. The role chunk goes out at once, keep-
            # alive comments while the answer is written (or queued), then the
            # checked text in word pieces, then a last chunk with the
            # citations. /v1/ask/stream is the place for the live draft.
            yield chunk({"role": "assistant", "content": ""})
            try:
                answer = None
                async for item in _answer_items(assistant, question, passages, turns, threading.Event()):
                    if item is None:
                        yield _KEEPALIVE
                    elif isinstance(item, Answer):
                        answer = item
                if answer is None:
                    raise AssertionError("the answer stream ended without an Answer")
            except Exception as exc:  # noqa: BLE001 - the openai package raises APIError on this chunk
                yield _sse(_error_body(*_sentence_and_status(exc)))
                return
            for piece in _pieces(answer.text):
                yield chunk({"content": piece})
            yield chunk({}, "stop", citations=_citations(answer), refused=answer.refused, question=answer.question)
            yield _sse("[DONE]")

        return event_stream(events())

    def model_card() -> dict[str, Any]:
        return {"id": settings.model, "object": "model", "created": started, "owned_by": OWNER}

    @api.get("/models")
    async def list_models() -> dict[str, Any]:
        return {"object": "list", "data": [model_card()]}

    @api.get("/models/{model_id}")
    async def get_model(model_id: str) -> Any:
        if model_id != settings.model:
            return error(404, f"no model {model_id!r} here; this server lists {settings.model!r}",
                         "model_not_found")
        return model_card()

    # --- articles
    @api.get("/articles")
    async def list_articles() -> dict[str, Any]:
        titles = await run_in_threadpool(assistants.articles)
        return {"articles": [{"doc_id": doc_id, "title": titles[doc_id]} for doc_id in sorted(titles)]}

    @api.post("/articles")
    async def add_articles(request: Request) -> dict[str, Any]:
        """Multipart upload, field `files` (repeated): checked and indexed as `rag add` does."""
        try:
            form = await request.form(max_files=MAX_UPLOAD_FILES, max_fields=MAX_UPLOAD_FILES)
        except StarletteHTTPException as exc:  # the parser's limits, in two sentences: "Too many files. Maximum…"
            parts = str(exc.detail).strip().rstrip(".").split(". ")
            raise BadInput("the upload cannot be read: " + "; ".join(p[:1].lower() + p[1:] for p in parts)) from None
        try:
            uploads = form.getlist("files")
            if not uploads or not all(isinstance(u, UploadFile) for u in uploads):
                raise BadInput("send the articles as files in the multipart form field 'files'")
            names = [upload_name(u.filename) for u in uploads]
            if len(set(names)) < len(names):
                raise BadInput("two of the files have the same name; a file's name is its document id")
            for upload, name in zip(uploads, names):
                if upload.size is not None and upload.size > settings.max_article_bytes:
                    raise HTTPException(413, f"{name} is {upload.size:,} bytes; articles are limited to "
                                             f"{settings.max_article_bytes:,} bytes")
            with tempfile.TemporaryDirectory(prefix="rag-upload-") as folder:
                # Saved under their own names first: a file's stem is its
                # document id, and Assistant.add checks every file before
                # copying any into the article folder.
                paths = []
                for upload, name in zip(uploads, names):
                    path = Path(folder) / name
                    with path.open("wb") as out:
                        await run_in_threadpool(shutil.copyfileobj, upload.file, out)
                    paths.append(path)
                message = await run_in_threadpool(assistants.add, paths)
        finally:
            await form.close()
        return {"added": [Path(name).stem for name in names], "message": message}

    app.include_router(api)

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        """Unauthenticated, so a supervisor can probe it; says nothing about the articles."""
        return {"status": "ok", "model": settings.model, "ready": ready.is_set()}

    upload_limit = MAX_UPLOAD_FILES * settings.max_article_bytes + UPLOAD_OVERHEAD_BYTES
    app.add_middleware(_BodyLimit, upload_limit=upload_limit)
    return app


def _sentence_and_status(exc: BaseException) -> tuple[str, int]:
    """What a client reads for an exception once a stream has begun."""
    if isinstance(exc, BadInput):
        return str(exc), 400
    if isinstance(exc, RagError):
        return str(exc), 500
    log.error("unexpected error in an answer stream", exc_info=exc)
    return GENERIC_ERROR, 500


# --- serving ---------------------------------------------------------------------------

def _listen(host: str, port: int) -> socket.socket:
    """A socket bound to host:port, or a RagError saying why not (uvicorn
    would only log the error and exit)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError:
        raise RagError(f"cannot listen on {host}:{port} (in use, or not an address of this machine) "
                       "— pick another with --host or --port") from None
    return sock


def main(args: argparse.Namespace, settings: config.Settings) -> int:
    """Serve the API until Ctrl+C; the default model loads while the first client connects."""
    import uvicorn

    token = os.environ.get(TOKEN_VARIABLE) or None  # read here, never at import
    if args.host not in LOOPBACK_HOSTS:
        log.warning("rag serve listens on %s: anyone who can reach this address can %s; use the default "
                    "127.0.0.1 unless that is what you want", args.host,
                    "ask questions and upload articles (set RAG_API_TOKEN to require a token)" if token is None
                    else "try tokens against it")
    assistants = Assistants(settings)
    ready = threading.Event()
    app = build_app(settings, assistants, token=token, ready=ready)
    sock = _listen(args.host, args.port)

    def warm_up() -> None:
        try:
            assistants.get().warm_up()
            ready.set()
        except Exception as exc:  # noqa: BLE001 - the first question reports it to its client
            log.warning("could not load the model ahead of the first question: %s", exc)

    threading.Thread(target=warm_up, name="warm-up", daemon=True).start()
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"rag serve: listening on http://{shown}:{port}/ (Ctrl+C stops){'; token required' if token else ''}",
          flush=True)
    verbose = bool(getattr(args, "verbose", False))
    server = uvicorn.Server(uvicorn.Config(app, log_level="info" if verbose else "warning", access_log=verbose,
                                           timeout_graceful_shutdown=5))
    server.run(sockets=[sock])
    return 0
