"""The chat as HTML: questions, streamed drafts, answers with citation chips,
and each answer's sources with the quoted sentence marked in its paragraph.

Pure functions over the chat's records, so the page's look is tested without
a browser. Everything from a user, a model or an article is escaped here.
Reading articles for a quote's paragraph goes through `ArticleShelf`, which
reads the article folder the same way indexing does, so the offsets agree.
"""

from __future__ import annotations

import html
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from .errors import RagError
from .ingest import ARTICLE_SUFFIXES, load_metadata, read_article
from .types import Answer, Article, Citation, Passage

# A marker as the model and the checker write them: "[1]", "[1, 2]".
_MARKERS = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
# A quote's paragraph is shown whole up to this many characters; past it, a
# window of this many characters each side of the quote, cut at spaces.
_PARAGRAPH_MAX_CHARS = 900
_CONTEXT_CHARS = 320
# The note `Assistant.stream` adds when the stop event ended generation.
STOPPED_NOTE = "stopped by the user"


@dataclass
class Turn:
    """One question of a chat and everything known about its answer so far."""

    question: str  # as the user typed it
    asked: str  # the standalone question retrieval used (== question unless a follow-up)
    model: str = ""
    top_k: int = 0
    passages: tuple[Passage, ...] = ()
    draft: str = ""
    answer: Answer | None = None
    error: str = ""  # one sentence, shown instead of an answer
    status: str = ""  # what is happening while there is no answer yet
    stopped: bool = False
    language: str = ""  # the answer's language; "" for the question's

    @property
    def done(self) -> bool:
        return self.answer is not None or bool(self.error) or (self.stopped and not self.status)


class ArticleShelf:
    """Article texts and metadata from the article folder, cached per file version.

    Citations carry offsets into the article text; the paragraph around a
    quote comes from the file, read exactly as indexing reads it.
    """

    def __init__(self, seeds_dir: Path, max_article_bytes: int) -> None:
        self.seeds_dir = Path(seeds_dir)
        self.max_article_bytes = max_article_bytes
        self._cache: dict[Path, tuple[tuple[int, int], Article]] = {}
        self._lock = threading.Lock()

    def article(self, doc_id: str) -> Article | None:
        """The article `doc_id`, or None when its file is gone or unreadable."""
        for suffix in ARTICLE_SUFFIXES:
            path = self.seeds_dir / f"{doc_id}{suffix}"
            try:
                stat = path.stat()
            except OSError:
                continue
            version = (stat.st_mtime_ns, stat.st_size)
            with self._lock:
                cached = self._cache.get(path)
            if cached and cached[0] == version:
                return cached[1]
            try:
                article = read_article(path, self.max_article_bytes, self.metadata().get(doc_id))
            except RagError:
                return None
            with self._lock:
                self._cache[path] = (version, article)
            return article
        return None

    def metadata(self) -> dict[str, dict[str, str]]:
        """{doc_id: {title, publisher, author, date}} from metadata.toml; {} when unreadable."""
        try:
            return load_metadata(self.seeds_dir)
        except RagError:
            return {}


# --- small pieces -------------------------------------------------------------

def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _byline(article: Article | None) -> str:
    if article is None:
        return ""
    parts = [p for p in (article.date, article.publisher, article.author) if p]
    return " · ".join(parts)


def _with_chips(text: str, turn_id: str, target: str, known: set[int]) -> str:
    """Escape `text`, turning each [n] into a chip that points at source `n`.

    `target` is "s" for an answer's citations, "p" for a draft's passages;
    a number with no source stays plain text.
    """
    out, cursor = [], 0
    for match in _MARKERS.finditer(text):
        out.append(_e(text[cursor:match.start()]))
        chips = []
        for number in (int(n) for n in re.findall(r"\d+", match.group(1))):
            if number in known:
                chips.append(f'<button type="button" class="chip" data-target="{turn_id}-{target}{number}" '
                             f'title="Show source {number}">{number}</button>')
            else:
                chips.append(_e(f"[{number}]"))
        out.append("".join(chips))
        cursor = match.end()
    out.append(_e(text[cursor:]))
    return "".join(out).replace("\n", "<br>")


def quote_in_context(article_text: str | None, citation: Citation) -> str:
    """HTML of the quote's paragraph with the quote marked.

    Falls back to the quote alone when the article is missing or has changed
    since it was indexed (its offsets no longer hold the quote).
    """
    start, end = citation.start, citation.end
    if article_text is None or article_text[start:end] != citation.quote:
        return f"<mark>{_e(citation.quote)}</mark>"
    para_start = article_text.rfind("\n", 0, start) + 1
    para_end = article_text.find("\n", end)
    para_end = len(article_text) if para_end < 0 else para_end
    before, after = article_text[para_start:start], article_text[end:para_end]
    if para_end - para_start > _PARAGRAPH_MAX_CHARS:
        if len(before) > _CONTEXT_CHARS:
            before = "…" + before[-_CONTEXT_CHARS:].split(" ", 1)[-1]
        if len(after) > _CONTEXT_CHARS:
            after = after[:_CONTEXT_CHARS].rsplit(" ", 1)[0] + "…"
    return f"{_e(before.lstrip())}<mark>{_e(citation.quote)}</mark>{_e(after.rstrip())}"


def _source_card(turn_id: str, citation: Citation, passage: Passage | None, article: Article | None,
                 n_passages: int) -> str:
    rank = f"passage rank {passage.rank} of {n_passages}" if passage else "passage not among those retrieved"
    byline = _byline(article)
    return (
        f'<div class="source" data-source="{turn_id}-s{citation.marker}">'
        f'<div class="source-head"><span class="num">{citation.marker}</span> '
        f'<span class="title">{_e(citation.title)}</span></div>'
        + (f'<div class="byline">{_e(byline)}</div>' if byline else "")
        + f'<p class="context">{quote_in_context(article.text if article else None, citation)}</p>'
        f'<div class="foot">{rank} · {_e(citation.doc_id)}, characters {citation.start}–{citation.end}</div>'
        "</div>"
    )


def _passage_card(turn_id: str, number: int, passage: Passage, article: Article | None) -> str:
    """A retrieved passage; `number` is its place in the prompt ([n] in a draft)."""
    byline = _byline(article)
    text = " ".join(passage.chunk.text.split())
    return (
        f'<div class="source passage" data-source="{turn_id}-p{number}">'
        f'<div class="source-head"><span class="num">{number}</span> <span class="title">{_e(passage.title)}</span></div>'
        + (f'<div class="byline">{_e(byline)}</div>' if byline else "")
        + f'<p class="context">{_e(text)}</p>'
        f'<div class="foot">passage rank {passage.rank} · {_e(passage.chunk.doc_id)}</div>'
        "</div>"
    )


def _timings(answer: Answer) -> str:
    t = answer.timings
    parts = [answer.model] if answer.model else []
    for key, label in (("retrieve", "retrieve"), ("first_token", "first token"), ("generate", "generate"),
                       ("total", "total")):
        if key in t:
            parts.append(f"{label} {t[key]:.2f} s" if t[key] < 1 else f"{label} {t[key]:.1f} s")
    return f'<div class="timings">{_e(" · ".join(parts))}</div>'


# --- a turn ---------------------------------------------------------------------

def render_turn(turn: Turn, index: int, shelf: ArticleShelf) -> str:
    """HTML of one question, its answer (or draft, or error) and its sources."""
    turn_id = f"t{index}"
    articles: dict[str, Article | None] = {}

    def article(doc_id: str) -> Article | None:
        if doc_id not in articles:
            articles[doc_id] = shelf.article(doc_id)
        return articles[doc_id]

    parts = [f'<div class="turn" data-turn="{index}">', f'<div class="msg user">{_e(turn.question)}</div>']
    if turn.asked and turn.asked != turn.question:
        parts.append(f'<div class="rewritten">Asked as: “{_e(turn.asked)}”</div>')
    answer = turn.answer
    if answer is not None and answer.asked:  # a question in another language, answered as its translation
        parts.append(f'<div class="rewritten">Read in English as: “{_e(answer.asked)}”</div>')
    numbered = list(enumerate(turn.passages, start=1))
    if turn.error:
        parts.append(f'<div class="msg bot error" role="alert">{_e(turn.error)}</div>')
        sources = [_passage_card(turn_id, n, p, article(p.chunk.doc_id)) for n, p in numbered]
        parts += _sources("Passages found", sources) if sources else []
    elif answer is None and turn.stopped:
        parts.append('<div class="msg bot stopped">Stopped before an answer was written.</div>')
        sources = [_passage_card(turn_id, n, p, article(p.chunk.doc_id)) for n, p in numbered]
        parts += _sources("Passages found", sources) if sources else []
    elif answer is None:
        draft = _with_chips(turn.draft, turn_id, "p", {n for n, _ in numbered})
        status = f'<div class="status">{_e(turn.status)}</div>' if turn.status else ""
        cursor = '<span class="cursor"></span>' if turn.draft and turn.status else ""
        parts.append(f'<div class="msg bot draft">{draft}{cursor}{status}</div>')
        sources = [_passage_card(turn_id, n, p, article(p.chunk.doc_id)) for n, p in numbered]
        parts += _sources("Passages found", sources) if sources else []
    elif answer.refused:
        stopped = STOPPED_NOTE in answer.notes
        text = "Stopped before an answer was written." if stopped else answer.text
        why = "" if stopped else "".join(f'<div class="why">{_e(n)}</div>' for n in answer.notes)
        parts.append(f'<div class="msg bot refusal"><div class="refusal-head">{_e(text)}</div>{why}'
                     f'{_timings(answer)}</div>')
        by_rank = list(enumerate(answer.passages, start=1))
        sources = [_passage_card(turn_id, n, p, article(p.chunk.doc_id)) for n, p in by_rank[:3]]
        parts += _sources("Closest passages", sources) if sources else []
    else:
        markers = {c.marker for c in answer.citations}
        stopped = '<div class="status">Stopped early.</div>' if STOPPED_NOTE in answer.notes else ""
        parts.append(f'<div class="msg bot answer"><div class="answer-text">'
                     f'{_with_chips(answer.text, turn_id, "s", markers)}</div>{stopped}{_timings(answer)}</div>')
        by_chunk = {p.chunk.chunk_id: p for p in answer.passages}
        cards = [_source_card(turn_id, c, by_chunk.get(c.chunk_id), article(c.doc_id), len(answer.passages))
                 for c in answer.citations]
        parts += _sources("Sources", cards)
        cited = {c.chunk_id for c in answer.citations}
        others = [_passage_card(turn_id, n, p, article(p.chunk.doc_id))
                  for n, p in enumerate(answer.passages, start=1) if p.chunk.chunk_id not in cited]
        if others:
            parts.append(f'<details class="others"><summary>Other passages retrieved ({len(others)})</summary>'
                         f'{"".join(others)}</details>')
    parts.append("</div>")
    return "".join(parts)


def _sources(heading: str, cards: list[str]) -> list[str]:
    return [f'<div class="sources"><div class="sources-head">{_e(heading)}</div>{"".join(cards)}</div>']


EMPTY_CHAT = ('<div class="empty"><b>Ask a question about the news articles.</b><br>'
              "Every answer cites the sentences it rests on; click a number to see the source.</div>")


def render_chat(turns: list[Turn], shelf: ArticleShelf) -> str:
    """HTML of the whole chat; an empty chat gets a short welcome."""
    if not turns:
        return f'<div class="rag-chat">{EMPTY_CHAT}</div>'
    return '<div class="rag-chat">' + "".join(render_turn(t, i, shelf) for i, t in enumerate(turns)) + "</div>"


def render_articles(articles: dict[str, str], shelf: ArticleShelf) -> str:
    """HTML list of the indexed articles with date and publisher where known."""
    metadata = shelf.metadata()
    items = []
    for doc_id, title in sorted(articles.items()):
        meta = metadata.get(doc_id, {})
        byline = " · ".join(v for v in (meta.get("date"), meta.get("publisher")) if v)
        items.append(f'<li><span class="title">{_e(title)}</span>'
                     + (f' <span class="byline">{_e(byline)}</span>' if byline else "")
                     + f' <span class="doc">{_e(doc_id)}</span></li>')
    count = f"{len(articles)} article{'s' if len(articles) != 1 else ''} in the index"
    return f'<div class="rag-articles"><div class="count">{count}</div><ul>{"".join(items)}</ul></div>'


# Styles for the chat HTML. gr.HTML nests them inside the component's own
# selector, where @keyframes is not allowed, so effects use transitions.
CHAT_CSS = """
.rag-chat { display: flex; flex-direction: column; gap: 14px; font-size: 15px; }
.empty { color: var(--body-text-color-subdued); padding: 24px 8px; text-align: center; }
.turn { display: flex; flex-direction: column; gap: 6px; }
.msg { padding: 10px 14px; border-radius: 12px; max-width: 92%; line-height: 1.5; }
.msg.user { align-self: flex-end; background: var(--color-accent-soft); }
.msg.bot { align-self: flex-start; background: var(--block-background-fill);
           border: 1px solid var(--border-color-primary); }
.msg.refusal { border: 1px dashed #b7791f; background: rgba(236, 201, 75, 0.12); }
.refusal-head::before { content: "∅ "; font-weight: bold; color: #b7791f; }
.msg.stopped { color: var(--body-text-color-subdued); font-style: italic; }
.msg.error { border-color: #c53030; background: rgba(229, 62, 62, 0.08); color: #9b2c2c; }
.rewritten, .status, .why, .timings, .byline, .foot { font-size: 12px; color: var(--body-text-color-subdued); }
.rewritten { align-self: flex-end; font-style: italic; }
.timings { margin-top: 6px; }
.cursor::after { content: "▍"; opacity: 0.6; }
.chip { display: inline-block; min-width: 1.5em; padding: 0 6px; margin: 0 2px; border-radius: 999px;
        font-size: 12px; font-weight: 600; line-height: 1.6; cursor: pointer; vertical-align: 1px;
        border: 1px solid var(--color-accent); color: var(--color-accent); background: transparent; }
.chip:hover, .chip:focus { background: var(--color-accent); color: white; }
.sources { display: flex; flex-direction: column; gap: 6px; margin-left: 12px; }
.sources-head { font-size: 12px; font-weight: 600; text-transform: uppercase; letter-spacing: 0.04em;
                color: var(--body-text-color-subdued); }
.source { border-left: 3px solid var(--color-accent); padding: 6px 10px; border-radius: 4px;
          background: var(--background-fill-secondary); scroll-margin: 60px; transition: box-shadow 1.5s ease-out; }
.source.passage { border-left-color: var(--border-color-primary); }
.source-head { font-size: 14px; line-height: 1.35; }
.source .num { font-weight: 700; color: var(--color-accent); font-size: 14px; }
.source .title { font-weight: 600; font-size: 14px; }
.source .context { margin: 4px 0; font-size: 14px; line-height: 1.45; }
.source mark { background: #fde68a; color: inherit; padding: 0 1px; border-radius: 2px; }
.source.flash { box-shadow: 0 0 0 3px var(--color-accent); transition: none; }
.others { margin-left: 12px; font-size: 13px; }
.others summary { cursor: pointer; color: var(--body-text-color-subdued); }
"""

ARTICLES_CSS = """
.rag-articles .count { font-weight: 600; margin-bottom: 4px; }
.rag-articles ul { margin: 0; padding-left: 18px; max-height: 260px; overflow-y: auto; font-size: 13px; }
.rag-articles .byline, .rag-articles .doc { color: var(--body-text-color-subdued); font-size: 12px; }
"""

# Runs once when the chat component mounts; one listener on the component
# serves every chip of every re-render. A chip opens the source's <details>
# (if folded), scrolls it into view and highlights it for a moment.
CHIP_JS = """
element.addEventListener('click', (event) => {
  const chip = event.target.closest('.chip');
  if (!chip) return;
  const source = element.querySelector(`[data-source="${chip.dataset.target}"]`);
  if (!source) return;
  for (let d = source.closest('details'); d; d = d.parentElement && d.parentElement.closest('details')) d.open = true;
  source.scrollIntoView({behavior: 'smooth', block: 'center'});
  // The highlight appears at once and fades out by the CSS transition.
  source.classList.add('flash');
  setTimeout(() => source.classList.remove('flash'), 1200);
});
"""
