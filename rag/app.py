"""`rag chat`: the browser chat, a thin Gradio shell over `rag.pipeline`.

A question runs in two queued steps. The first rewrites a follow-up, retrieves
and shows the passages at once (several tabs may do this together); the
second writes the answer, one at a time across all tabs (Gradio's queue,
`concurrency_limit=1`), streaming the draft and then replacing it with the
checked Answer. Two answers at once would only halve each one's speed on two
cores; the queue shows a waiting tab its place, and the generator's own lock
stays as a second guard. How the page looks lives in `view.py`.

This is one of the two places (with the CLI) where a RagError becomes one
sentence for the user; anything else is logged and shown as a generic one.
"""

import argparse
import dataclasses
import logging
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import config
from .errors import BadInput, RagError
from .ingest import upload_name

# No `from __future__ import annotations` here: Gradio finds the `gr.Request`
# parameter of a handler by its evaluated annotation.
if TYPE_CHECKING:  # gradio and the models are heavy; the CLI builds every parser
    import gradio as gr

    from .types import DraftGenerator
    from .pipeline import Assistant
    from .view import Turn

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
EXAMPLES = (
    "How many AI patents per 100,000 people did Korea have in 2022?",
    "What net AI talent inflow did Japan record in 2023 in the OECD survey?",
    "How much money did the EU allocate in February to attract foreign AI researchers?",
    "Who was nominated as the Minister of Science and ICT candidate?",
    "2022년 한국의 인구 10만 명당 AI 특허 수는 몇 건이었나요?",  # answered in Korean
)
MODEL_LABELS = {
    "qwen2.5-coder-1.5b": "qwen2.5-coder-1.5b (accurate, default)",
    "qwen2.5-coder-0.5b": "qwen2.5-coder-0.5b (fast)",
}
# The answer's language: the question's own by default (a Korean question is
# answered in Korean), or one chosen for every answer.
ANSWER_LANGUAGES = [("Same as the question", ""), ("English", "English"), ("Korean", "Korean"),
                    ("Japanese", "Japanese"), ("Chinese", "Chinese")]
MAX_TOP_K = 10  # more passages than this make the prompt too slow to prefill on 2 cores
# Uploads at once: enough for a day's articles, few enough that one request
# cannot make the server copy and embed thousands of files.
MAX_UPLOAD_FILES = 100
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
GENERIC_ERROR = "Something went wrong on the server; the details are in its log."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `rag chat`; keep imports here light (the CLI builds every parser)."""
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST})")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port to listen on (default {DEFAULT_PORT})")
    parser.add_argument("--model", help="model selected when the page opens (default: the settings' model); "
                                         "openai:URL[#MODEL] drafts on a serving engine")
    parser.add_argument("-k", "--top-k", type=int, help="passages given to the model, as first selected")


# --- assistants -----------------------------------------------------------------

class Assistants:
    """One Assistant per (model, k), created on first use.

    All share one embedder, and those of one model share its generator, so a
    model is loaded once however many k values are tried. Each keeps its own
    retriever; after an article is added, every one is brought up to date.
    """

    def __init__(self, settings: config.Settings, embedder: Any = None,
                 generator_for: "Callable[[str], DraftGenerator] | None" = None) -> None:
        from .embed import Embedder

        self.settings = settings
        self._embedder = embedder or Embedder()
        self._generator_for = generator_for
        self._generators: dict[str, DraftGenerator] = {}
        self._assistants: dict[tuple[str, int], Assistant] = {}
        self._lock = threading.Lock()

    def get(self, model: str | None = None, k: int | None = None) -> "Assistant":
        from .generate import check_model_name
        from .pipeline import Assistant

        model, k = model or self.settings.model, int(k or self.settings.top_k)
        check_model_name(model)  # an unknown name or bad openai: URL fails here, whatever generator tests pass in
        if model.startswith("openai:") and model != self.settings.model:
            # A page's visitor must not make this server send requests to URLs of their choosing.
            raise BadInput(f"model {model!r} is not offered here; the served model is set in the settings")
        with self._lock:
            key = (model, k)
            if key not in self._assistants:
                generator = self._generators.get(model)
                if generator is None and self._generator_for is not None:
                    generator = self._generator_for(model)
                settings = dataclasses.replace(self.settings, model=model, top_k=k,
                                               candidates_k=max(self.settings.candidates_k, k))
                assistant = Assistant(settings, embedder=self._embedder, generator=generator, progress=False)
                self._generators[model] = assistant.generator  # built lazily: nothing loads yet
                self._assistants[key] = assistant
            return self._assistants[key]

    def add(self, paths: list[Path]) -> str:
        """Add article files through one assistant, then refresh the others' retrievers."""
        first = self.get()
        message = first.add(paths)
        with self._lock:
            others = [a for a in self._assistants.values() if a is not first]
        for assistant in others:
            assistant.index()  # the index on disk is current: this only loads it
        return message

    def articles(self) -> dict[str, str]:
        return self.get().articles()


# --- what the page does -----------------------------------------------------------

class Chat:
    """The page's event handlers, free of Gradio layout so tests can call them."""

    def __init__(self, assistants: Assistants) -> None:
        from .view import ArticleShelf

        self.assistants = assistants
        s = assistants.settings
        self.shelf = ArticleShelf(s.seeds_dir, s.max_article_bytes)
        self._stops: dict[str, threading.Event] = {}  # session -> the stop event of its current question
        self._stops_lock = threading.Lock()

    def render(self, turns: "list[Turn]") -> str:
        from .view import render_chat

        return render_chat(turns, self.shelf)

    def start(self, message: str, turns: "list[Turn]", model: str, k: float, session: str,
              language: str = "") -> "list[Turn]":
        """Step 1: rewrite a follow-up, retrieve, and add the question with its passages."""
        from .followup import rewrite
        from .view import Turn

        turns = list(turns or [])
        question = " ".join((message or "").split())
        k = min(max(int(k), 1), MAX_TOP_K)  # the API takes any number, the slider does not
        turn = Turn(question=question, asked=question, model=model, top_k=k, language=language or "")
        with self._stops_lock:
            self._stops[session] = threading.Event()
        turns.append(turn)
        try:
            if not question:
                raise BadInput("the question is empty — ask something about the articles")
            turn.asked = rewrite(question, [t.asked for t in turns[:-1] if not t.error])
            turn.passages = tuple(self.assistants.get(model, k).retrieve(turn.asked))
            turn.status = "Waiting for the model…"
        except Exception as exc:  # noqa: BLE001 - shown as one sentence, never a traceback
            turn.error = _one_sentence(exc)
        return turns

    def answer(self, turns: "list[Turn]", session: str) -> "Iterator[list[Turn]]":
        """Step 2: stream the draft of the last question, then its checked Answer."""
        from .types import Answer, Progress

        with self._stops_lock:
            stop = self._stops.setdefault(session, threading.Event())
        try:
            if not turns or turns[-1].done:  # step 1 failed: nothing to answer
                yield turns
                return
            turn = turns[-1]
            if stop.is_set():  # Stop was pressed while the question waited for the model
                turn.stopped, turn.status = True, ""
                yield turns
                return
            turn.status = "Reading the passages…"
            yield turns
            try:
                assistant = self.assistants.get(turn.model, turn.top_k)
                for item in assistant.stream(turn.asked, stop=stop, passages=list(turn.passages),
                                             language=turn.language):
                    if isinstance(item, Answer):
                        turn.answer, turn.status = item, ""
                    elif isinstance(item, Progress):
                        turn.status = item.status
                    else:
                        turn.draft += item
                        turn.status = "Writing…"
                    yield turns
                if turn.answer is None:  # the stream always ends with an Answer; never leave a turn spinning
                    raise AssertionError("the answer stream ended without an Answer")
            except Exception as exc:  # noqa: BLE001 - shown as one sentence, never a traceback
                turn.error, turn.status = _one_sentence(exc), ""
                yield turns
        finally:
            with self._stops_lock:
                if self._stops.get(session) is stop:
                    del self._stops[session]

    def stop(self, session: str) -> None:
        """Stop button: ends the session's answer at the next token (or before it starts)."""
        with self._stops_lock:
            event = self._stops.get(session)
        if event is not None:
            event.set()

    def add_articles(self, files: list[str] | None) -> str:
        """Index uploaded files; returns a one-sentence result for the page."""
        if not files:
            return ""
        if len(files) > MAX_UPLOAD_FILES:
            raise BadInput(f"{len(files):,} files at once; upload at most {MAX_UPLOAD_FILES} at a time")
        with tempfile.TemporaryDirectory(prefix="rag-upload-") as folder:
            # Uploads arrive under a temporary path; the article's document id
            # is its file stem, so each is copied under its own name first.
            # Gradio cuts a name to its base; upload_name refuses what `rag serve`
            # refuses too (a hidden name, control characters).
            paths = []
            for upload in files:
                source = Path(upload)
                target = Path(folder) / upload_name(source.name)
                if target.exists():
                    raise BadInput(f"two of the files are named {source.name}; a file's name is its document id")
                shutil.copyfile(source, target)
                paths.append(target)
            self.assistants.add(paths)
        names = ", ".join(p.stem for p in paths)
        return f"Added {names}."

    def articles_html(self) -> str:
        from .view import render_articles

        try:
            return render_articles(self.assistants.articles(), self.shelf)
        except Exception as exc:  # noqa: BLE001
            return f'<div class="rag-articles error">{_escape(_one_sentence(exc))}</div>'


def _one_sentence(exc: BaseException) -> str:
    """What the user reads for an exception: the project's own message, or a generic one."""
    if isinstance(exc, RagError):
        text = str(exc).strip() or exc.__class__.__name__
        # A sentence starts with a capital, unless it starts with a file name ("photo.txt looks binary").
        first = text.split(" ", 1)[0]
        return text[0].upper() + text[1:] if first.isalpha() and first.islower() else text
    log.error("unexpected error in the chat app", exc_info=exc)
    return GENERIC_ERROR


def _escape(text: str) -> str:
    import html

    return html.escape(text)


# --- the page -----------------------------------------------------------------------

def build_app(settings: config.Settings, assistants: Assistants | None = None) -> "gr.Blocks":
    """The chat page; `assistants` lets tests pass fakes for the models."""
    import gradio as gr

    from .models import MODELS
    from .view import ARTICLES_CSS, CHAT_CSS, CHIP_JS

    chat = Chat(assistants or Assistants(settings))
    # A served model (openai:URL) set in the settings is offered beside the packaged ones.
    names = list(MODELS) + ([settings.model] if settings.model not in MODELS else [])
    model_choices = [(MODEL_LABELS.get(name, name), name) for name in names]

    with gr.Blocks(title="rag-news chat", analytics_enabled=False) as demo:
        turns = gr.State([])
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=420):
                gr.Markdown("## Ask the news articles")
                transcript = gr.HTML(chat.render([]), css_template=CHAT_CSS, js_on_load=CHIP_JS,
                                     autoscroll=True, max_height=680, min_height=320, elem_id="transcript",
                                     padding=True, container=True)
                with gr.Column(visible=True) as examples_box:
                    gr.Markdown("Try one:", elem_id="examples-label")
                    example_buttons = [gr.Button(q, size="sm", variant="secondary", elem_classes="example")
                                       for q in EXAMPLES]
                with gr.Row():
                    question = gr.Textbox(placeholder="Ask about the articles… (follow-ups like “And Japan?” work)",
                                          show_label=False, scale=6, lines=1, max_lines=4, autofocus=True,
                                          elem_id="question", submit_btn=False)
                    send = gr.Button("Ask", variant="primary", scale=1, min_width=80, elem_id="ask")
                    stop = gr.Button("Stop", variant="stop", scale=1, min_width=80, interactive=False,
                                     elem_id="stop")
                clear = gr.Button("New chat", size="sm", variant="secondary")
            with gr.Column(scale=2, min_width=300):
                with gr.Accordion("Settings", open=True):
                    model = gr.Dropdown(model_choices, value=settings.model, label="Model")
                    top_k = gr.Slider(1, MAX_TOP_K, value=min(settings.top_k, MAX_TOP_K), step=1,
                                      label="Passages given to the model (k)")
                    languages = list(ANSWER_LANGUAGES)
                    if settings.answer_language not in dict(ANSWER_LANGUAGES).values():  # a language set in rag.toml
                        languages.append((settings.answer_language, settings.answer_language))
                    language = gr.Dropdown(languages, value=settings.answer_language,
                                           label="Answer language", elem_id="answer-language")
                with gr.Accordion("Add article", open=True):
                    upload = gr.File(label=".txt or .md files", file_count="multiple",
                                     file_types=[".txt", ".md"], elem_id="upload")
                    upload_status = gr.Markdown(elem_id="upload-status")
                with gr.Accordion("Articles in the index", open=True):
                    articles = gr.HTML(css_template=ARTICLES_CSS, js_on_load=None, elem_id="articles")

        def on_start(message: str, state: list, model_name: str, k: float, answer_language: str,
                     request: gr.Request):
            state = chat.start(message, state, model_name, k, _session(request), answer_language)
            busy = state[-1].error == ""
            return (chat.render(state), state, gr.Textbox(value="" if busy else message, interactive=not busy),
                    gr.Button(interactive=not busy), gr.Button(interactive=busy), gr.Column(visible=False))

        def on_answer(state: list, request: gr.Request):
            for latest in chat.answer(state, _session(request)):
                yield chat.render(latest), latest

        def on_idle():
            return gr.Textbox(interactive=True), gr.Button(interactive=True), gr.Button(interactive=False)

        start_outputs = [transcript, turns, question, send, stop, examples_box]
        idle_outputs = [question, send, stop]

        def wire(event, first_step: Callable, inputs: list, name: str | None) -> None:
            # Retrieval is quick and may run for several tabs at once; writing
            # shares one slot across every trigger (concurrency_id).
            visibility = "public" if name else "private"
            event(first_step, inputs, start_outputs, api_name=name, api_visibility=visibility,
                  concurrency_limit=4, concurrency_id="retrieve", show_progress="minimal") \
                .then(on_answer, [turns], [transcript, turns], api_name="answer" if name else None,
                      api_visibility=visibility, concurrency_limit=1, concurrency_id="answer",
                      show_progress="minimal") \
                .then(on_idle, None, idle_outputs, api_visibility="private", queue=False)

        for trigger, name in ((question.submit, "ask"), (send.click, None)):
            wire(trigger, on_start, [question, turns, model, top_k, language], name)
        for button, text in zip(example_buttons, EXAMPLES):
            def on_example(state: list, model_name: str, k: float, answer_language: str, request: gr.Request,
                           text: str = text):
                return on_start(text, state, model_name, k, answer_language, request)
            wire(button.click, on_example, [turns, model, top_k, language], None)

        def on_stop(request: gr.Request) -> None:
            chat.stop(_session(request))
        stop.click(on_stop, None, None, api_visibility="private", concurrency_limit=None, queue=False)

        def on_clear():
            return chat.render([]), [], gr.Column(visible=True)
        clear.click(on_clear, None, [transcript, turns, examples_box], api_visibility="private", queue=False)

        def on_upload(files: list[str] | None):
            try:
                status = chat.add_articles(files)
            except Exception as exc:  # noqa: BLE001 - one sentence, never a traceback
                status = f"**Not added:** {_one_sentence(exc)}"
            return status, chat.articles_html(), None
        upload.upload(on_upload, [upload], [upload_status, articles, upload], api_name="add_articles",
                      concurrency_limit=1)
        demo.load(chat.articles_html, None, [articles], api_visibility="private")
    return demo


def _session(request: Any) -> str:
    return getattr(request, "session_hash", None) or "default"


def launch(demo: "gr.Blocks", host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
           max_file_bytes: int = config.Settings.max_article_bytes) -> str:
    """Start serving `demo` in the background; returns its address. A host
    other than this machine's loopback is served with a warning: the chat
    has no accounts, and anyone who reaches the address can ask and upload."""
    if host not in LOOPBACK_HOSTS:
        log.warning("rag chat listens on %s: anyone who can reach this address can ask questions and upload "
                    "articles; use the default 127.0.0.1 unless that is what you want", host)
    demo.queue(default_concurrency_limit=1)
    # Gradio refuses a larger upload before it reaches the handler.
    demo.launch(server_name=host, server_port=port, prevent_thread_lock=True, quiet=True, show_error=False,
                footer_links=[], inbrowser=False, share=False, max_file_size=max_file_bytes)
    return f"http://{host}:{port}/"


def main(args: argparse.Namespace, settings: config.Settings) -> int:
    """Build the app, serve it, and load the default model while the user types; Ctrl+C stops."""
    assistants = Assistants(settings)
    demo = build_app(settings, assistants)
    try:
        url = launch(demo, args.host, args.port, settings.max_article_bytes)
    except OSError:
        raise RagError(f"cannot listen on {args.host}:{args.port} (in use, or not an address of this machine) "
                       "— pick another with --host or --port") from None

    def warm_up() -> None:
        try:
            assistants.get().warm_up()
        except Exception as exc:  # noqa: BLE001 - the first question reports it to the user
            log.warning("could not load the model ahead of the first question: %s", _one_sentence(exc))

    threading.Thread(target=warm_up, name="warm-up", daemon=True).start()
    print(f"rag chat: open {url} in a browser (Ctrl+C stops)", flush=True)
    demo.block_thread()
    return 0
