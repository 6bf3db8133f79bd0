"""The only module that knows the order of the stages.

question -> retrieve (Passages) -> generate (draft) -> cite (Answer). The
Assistant also keeps the index in step with the article folder: a missing
index is built on first use and a stale one is updated, each with one logged
line. Models load lazily, once per Assistant.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import threading
import time
import uuid
from collections import OrderedDict
from pathlib import Path
from collections.abc import Iterator

from . import config
from .cite import check_answer
from .crosslingual import CrossLingualVectors
from .embed import Embedder, MultilingualEmbedder, TextEmbedder
from .errors import BadInput
from .evidence import evidence_sets
from .generate import check_model_name, make_generator
from .index import ChunkIndex, IndexStore, build_index, stale_reasons
from .ingest import ARTICLE_SUFFIXES, load_corpus, read_text
from .prompts import answer_messages, refusal_text
from .question import Question, read_question
from .retrieve import Retriever
from .translate import answer_in_language, asked_in_english, question_to_english
from .types import Answer, Article, DraftGenerator, Passage, Progress

log = logging.getLogger(__name__)


class Assistant:
    """Answers questions about the articles in `settings.seeds_dir`, with citations.

    >>> a = Assistant(model="qwen2.5-coder-0.5b", k=4)
    >>> answer = a.ask("What net AI talent inflow did Japan record in 2023 in the OECD survey?")
    >>> answer.refused, answer.citations[0].doc_id
    (False, '004_8845b63d3c664428')
    """

    def __init__(self, settings: config.Settings | None = None, *, model: str | None = None, k: int | None = None,
                 embedder: TextEmbedder | None = None, generator: DraftGenerator | None = None,
                 progress: bool = True, multilingual: MultilingualEmbedder | None = None) -> None:
        settings = settings or config.load()
        overrides = {name: value for name, value in (("model", model), ("top_k", k)) if value is not None}
        self.settings = dataclasses.replace(settings, **overrides) if overrides else settings
        if generator is None:
            check_model_name(self.settings.model)  # fail on an unknown name or bad URL now, not at the first question
        self.progress = progress
        self._embedder = embedder or Embedder()
        # Questions in another script than Latin (Korean, say); loads only when one comes.
        self._multilingual = multilingual or MultilingualEmbedder()
        self._generator = generator
        self._store = IndexStore(self.settings.index_dir, self.settings.vector_store)
        self._retriever: Retriever | None = None
        self._index_lock = threading.Lock()
        # English translations of questions asked in another language: the
        # app and `rag serve` retrieve first and answer after, and both need
        # the same reading without paying for the translation twice.
        self._english: OrderedDict[str, str] = OrderedDict()
        self._english_lock = threading.Lock()

    # --- the index -------------------------------------------------------------

    @property
    def generator(self) -> DraftGenerator:
        if self._generator is None:
            self._generator = make_generator(self.settings, progress=self.progress)  # in-process or openai:URL
        return self._generator

    def index(self, rebuild: bool = False) -> str:
        """Bring the index in step with the article folder; returns what was done.

        Raises IndexLoadError for a damaged index unless `rebuild` is set.
        """
        s = self.settings
        with self._index_lock, self._store.lock():
            articles, problems = load_corpus(s.seeds_dir, s.max_article_bytes)
            texts = {a.doc_id: a.text for a in articles}
            previous: ChunkIndex | None = None
            kept: set[str] = set()
            if self._store.exists() and not rebuild:
                previous = self._store.load()
                kept = unreadable_now(previous, articles, s.seeds_dir)
                reasons = stale_reasons(previous, articles, self._embedder, s.chunk_max_chars, s.chunk_min_chars,
                                        kept)
                if not reasons:
                    self._retriever = self._new_retriever(previous, texts)
                    return f"index is up to date: {len(articles) + len(kept)} articles, {len(previous.chunks)} chunks" \
                        + _kept_note(kept)
                message = f"index is stale ({'; '.join(reasons)}) — updating it"
            elif rebuild:
                message = f"rebuilding the index from {len(articles)} articles"
            else:
                message = f"no index in {s.index_dir} yet — building it from {len(articles)} articles"
            log.warning(message)
            built = build_index(articles, self._embedder, s.chunk_max_chars, s.chunk_min_chars,
                                s.flat_index_max_chunks, previous=previous, kept=kept)
            self._store.save(built)
            # Swapping the reference is atomic: an answer in progress keeps the
            # retriever it started with.
            self._retriever = self._new_retriever(built, texts)
            skipped = f"; skipped {len(problems)} bad file(s)" if problems else ""
            return f"indexed {len(articles) + len(kept)} articles as {len(built.chunks)} chunks{skipped}" \
                + _kept_note(kept)

    def _new_retriever(self, index: ChunkIndex, texts: dict[str, str]) -> Retriever:
        s = self.settings
        titles = {doc_id: info.title for doc_id, info in index.documents.items()}
        crosslingual = CrossLingualVectors(self._multilingual, index.chunks, s.cache_dir.parent, titles)
        return Retriever(index, self._embedder, s.candidates_k, s.rrf_k, texts, crosslingual)

    def _ready_retriever(self) -> Retriever:
        if self._retriever is None:
            self.index()
        self._embedder.load()  # so the first question's timings measure only the question
        assert self._retriever is not None
        return self._retriever

    def warm_up(self) -> None:
        """Load the index and both models now, so the first question is as fast as any."""
        self._ready_retriever()
        self.generator.load()

    def articles(self) -> dict[str, str]:
        """{doc_id: title} of the indexed articles."""
        return {d: info.title for d, info in self._ready_retriever().index.documents.items()}

    def add(self, paths: list[Path]) -> str:
        """Copy article files into the article folder and index them.

        Every file is checked before any is copied, so a bad file changes
        nothing. A file whose name matches an existing article replaces it.
        """
        s = self.settings
        if not paths:
            raise BadInput("no article files given")
        texts = {}
        for path in map(Path, paths):
            texts[path] = read_text(path, s.max_article_bytes)
        stems = [p.stem for p in texts]
        if len(set(stems)) < len(stems):
            raise BadInput("two of the files have the same name; a file's name is its document id")
        existing = [p for p in s.seeds_dir.iterdir() if p.suffix.lower() in ARTICLE_SUFFIXES] \
            if s.seeds_dir.is_dir() else []
        for path in texts:
            for other in existing:  # "note.TXT" and "note.md" are both the document "note"
                if other.stem == path.stem and other.name != path.name:
                    raise BadInput(f"{path.name}: the document id {path.stem!r} is already used by {other.name}")
        s.seeds_dir.mkdir(parents=True, exist_ok=True)
        for path, text in texts.items():
            target = s.seeds_dir / path.name
            if target.exists() and target.read_bytes() == text.encode("utf-8"):
                continue
            tmp = s.seeds_dir / f".{path.name}.{uuid.uuid4().hex[:6]}.tmp"
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, target)  # the article appears whole or not at all
        return self.index()

    # --- answering -------------------------------------------------------------

    def _check_question(self, question: str) -> str:
        # Empty means nothing in it shows: only whitespace, control characters
        # and format characters (zero-width spaces, direction marks, a BOM).
        if not isinstance(question, str) or not any(ch.isprintable() and not ch.isspace() for ch in question):
            raise BadInput("the question is empty — ask something about the articles")
        question = " ".join(question.split())
        if len(question) > self.settings.max_question_chars:
            raise BadInput(f"the question is {len(question):,} characters long; "
                           f"the limit is {self.settings.max_question_chars:,}")
        return question

    def retrieve(self, question: str) -> list[Passage]:
        """The passages the model would see for `question`, best first."""
        return self._ready_retriever().retrieve(self.read(self._check_question(question)), self.settings.top_k)

    def read(self, question: str | Question) -> Question:
        """What every stage reads for `question`: its record when it is in
        English (or translation is off), else the record of its English
        translation, with the years and figures of the user's own words
        (translate.py). A translation is made once per question text."""
        asked = question if isinstance(question, Question) else read_question(question)
        if not asked.language or not self.settings.translate_questions:
            return asked
        with self._english_lock:
            english = self._english.get(asked.text)
        if english is None:
            english = question_to_english(asked.text, self.generator, self._ready_retriever().name_keys)
            with self._english_lock:
                self._english[asked.text] = english
                while len(self._english) > _TRANSLATIONS_KEPT:
                    self._english.popitem(last=False)
        return asked_in_english(asked, english) if english else asked

    def _off_topic(self, retriever: Retriever, question: Question, passages: list[Passage]) -> str:
        """Why the passages cannot be about the question, or "" when they may be.

        The model is not asked then: a small model answers world-knowledge
        questions from memory when given unrelated passages.
        """
        s = self.settings
        if not passages:
            return "the index has no passages"
        best = max(p.dense_score for p in passages)
        crosslingual = bool(question.language and retriever.crosslingual is not None)
        if best < (s.crosslingual_min_dense_score if crosslingual else s.min_dense_score):
            return f"no passage is close to the question (best similarity {best:.2f})"
        coverage = retriever.coverage(question, passages)
        # The multilingual model's cosine tells no paraphrase from a near miss
        # (see crosslingual_min_dense_score), so only the terms common to both
        # languages (figures, Latin names, countries) can pass it.
        confident = not crosslingual and best >= s.confident_dense_score
        if coverage < s.min_question_coverage and not confident:
            return f"the passages lack most of the question's terms (coverage {coverage:.2f})"
        return ""

    def stream(self, question: str, stop: threading.Event | None = None, passages: list[Passage] | None = None,
               language: str | None = None) -> Iterator[str | Progress | Answer]:
        """Yield the draft as it is written (str pieces), then the checked Answer
        (with a Progress first while an English draft is translated).

        The final Answer may differ from the draft: unsupported sentences and
        citations are removed and markers renumbered. `passages` from an
        earlier `retrieve(question)` are used as they are, so a caller can
        show the sources before the answer is written. `language` overrides
        the `answer_language` setting ("" means the question's language).
        """
        question = self._check_question(question)
        retriever = self._ready_retriever()
        started = time.perf_counter()
        original = read_question(question)
        language = self._language(original, language)
        asked = self.read(original)  # read once (in English); every stage gets this record
        timings = {"translate_question": time.perf_counter() - started} if asked is not original else {}
        if passages is None:
            passages = retriever.retrieve(asked, self.settings.top_k)
        timings["retrieve"] = time.perf_counter() - started - timings.get("translate_question", 0.0)
        english = asked.text if asked is not original else ""
        off_topic = self._off_topic(retriever, asked, passages)
        if off_topic:
            timings["generate"] = 0.0
            timings["total"] = time.perf_counter() - started
            yield Answer(question=question, text=refusal_text(language), refused=True,
                         passages=tuple(passages), timings=timings, model=self.settings.model,
                         notes=(off_topic,), asked=english)
            return
        # With translation on, the model writes English and translate.py puts
        # the checked answer into the reader's language afterwards.
        translated = self.settings.translate_questions and bool(language)
        pieces: list[str] = []
        generate_started = time.perf_counter()
        # One ask, or one per article for a question about "the articles";
        # their drafts are checked as one, markers numbering the same passages.
        for texts in evidence_sets(asked, passages, retriever.term_weight, self.settings.evidence_chars):
            if pieces:
                pieces.append(" ")
                yield " "
            evidence = [(p.title, text) for p, text in zip(passages, texts)]
            messages = answer_messages(asked.text, evidence, "" if translated else language)
            for piece in self.generator.stream(messages, stop=stop):
                if "first_token" not in timings:
                    timings["first_token"] = time.perf_counter() - started
                pieces.append(piece)
                yield piece
            if stop and stop.is_set():
                break
        timings["generate"] = time.perf_counter() - generate_started
        draft = "".join(pieces)
        stopped = bool(stop and stop.is_set())
        if stopped:
            # A sentence cut off by Stop ("Japan's ") is no claim; keep what
            # was finished.
            ends = [m.end() for m in re.finditer(r"[.!?…](?:\s*\[[^\]]*\])*", draft)]
            draft = draft[:ends[-1]] if ends else ""
        answer = check_answer(asked, draft, passages, retriever.article_terms, retriever.common_terms, language)
        notes = answer.notes + (("stopped by the user",) if stopped else ())
        if translated and not answer.refused and not stopped:
            yield Progress(f"Writing the answer in {language}…")
            translate_started = time.perf_counter()
            text, kept_english = answer_in_language(answer.text, language, self.generator, retriever.ordinary_words)
            answer = dataclasses.replace(answer, text=text)
            notes += tuple(kept_english)
            timings["translate_answer"] = time.perf_counter() - translate_started
        timings["total"] = time.perf_counter() - started
        yield dataclasses.replace(answer, question=question, timings=timings, model=self.generator.name, notes=notes,
                                  asked=english)

    def _language(self, asked: Question, language: str | None) -> str:
        """The answer's language: `language`, else the setting, else the
        question's; "" for English."""
        language = (self.settings.answer_language if language is None else language) or asked.language
        return "" if language.casefold() == "english" else language

    def ask(self, question: str) -> Answer:
        """Answer `question` from the articles; see `stream` for the pieces."""
        for item in self.stream(question):
            if isinstance(item, Answer):
                return item
        raise AssertionError("stream ended without an Answer")


def unreadable_now(index: ChunkIndex, articles: list[Article], seeds_dir: Path) -> set[str]:
    """Indexed articles whose file is still in the folder but can no longer be
    read (now binary, not UTF-8, empty): their chunks are kept as indexed,
    since nothing indexed may be lost to a file spoiled after the fact. An
    article whose file was deleted is removed from the index."""
    present = {p.stem for p in seeds_dir.iterdir() if p.suffix.lower() in ARTICLE_SUFFIXES} \
        if seeds_dir.is_dir() else set()
    return (set(index.documents) & present) - {a.doc_id for a in articles}


def _kept_note(kept: set[str]) -> str:
    if not kept:
        return ""
    return (f"; kept {len(kept)} indexed article(s) as they were, since their file can no longer be read "
            f"({', '.join(sorted(kept))}) — fix or delete the file")


# Translations of recent questions kept per Assistant (see Assistant.read).
_TRANSLATIONS_KEPT = 256

_default: Assistant | None = None
_default_lock = threading.Lock()


def ask(question: str) -> Answer:
    """Answer `question` with a shared Assistant built from the default settings.

    >>> ask("Who won the 2022 FIFA World Cup?").refused
    True
    """
    global _default
    with _default_lock:
        if _default is None:
            _default = Assistant()
    return _default.ask(question)
