"""Chat messages -> draft answer text, streamed from a serving engine over HTTP.

Speaks the OpenAI chat-completions protocol, which vLLM, llama.cpp's server,
Ollama and TGI all serve, so the writing of the draft can move to another
process or machine. Only the writing moves: retrieval, the prompt and every
check of the draft stay in this project, exactly as with the in-process
`generate.Generator`. A model setting names such a server as

    openai:<base URL>[#<served model>]

e.g. `openai:http://127.0.0.1:8080/v1` (the server's first listed model) or
`openai:http://127.0.0.1:11434/v1#qwen2.5-coder:1.5b` (that model). The
fragment is never sent to a server anyway, so it is free to name the model.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from .errors import ConfigError, ModelLoadError, RagError

log = logging.getLogger(__name__)

PREFIX = "openai:"
EXAMPLE = "openai:http://127.0.0.1:8080/v1"
API_KEY_ENV = "RAG_GENERATOR_API_KEY"  # read by generate.make_generator, never at import

# Connecting is local or near: a server that takes longer is not there.
CONNECT_TIMEOUT_S = 5.0
# The longest wait for the next bytes of an answer. The first ones come after
# the prefill, which on a busy 2-core server can take tens of seconds.
READ_TIMEOUT_S = 120.0


def is_remote(name: str) -> bool:
    """Whether a model setting names a serving engine rather than a packaged model."""
    return name.startswith(PREFIX)


@dataclass(frozen=True)
class RemoteSpec:
    """A parsed `openai:` model setting."""

    base_url: str  # e.g. "http://127.0.0.1:8080/v1", no trailing slash
    model: str | None  # the served model to ask for; None: the first one the server lists


def parse_spec(name: str) -> RemoteSpec:
    """The base URL and served model of an `openai:` model setting.

    >>> parse_spec("openai:http://127.0.0.1:8080/v1/#qwen")
    RemoteSpec(base_url='http://127.0.0.1:8080/v1', model='qwen')

    Raises ConfigError naming the bad value and the expected form.
    """
    if not is_remote(name):
        raise ConfigError(f"model {name!r} does not name a server; write it as {EXAMPLE}")
    url = name[len(PREFIX):]
    form = f"write it as {EXAMPLE} (optionally #<served model>)"
    if not url.strip():
        raise ConfigError(f"model {name!r} lacks the server's URL; {form}")
    if url != url.strip() or any(c.isspace() for c in url):
        raise ConfigError(f"model {name!r}: the URL must not contain spaces; {form}")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError as exc:
        raise ConfigError(f"model {name!r} has a bad URL ({exc}); {form}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"model {name!r} needs an http:// or https:// URL with a host; {form}")
    if parts.query:
        raise ConfigError(f"model {name!r}: the URL must not have a query string; {form}")
    if "#" in url and not parts.fragment.strip():
        raise ConfigError(f"model {name!r} has an empty model name after '#'; {form}")
    base = parts._replace(fragment="").geturl().rstrip("/")
    return RemoteSpec(base_url=base, model=parts.fragment.strip() or None)


class RemoteGenerator:
    """Drafts written by an OpenAI-compatible server, greedy and bounded as in-process ones.

    >>> g = RemoteGenerator("openai:http://127.0.0.1:8080/v1")   # cheap: nothing is contacted
    >>> "".join(g.stream([{"role": "user", "content": "Hi"}]))   # checks the server, then answers
    """

    def __init__(self, name: str, max_new_tokens: int = 160, api_key: str | None = None,
                 connect_timeout_s: float = CONNECT_TIMEOUT_S, read_timeout_s: float = READ_TIMEOUT_S) -> None:
        self.spec = parse_spec(name)  # ConfigError before anything is contacted
        self.name = name  # what Answer.model says: the setting as written
        self.base_url = self.spec.base_url
        self.max_new_tokens = max_new_tokens
        self.served_model: str | None = None  # known after `load`
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._timeout = httpx.Timeout(read_timeout_s, connect=connect_timeout_s)
        self._client: httpx.Client | None = None
        self._load_lock = threading.Lock()
        # The pipeline promises one generation at a time per process, as with
        # the in-process model; a shared server queues other users itself.
        self._generate_lock = threading.Lock()

    def load(self) -> None:
        """Check that the server answers and pick the served model.

        Raises ModelLoadError in one sentence naming the URL when the server
        cannot be reached, times out, refuses, answers with something that is
        not a model list, or does not serve the model the setting names.
        """
        with self._load_lock:
            if self.served_model is not None:
                return
            if self._client is None:  # kept across a failed check, so a retry reuses it
                self._client = httpx.Client(headers=self._headers, timeout=self._timeout)
            url = f"{self.base_url}/models"
            try:
                response = self._client.get(url)
            except httpx.ConnectError:
                raise ModelLoadError(f"cannot reach the generator server at {self.base_url} — start it "
                                     f"(see the README's 'Generation on a serving engine') or fix the URL") from None
            except httpx.TimeoutException:
                raise ModelLoadError(f"the generator server at {self.base_url} did not answer GET /models within "
                                     f"{self._timeout.read:g} s") from None
            except httpx.HTTPError as exc:
                raise ModelLoadError(f"cannot talk to the generator server at {self.base_url}: {exc}") from None
            if response.status_code in (401, 403):
                raise ModelLoadError(f"the generator server at {self.base_url} refused the request "
                                     f"(HTTP {response.status_code}) — set {API_KEY_ENV} to its API key")
            if not response.is_success:
                raise ModelLoadError(f"the generator server at {self.base_url} answered HTTP {response.status_code} "
                                     f"to GET {url} — is this its OpenAI-compatible base URL (usually .../v1)?")
            served = _model_ids(response)
            if served is None:
                raise ModelLoadError(f"the server at {self.base_url} does not speak the OpenAI API: GET {url} did "
                                     f"not return a model list")
            if self.spec.model is not None and self.spec.model not in served:
                raise ModelLoadError(f"the generator server at {self.base_url} does not serve "
                                     f"{self.spec.model!r}; it serves: {', '.join(served) or 'nothing'}")
            if not served and self.spec.model is None:
                raise ModelLoadError(f"the generator server at {self.base_url} lists no model; name one as "
                                     f"{PREFIX}{self.base_url}#<model>")
            self.served_model = self.spec.model or served[0]
            log.info("generating with %s at %s", self.served_model, self.base_url)

    def stream(self, messages: list[dict[str, str]], stop: threading.Event | None = None) -> Iterator[str]:
        """Yield pieces of the server's reply to `messages` as they arrive.

        Setting `stop` ends the answer after the piece in hand and closes the
        response, which tells the server to stop decoding. Raises RagError in
        one sentence when the server fails mid-way.
        """
        self.load()
        assert self._client is not None
        body = {
            "model": self.served_model,
            "messages": messages,
            "stream": True,
            "max_tokens": self.max_new_tokens,
            # Greedy, as the in-process generator decodes, so both write the same draft.
            "temperature": 0,
            "top_p": 1,
            "frequency_penalty": 0,
            "presence_penalty": 0,
            # Not OpenAI's: llama-cpp-python's server applies a repeat penalty
            # of 1.1 even at temperature 0, which makes an answer that repeats
            # a figure from the question differ from greedy decoding.
            # llama.cpp's own server reads it too; vLLM and Ollama ignore it.
            "repeat_penalty": 1.0,
        }
        with self._generate_lock:
            if stop is not None and stop.is_set():
                return  # stopped while waiting for the lock: nothing to ask
            started = time.perf_counter()
            first_s = None
            pieces = 0
            finish = None
            try:
                with self._client.stream("POST", f"{self.base_url}/chat/completions", json=body) as response:
                    if not response.is_success:
                        response.read()
                        raise RagError(f"the generator server at {self.base_url} answered HTTP "
                                       f"{response.status_code}: {_error_text(response)}")
                    for data in _sse_data(response.iter_lines()):
                        if data.strip() == "[DONE]":
                            finish = finish or "done"
                            break
                        piece, finish = _delta(data, self.base_url, finish)
                        if piece:
                            if first_s is None:
                                first_s = time.perf_counter() - started
                            pieces += 1
                            yield piece
                        if stop is not None and stop.is_set():
                            finish = "stopped"
                            break  # leaving the block closes the response
                    if finish is None:
                        raise RagError(f"the generator server at {self.base_url} closed the answer half-way")
            except httpx.ConnectError:
                raise RagError(f"cannot reach the generator server at {self.base_url} any more — is it "
                               f"still running?") from None
            except httpx.TimeoutException:
                raise RagError(f"the generator server at {self.base_url} sent nothing for "
                               f"{self._timeout.read:g} s") from None
            except httpx.HTTPError as exc:
                raise RagError(f"the generator server at {self.base_url} failed mid-answer: {exc}") from None
            finally:
                log.info("%s wrote %d pieces in %.2f s (first after %s, end: %s)", self.served_model, pieces,
                         time.perf_counter() - started, f"{first_s:.2f} s" if first_s is not None else "-", finish)


def _model_ids(response: httpx.Response) -> list[str] | None:
    """The `id`s of an OpenAI model list, or None when the body is not one."""
    try:
        data = response.json()["data"]
        return [str(m["id"]) for m in data]
    except (ValueError, KeyError, TypeError):
        return None


def _sse_data(lines: Iterable[str]) -> Iterator[str]:
    """The data of each server-sent event: its `data:` lines joined; comments and other fields skipped."""
    buffer: list[str] = []
    for line in lines:
        if not line:  # a blank line ends an event
            if buffer:
                yield "\n".join(buffer)
                buffer = []
        elif line.startswith("data:"):
            value = line[5:]
            buffer.append(value[1:] if value.startswith(" ") else value)
    if buffer:
        yield "\n".join(buffer)


def _delta(data: str, base_url: str, finish: str | None) -> tuple[str, str | None]:
    """(the content piece, the finish reason so far) of one streamed chunk; RagError for anything else."""
    try:
        chunk = json.loads(data)
    except ValueError:
        raise RagError(f"the generator server at {base_url} sent something that is not JSON "
                       f"mid-answer: {data[:80]!r}") from None
    if isinstance(chunk, dict) and chunk.get("error"):
        error = chunk["error"]
        raise RagError(f"the generator server at {base_url} failed mid-answer: "
                       f"{error.get('message', error) if isinstance(error, dict) else error}")
    try:
        choices = chunk["choices"]
        if not choices:  # a usage-only chunk
            return "", finish
        choice = choices[0]
        content = (choice.get("delta") or {}).get("content") or ""
        if not isinstance(content, str):
            raise TypeError(content)
        return content, choice.get("finish_reason") or finish
    except (KeyError, TypeError, AttributeError, IndexError):
        raise RagError(f"the generator server at {base_url} sent a chunk that is not a chat completion: "
                       f"{data[:80]!r}") from None


def _error_text(response: httpx.Response) -> str:
    """The message of an error response: OpenAI's `error.message`, FastAPI's `detail`, or the text."""
    try:
        body = response.json()
    except ValueError:
        return " ".join(response.text.split())[:200] or response.reason_phrase
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:200]
        if error or body.get("detail") or body.get("message"):
            return str(error or body.get("detail") or body.get("message"))[:200]
    return str(body)[:200]
