"""`rag eval`: run the real pipeline over the eval set and score it.

Owns the eval item format (described in eval/README.md), the metrics and the
report. The metrics are deterministic and computed from the Answer and the
item alone, so the same answer always scores the same, and they share nothing
with the checks in `cite.py`: a citation counts as right when its quote
overlaps one of the item's gold quotes or states one of its required facts.
Any folder of articles can be evaluated with its own items file
(`--corpus DIR --items FILE`), on an index built apart from the project's.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import re
import statistics
import time
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import config
from .cite import parse_claims
from .errors import BadInput

log = logging.getLogger(__name__)

KINDS = ("fact", "refuse", "multi")
SPLITS = ("dev", "test")
# Retrieval is scored over this many ranks, so MRR sees past top_k.
RANK_DEPTH = 20


@dataclass(frozen=True)
class Gold:
    doc: str
    quote: str


@dataclass(frozen=True)
class Item:
    id: str
    kind: str
    split: str
    question: str
    facts: tuple[tuple[str, ...], ...] = ()  # each fact: its aliases
    gold: tuple[Gold, ...] = ()
    note: str = ""


def default_eval_dir() -> Path:
    return config.default_root() / "eval"


def item_files(eval_dir: Path) -> list[Path]:
    """The project's own item files: `eval/items/*.jsonl`."""
    return sorted((eval_dir / "items").glob("*.jsonl"))


def load_items(paths: list[Path], split: str | None = None) -> list[Item]:
    """Read eval items from JSON Lines files; BadInput names the file and line of a bad item."""
    items: list[Item] = []
    for path in paths:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise BadInput(f"cannot read eval items from {path}: {exc}") from None
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            where = f"{path.name} line {number}"
            try:
                raw = json.loads(line)
                item = Item(id=raw["id"], kind=raw["kind"], split=raw["split"], question=raw["question"],
                            facts=tuple(tuple(aliases) for aliases in raw.get("facts", ())),
                            gold=tuple(Gold(g["doc"], g["quote"]) for g in raw.get("gold", ())),
                            note=raw.get("note", ""))
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise BadInput(f"{where}: not a valid eval item ({exc})") from None
            if item.kind not in KINDS or item.split not in SPLITS:
                raise BadInput(f"{where}: kind must be one of {KINDS} and split one of {SPLITS}")
            items.append(item)
    ids = [i.id for i in items]
    if len(set(ids)) < len(ids):
        raise BadInput(f"eval item ids repeat: {sorted({i for i in ids if ids.count(i) > 1})}")
    return [i for i in items if split is None or i.split == split]


def read_translations(path: Path) -> dict[str, dict]:
    """The rows of a translation file (JSON Lines, each with an "id") by id;
    {} when there is no such file. BadInput names a file that cannot be read."""
    if not path.is_file():
        return {}
    try:
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        return {row["id"]: row for row in rows}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BadInput(f"cannot read {path}: {exc}") from None


def in_language(items: list[Item], folder: Path) -> list[Item]:
    """`items` asked in another language: the questions from
    `folder/questions.jsonl` ({"id", "question"} per line) and, where
    `folder/facts.jsonl` gives them, that language's aliases of each fact
    beside the English ones (an answer in Korean may write "인도" for
    "India"). An item with no translation is left out."""
    questions = read_translations(folder / "questions.jsonl")
    facts = read_translations(folder / "facts.jsonl")
    if not questions:
        raise BadInput(f"no translated questions in {folder / 'questions.jsonl'}")
    out = []
    for item in items:
        if item.id not in questions:
            continue
        extra = facts.get(item.id, {}).get("facts", [])
        merged = tuple(aliases + tuple(extra[n] if n < len(extra) else ()) for n, aliases in enumerate(item.facts))
        out.append(dataclasses.replace(item, question=questions[item.id]["question"], facts=merged))
    return out


# --- matching facts --------------------------------------------------------

_QUOTES = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "−": "-", "–": "-"})


def alias_pattern(alias: str) -> re.Pattern[str]:
    """A regex for one alias: `re:...` as written, otherwise the literal text
    as a whole word or number (`0.54` matches `+0.54`, not `10.54` or `0.541`).
    Only Latin letters and digits bound a word: Korean writes its particles
    onto the word ("인도와" states "인도")."""
    if alias.startswith("re:"):
        return re.compile(alias[3:], re.IGNORECASE)
    literal = re.escape(alias.translate(_QUOTES))
    return re.compile(rf"(?<![A-Za-z0-9_.]){literal}(?![A-Za-z0-9_]|[.,]\d)", re.IGNORECASE)


def missing_facts(item: Item, text: str) -> list[str]:
    """The first alias of each required fact that `text` does not state."""
    text = text.translate(_QUOTES)
    return [aliases[0] for aliases in item.facts if not any(alias_pattern(a).search(text) for a in aliases)]


# --- scoring one answer ----------------------------------------------------

def _holds(gold: Gold, doc_id: str, text: str) -> bool:
    """Whether `text` (of article `doc_id`) overlaps the gold quote: one holds
    the other, or `text` holds one of the quote's sentences (a quote may span
    chunks, a citation may be one sentence of a longer quote)."""
    if doc_id != gold.doc:
        return False
    return gold.quote in text or text in gold.quote or any(
        part.strip() and part.strip() in text for part in re.split(r"(?<=[.!?])\s+", gold.quote))


def citation_is_right(item: Item, doc_id: str, quote: str) -> bool:
    """A citation is right when its quote overlaps a gold quote of the item or
    states one of its required facts. Judged from the item alone, never by
    `cite.py`'s own rules, so the figure cannot be right by construction."""
    return any(_holds(g, doc_id, quote) for g in item.gold) or any(
        alias_pattern(a).search(quote.translate(_QUOTES)) for aliases in item.facts for a in aliases)


@dataclass
class Result:
    """One item's outcome; the fields the report tables show."""

    id: str
    kind: str
    question: str
    refused: bool
    answer: str
    seconds: float
    correct: bool  # fact/multi: all facts, not refused; refuse: refused
    missing: list[str] = field(default_factory=list)
    sentences: int = 0  # answer sentences
    supported_sentences: int = 0  # sentences with at least one supporting citation
    citations: int = 0  # (sentence, citation) pairs
    supporting_citations: int = 0
    cites_gold: bool | None = None  # None when refused or not a fact/multi item
    gold_ranks: list[int | None] = field(default_factory=list)  # rank of each gold quote's chunk
    gold_in_context: list[bool] = field(default_factory=list)  # each gold quote's chunk among the answer's passages
    cited_docs: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    draft: str = ""  # the model's text before checking
    asked: str = ""  # the question's English translation, when it was asked in another language


def _gold_rank(gold: Gold, ranked_chunks: list[Any]) -> int | None:
    """1-based rank of the first retrieved chunk overlapping the gold quote."""
    for rank, chunk in enumerate(ranked_chunks, start=1):
        if _holds(gold, chunk.doc_id, chunk.text):
            return rank
    return None


def score(item: Item, answer: Any, ranked_chunks: list[Any]) -> Result:
    """Score one Answer against its item; `ranked_chunks` are the retriever's
    best RANK_DEPTH chunks for the question."""
    by_marker = {c.marker: c for c in answer.citations}
    result = Result(id=item.id, kind=item.kind, question=item.question, refused=answer.refused,
                    answer=answer.text, seconds=answer.timings.get("total", 0.0), correct=False,
                    cited_docs=sorted({c.doc_id for c in answer.citations}), notes=list(answer.notes),
                    draft=answer.draft, asked=answer.asked)
    if item.kind == "refuse":
        result.correct = answer.refused
    else:
        result.missing = missing_facts(item, answer.text)
        result.correct = not answer.refused and not result.missing
        ranks = [_gold_rank(g, ranked_chunks) for g in item.gold]
        context = [p.chunk for p in answer.passages]
        given = [_gold_rank(g, context) is not None for g in item.gold]
        cited = set(result.cited_docs)
        if item.kind == "fact":
            # A fact item's gold quotes are alternatives (several articles may
            # state the one fact): finding or citing any one of them is enough.
            found = [r for r in ranks if r is not None]
            result.gold_ranks = [min(found) if found else None]
            result.gold_in_context = [any(given)]
            result.cites_gold = None if answer.refused else bool({g.doc for g in item.gold} & cited)
        else:
            # A multi item needs each article's fact.
            result.gold_ranks, result.gold_in_context = ranks, given
            result.cites_gold = None if answer.refused else {g.doc for g in item.gold} <= cited
    if not answer.refused and item.kind != "refuse":
        # A refuse item has no gold to judge a citation by; its wrong answer
        # counts in wrong answers shown.
        for claim in parse_claims(answer.text):
            result.sentences += 1
            cited = [by_marker[m] for m in claim.markers if m in by_marker]
            supporting = sum(citation_is_right(item, c.doc_id, c.quote) for c in cited)
            result.citations += len(cited)
            result.supporting_citations += supporting
            result.supported_sentences += supporting > 0
    return result


# --- the whole run ---------------------------------------------------------

def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q) - 1]


def metrics(results: list[Result]) -> dict[str, float | None]:
    """The report's figures, each 0..1 except seconds; None when undefined."""
    answerable = [r for r in results if r.kind != "refuse"]
    refused = [r for r in results if r.refused]
    should_refuse = [r for r in results if r.kind == "refuse"]
    answered = [r for r in answerable if not r.refused]
    ranks = [rank for r in answerable for rank in r.gold_ranks]
    seconds = [r.seconds for r in results]
    return {
        "answer_accuracy": _ratio(sum(r.correct for r in answerable), len(answerable)),
        "refusal_precision": _ratio(sum(r.kind == "refuse" for r in refused), len(refused)),
        "refusal_recall": _ratio(sum(r.refused for r in should_refuse), len(should_refuse)),
        # The outcome the product exists to avoid: an answer shown that is
        # wrong (facts missing) or that should have been a refusal. A
        # refusal is never counted here, so checks that turn a wrong answer
        # into one show up in this figure rather than in accuracy.
        "wrong_answer_rate": _ratio(sum(not r.refused and not r.correct for r in results), len(results)),
        "citation_precision": _ratio(sum(r.supporting_citations for r in results), sum(r.citations for r in results)),
        "citation_recall": _ratio(sum(r.supported_sentences for r in results), sum(r.sentences for r in results)),
        "gold_document_rate": _ratio(sum(bool(r.cites_gold) for r in answered), len(answered)),
        # The passages the model was given: the top k and any chunk continuing one.
        "retrieval_recall_at_k": _ratio(sum(found for r in answerable for found in r.gold_in_context), len(ranks)),
        "retrieval_mrr": _ratio(sum(1 / rank for rank in ranks if rank is not None and rank <= RANK_DEPTH), len(ranks)),
        "seconds_p50": _percentile(seconds, 50),
        "seconds_p95": _percentile(seconds, 95),
    }


def run_eval(items: list[Item], assistant: Any, progress: bool = False, gold_evidence: bool = False) -> list[Result]:
    """Ask every item's question of `assistant` and score the answers (with
    `gold_evidence`, the answerable items only, each from its gold quotes)."""
    from tqdm import tqdm

    assistant.warm_up()
    retriever = assistant._ready_retriever()
    if gold_evidence:
        items = [i for i in items if i.gold]
    results = []
    for item in tqdm(items, desc="eval", unit="question", disable=not progress):
        answer = gold_evidence_answer(item, assistant) if gold_evidence else assistant.ask(item.question)
        ranked = [p.chunk for p in retriever.retrieve(assistant.read(item.question), RANK_DEPTH)]
        results.append(score(item, answer, ranked))
    return results


class ReplayGenerator:
    """Writes the drafts a stored report recorded, question by question, so a
    change to the checks after the model (`cite.py`) is measured in seconds
    without the model. Valid only while the prompt is unchanged: the drafts
    are what the model wrote for the prompts of that run. A question asked in
    another language gets the English translation the run recorded; the
    checked answer is not translated again, so its replay stays English."""

    name = "replay"

    def __init__(self, report: Path) -> None:
        try:
            results = json.loads(Path(report).read_text(encoding="utf-8"))["results"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise BadInput(f"{report} is not an eval report to replay ({exc})") from None
        self.drafts = {r.get("asked") or r["question"]: r["draft"] for r in results}
        self.english = {r["question"]: r["asked"] for r in results if r.get("asked")}
        self._first_ask = ("", "")  # the current question, and its first ask's message

    def load(self) -> None:
        pass

    def stream(self, messages: list[dict[str, str]], stop: Any = None) -> Any:
        from .prompts import request_kind

        kind = request_kind(messages)
        if kind == "translate_question":
            yield self.english.get(messages[-1]["content"], "")
            return
        if kind == "translate_answer":
            yield messages[-1]["content"]  # an answer sentence to translate: kept as it is
            return
        question = messages[-1]["content"].rsplit("Question: ", 1)[-1].strip()
        if question not in self.drafts:
            raise BadInput(f"the replayed report has no draft for {question!r}")
        # A question about "the articles" is asked of each article apart; the
        # report holds their joined draft, written once, at the first ask. The
        # first ask's message coming again is the same question asked anew.
        ask = (question, messages[-1]["content"])
        if question == self._first_ask[0] and ask != self._first_ask:
            return
        self._first_ask = ask
        yield self.drafts[question]


class GivenEnglish:
    """The real generator, except that a question's translation into English
    is the item's own English question: how right answers in another language
    are when the question is read right (`--given-english`), a ceiling on the
    question's translation as `--gold-evidence` is on retrieval."""

    def __init__(self, generator: Any, english: dict[str, str]) -> None:
        self.generator = generator
        # The question as asked -> its English original, keyed as the
        # pipeline passes a question on (whitespace collapsed).
        self.english = {" ".join(asked.split()): original for asked, original in english.items()}
        self.name = generator.name

    def load(self) -> None:
        self.generator.load()

    def stream(self, messages: list[dict[str, str]], stop: Any = None) -> Any:
        from .prompts import request_kind

        if request_kind(messages) == "translate_question":
            yield self.english[messages[-1]["content"]]
            return
        yield from self.generator.stream(messages, stop=stop)


def gold_evidence_answer(item: Item, assistant: Any) -> Any:
    """The checked answer when the model reads only the item's gold quotes.

    A ceiling, not the product: retrieval and evidence choice are taken out,
    so what still fails is the generator's writing (or the checks' verdict on
    it). The quotes are shown with their article titles, in the prompt's own
    format, and citations are checked against the chunks holding them.
    """
    from .cite import check_answer
    from .prompts import answer_messages
    from .types import Passage

    retriever = assistant._ready_retriever()
    by_chunk: dict[str, tuple[Passage, list[str]]] = {}  # each gold chunk and its quotes, in gold order
    for gold in item.gold:
        chunk = next(c for c in retriever.index.chunks if _gold_rank(gold, [c]))
        if chunk.chunk_id not in by_chunk:
            by_chunk[chunk.chunk_id] = (Passage(chunk=chunk, title=retriever.index.documents[chunk.doc_id].title,
                                                score=1.0, rank=len(by_chunk) + 1, dense_score=1.0,
                                                lexical_score=0.0), [])
        by_chunk[chunk.chunk_id][1].append(gold.quote)
    passages = [p for p, _ in by_chunk.values()]
    evidence = [(p.title, " ".join(quotes)) for p, quotes in by_chunk.values()]
    started = time.perf_counter()
    draft = "".join(assistant.generator.stream(answer_messages(item.question, evidence)))
    answer = check_answer(item.question, draft, passages, retriever.article_terms, retriever.common_terms)
    return dataclasses.replace(answer, timings={"total": time.perf_counter() - started})


def load_thresholds(eval_dir: Path, corpus: str) -> dict[str, float] | None:
    """The bounds for `corpus`'s test split from eval/thresholds.toml (minimums,
    or maximums for `seconds_*` and `wrong_answer_rate`); None when it has none."""
    with (eval_dir / "thresholds.toml").open("rb") as f:
        section = tomllib.load(f).get(corpus)
    return None if section is None else {k: float(v) for k, v in section.items()}


def corpus_settings(settings: config.Settings, corpus: Path) -> config.Settings:
    """Settings that read articles from `corpus` into an index of its own,
    kept beside the model cache under a name derived from the folder's path,
    so the project's index is never touched and a second run reuses the first's."""
    corpus = Path(corpus).resolve()
    if not corpus.is_dir():
        raise BadInput(f"article folder {corpus} does not exist")
    key = hashlib.sha256(str(corpus).encode()).hexdigest()[:12]
    return dataclasses.replace(settings, seeds_dir=corpus,
                               index_dir=settings.cache_dir.parent / "indexes" / f"{corpus.name}-{key}")


def below_thresholds(figures: dict[str, float | None], thresholds: dict[str, float]) -> list[str]:
    """One line per figure that misses its threshold."""
    failures = []
    for name, limit in thresholds.items():
        value = figures.get(name)
        if value is None:
            continue
        worse = value > limit if name.startswith(("seconds", "wrong")) else value < limit
        if worse:
            failures.append(f"{name} = {value:.3f} (threshold {limit:.3f})")
    return failures


def _fmt(value: float | None, seconds: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:.1f} s" if seconds else f"{100 * value:.1f}%"


def render_markdown(figures: dict[str, float | None], results: list[Result], header: dict[str, Any]) -> str:
    lines = [f"# Eval report: {header['split']} split, {header['model']}", "", f"Articles: {header['corpus']}", "",
             f"{header['items']} items ({header['counts']}); top_k {header['top_k']}; {header['when']}", "",
             f"Evidence: {header['evidence']}.", "",
             "| figure | value |", "|---|---|"]
    lines += [f"| {name} | {_fmt(value, name.startswith('seconds'))} |" for name, value in figures.items()]
    failures = [r for r in results if not r.correct or r.supporting_citations < r.citations
                or r.supported_sentences < r.sentences or r.cites_gold is False
                or not all(r.gold_in_context)]
    lines += ["", f"## Items with a failure ({len(failures)})", "",
              "| id | kind | what failed | answer |", "|---|---|---|---|"]
    for r in failures:
        what = []
        if not r.correct:
            what.append("refused" if r.refused else ("answered" if r.kind == "refuse" else f"missing {r.missing}"))
        if r.supporting_citations < r.citations:
            what.append(f"{r.citations - r.supporting_citations} unsupported citation(s)")
        if r.supported_sentences < r.sentences:
            what.append(f"{r.sentences - r.supported_sentences} uncited sentence(s)")
        if r.cites_gold is False:
            what.append(f"cites {r.cited_docs}, not the gold article")
        if not all(r.gold_in_context):
            what.append(f"gold chunk not given to the model (ranks {r.gold_ranks})")
        answer = " ".join(r.answer.split()).replace("|", "\\|")
        lines.append(f"| {r.id} | {r.kind} | {'; '.join(what)} | {answer[:300]} |")
    return "\n".join(lines) + "\n"


def write_report(out_dir: Path, figures: dict[str, float | None], results: list[Result],
                 header: dict[str, Any]) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    mode = "-gold-evidence" if header["evidence"].startswith("gold") else ""
    corpus = Path(header["corpus"]).name
    stem = f"{corpus}-{header['split']}{mode}-{header['model']}-{time.strftime('%Y%m%d-%H%M%S')}"
    md, js = out_dir / f"{stem}.md", out_dir / f"{stem}.json"
    md.write_text(render_markdown(figures, results, header), encoding="utf-8")
    js.write_text(json.dumps({"header": header, "figures": figures, "results": [asdict(r) for r in results]},
                             indent=1, ensure_ascii=False), encoding="utf-8")
    return md, js


def evaluate(settings: config.Settings, split: str | None, item_paths: list[Path], out_dir: Path,
             ids: list[str] | None = None, progress: bool = False, gold_evidence: bool = False,
             corpus: Path | None = None, replay: Path | None = None,
             language: str | None = None,
             given_english: bool = False) -> tuple[dict[str, float | None], list[Result], Path]:
    """Run the eval and write its report; returns (figures, results, markdown path).

    With `corpus`, the articles come from that folder (indexed apart from the
    project's own); otherwise from the configured article folder. With
    `given_english` (and `language`), see GivenEnglish.
    """
    from .generate import make_generator
    from .pipeline import Assistant

    if given_english and (not language or replay):
        raise BadInput("--given-english needs --language and no --replay: it replaces the question's translation")
    items = load_items(item_paths, split)
    english = {item.id: item.question for item in items}
    if language:
        items = in_language(items, Path(item_paths[0]).parent / language)
    if ids:
        items = [i for i in items if i.id in set(ids)]
    if not items:
        raise BadInput(f"no eval items match (split {split!r}, ids {ids}) in {', '.join(map(str, item_paths))}")
    if corpus is not None:
        settings = corpus_settings(settings, corpus)
    generator = ReplayGenerator(replay) if replay else None
    if given_english:
        generator = GivenEnglish(make_generator(settings, progress=progress),
                                 {item.question: english[item.id] for item in items})
    assistant = Assistant(settings, progress=progress, generator=generator)
    results = run_eval(items, assistant, progress=progress, gold_evidence=gold_evidence)
    figures = metrics(results)
    if gold_evidence:
        # No refuse items are asked and the model is given the gold chunks.
        figures.update(refusal_precision=None, refusal_recall=None, retrieval_recall_at_k=None)
    counts = ", ".join(f"{sum(r.kind == k for r in results)} {k}" for k in KINDS)
    header = {"split": split or "all", "corpus": str(settings.seeds_dir), "model": settings.model,
              "language": language or "en",
              "items": len(results), "counts": counts,
              "top_k": settings.top_k, "when": time.strftime("%Y-%m-%d %H:%M:%S"),
              "evidence": "gold quotes only (a ceiling; retrieval figures say nothing)" if gold_evidence
              else "the pipeline's own" + (f", drafts replayed from {replay}" if replay else "")
              + (", each question's English given, not translated (a ceiling)" if given_english else "")}
    md, _ = write_report(out_dir, figures, results, header)
    return figures, results, md


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--split", choices=[*SPLITS, "all"], default="test", help="which items (default: test)")
    parser.add_argument("--model", help="generator name (default: the configured one)")
    parser.add_argument("--ids", nargs="+", help="only these item ids")
    parser.add_argument("--out", type=Path, help="report folder (default: eval/reports)")
    parser.add_argument("--corpus", type=Path,
                        help="a folder of articles to evaluate on instead of the project's (indexed apart)")
    parser.add_argument("--items", type=Path, nargs="+",
                        help="eval item files (JSON Lines) for --corpus (default: eval/items/*.jsonl)")
    parser.add_argument("--thresholds", metavar="NAME",
                        help="section of eval/thresholds.toml to hold the test split to (default: 'seeds' for "
                             "the project's items, else the items file's folder name)")
    parser.add_argument("--replay", type=Path, metavar="REPORT",
                        help="re-check the drafts stored in an earlier report's JSON instead of asking the model "
                             "(measures a change to the citation checks in seconds; the prompt must be unchanged)")
    parser.add_argument("--language", metavar="CODE",
                        help="ask the items in another language: questions (and fact aliases) from "
                             "<items folder>/CODE/questions.jsonl and facts.jsonl, e.g. --language ko")
    parser.add_argument("--given-english", action="store_true",
                        help="with --language: each question's English original stands in for the model's "
                             "translation of it (how right the answers are when the question is read right)")
    parser.add_argument("--gold-evidence", action="store_true",
                        help="the model reads only each answerable item's gold quotes: how right the generator "
                             "is when retrieval is perfect (no threshold check)")


def main(args: argparse.Namespace, settings: config.Settings) -> int:
    eval_dir = default_eval_dir()
    if args.corpus is not None and not args.items:
        raise BadInput("--corpus needs --items: the eval items written for those articles")
    split = None if args.split == "all" or args.ids else args.split
    item_paths = args.items or item_files(eval_dir)
    section = args.thresholds or (Path(args.items[0]).resolve().parent.name if args.items else "seeds") \
        + (f"-{args.language}" if args.language and not args.thresholds else "")
    figures, results, md = evaluate(settings, split, item_paths, args.out or eval_dir / "reports", args.ids,
                                    progress=True, gold_evidence=args.gold_evidence, corpus=args.corpus,
                                    replay=args.replay, language=args.language, given_english=args.given_english)
    width = max(map(len, figures))
    for name, value in figures.items():
        print(f"{name:<{width}}  {_fmt(value, name.startswith('seconds'))}")
    ceiling = args.gold_evidence or args.given_english
    thresholds = load_thresholds(eval_dir, section) if split == "test" and not ceiling else None
    failures = below_thresholds(figures, thresholds) if thresholds else []
    for line in failures:
        print(f"below threshold: {line}")
    print(f"report: {md} (and {md.with_suffix('.json').name})")
    return 1 if failures else 0
