"""`rag bench`: how fast the real pipeline answers, and how that compares with llama.cpp.

Runs a fixed list of eval questions through `Assistant` after a warm-up and
prints, per answer and as p50/p95: retrieval time, prompt tokens, time to the
first token, decode speed and total time; then cold start (in a fresh
process), peak memory and, when llama-cpp-python is installed, the same prompt
tokens through llama.cpp on the same GGUF file with the ratio of our time to
its time, question by question. It reports figures and never fails on time.
What counts as a right answer is the eval's business, not this module's.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import config

# Eval items the benchmark asks, by id: fact and multi items of the old test split (dev now)
# and two refusals (one caught by the retrieval gate, one the model must refuse).
# Fixed so that runs months apart compare the same work; ordered so that
# neighbours come from different articles, so the reused prompt prefix is
# the system prompt and not a shared passage.
BENCH_IDS: tuple[str, ...] = (
    "fact-004-02", "fact-000-02", "fact-001-08", "fact-003-10", "fact-002-02", "refuse-06",
    "fact-000-06", "fact-004-10", "multi-04", "refuse-14", "multi-10",
)
# Asked once before timing (a dev item, from another article than the first question).
WARM_UP_QUESTION = "What percentage of Meta's AI staff are foreign nationals?"

# Used only while the eval set has none of BENCH_IDS (a checkout without eval/items).
FALLBACK_QUESTIONS: tuple[tuple[str, str, str], ...] = (
    ("bench-01", "fact", "What net AI talent inflow did Japan record in 2023 in the OECD survey?"),
    ("bench-02", "fact", "According to Stanford HAI, how many AI talents per 100,000 people left Korea last year?"),
    ("bench-03", "fact", "How much money did the EU allocate in February to attract foreign AI researchers?"),
    ("bench-04", "fact", "How many AI patents per 100,000 people did Korea have in 2022?"),
    ("bench-05", "fact", "How many people did KT plan to recruit in the AI field?"),
    ("bench-06", "fact", "Who was nominated as the Minister of Science and ICT candidate?"),
    ("bench-07", "multi", "Why do Korean AI researchers leave for the U.S.?"),
    ("bench-08", "multi", "How do South Korea's and Japan's AI talent flows compare?"),
    ("bench-09", "refuse", "Who won the 2022 FIFA World Cup?"),
    ("bench-10", "refuse", "What is the capital of France?"),
)

_COLD_CHILD_FLAG = "--cold-start-child"


@dataclass(frozen=True)
class BenchQuestion:
    id: str
    kind: str
    question: str
    language: str = ""  # "" for the item's own (English) question


@dataclass
class AnswerRun:
    """Figures of one question through the pipeline (and through llama.cpp when it ran)."""

    id: str
    kind: str
    question: str
    refused: bool
    asked_model: bool
    retrieval_ms: float
    prompt_tokens: int = 0
    reused_tokens: int = 0
    new_tokens: int = 0
    first_token_s: float | None = None  # from the question to the first token, retrieval included
    decode_tokens_per_s: float | None = None
    generate_s: float = 0.0
    total_s: float = 0.0
    answer: str = ""
    llama: dict[str, Any] = field(default_factory=dict)
    language: str = ""


# --- command line ---------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `rag bench`; keep imports here light (the CLI builds every parser)."""
    parser.add_argument("--model", help="generator to measure (default: the configured one); "
                                         "openai:URL[#MODEL] measures answers drafted by a serving engine")
    parser.add_argument("-k", "--top-k", type=int, help="passages given to the model")
    parser.add_argument("--limit", type=int, help="ask only the first N questions of the list")
    parser.add_argument("--items", type=Path, help="eval items folder (default: eval/items of the project)")
    parser.add_argument("--out", type=Path, help="JSON report path (default: bench-results/bench-<time>.json)")
    parser.add_argument("--no-llama", action="store_true", help="skip the llama.cpp comparison")
    parser.add_argument("--no-cold", action="store_true", help="skip the cold-start measurement")
    parser.add_argument("--cold-empty", action="store_true",
                        help="also time a cold start with an empty model cache (dequantizes, ~2 minutes)")
    parser.add_argument("--decode-weights", choices=("int4+int8", "int4", "bfloat16"), default="int4+int8",
                        help="weights the generator decodes with (to measure what packing them gains)")
    parser.add_argument("--prompt-lookup", type=int, help="draft tokens per step (default: the setting)")
    parser.add_argument("--no-prompt-cache", action="store_true",
                        help="prefill every prompt whole (to measure what reusing the prefix gains)")
    parser.add_argument("--language", metavar="CODE",
                        help="also ask each question in another language (from <items>/CODE/questions.jsonl, "
                             "e.g. ko), right after its English form, and compare the two (skips llama.cpp)")
    parser.add_argument("--stores", type=int, metavar="N_CHUNKS",
                        help="instead: measure dense search in FAISS (flat, HNSW) and Milvus Lite, and BM25, on "
                             "N_CHUNKS synthetic chunks (build time, query p50/p95, memory; see docs/scale.md)")
    parser.add_argument(_COLD_CHILD_FLAG, dest="cold_child", help=argparse.SUPPRESS)


def main(args: argparse.Namespace, settings: config.Settings) -> int:
    if args.cold_child:
        return _cold_start_child(args.cold_child)
    if args.stores is not None:
        if args.stores < 1:
            from .errors import ConfigError

            raise ConfigError(f"--stores takes a number of chunks, got {args.stores}")
        from .storebench import main as bench_stores

        return bench_stores(args.stores, args.out, settings.flat_index_max_chunks)
    items_dir = args.items or config.default_root() / "eval" / "items"
    questions = load_questions(items_dir)
    if args.limit is not None:
        questions = questions[:max(args.limit, 0)]
    if args.language:
        # Each question right after its English form: machine noise falls on both alike.
        translated = translate_questions(questions, items_dir / args.language, args.language)
        questions = [q for pair in zip(questions, translated) for q in pair]
    report: dict[str, Any] = {"machine": machine_info(), "settings": _settings_dict(settings),
                              "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    if not args.no_cold:
        # First, before this process loads anything, so the child competes with nothing of ours.
        report["cold_start"] = {"cache_filled": measure_cold_start(settings)}
        if args.cold_empty:
            with tempfile.TemporaryDirectory(prefix="rag-bench-cache-") as empty:
                report["cold_start"]["cache_empty"] = measure_cold_start(
                    _replace(settings, cache_dir=Path(empty)))
    options = {"decode_weights": tuple(w for w in args.decode_weights.split("+") if w != "bfloat16"),
               "reuse_prompt_cache": not args.no_prompt_cache}
    if args.prompt_lookup is not None:
        settings = _replace(settings, prompt_lookup_tokens=args.prompt_lookup)
    runs, warm_up_s, generator = run_pipeline(settings, questions, options)
    report["warm_up_s"] = warm_up_s
    inner = generator.inner
    served = _is_served(settings)
    if served:
        report["generator"] = {"server": inner.base_url, "served_model": inner.served_model}
    else:
        report["generator"] = {"decode_weights": list(inner.decode_weights), "threads": inner.threads,
                               "prompt_lookup_tokens": inner.prompt_lookup_tokens,
                               "reuse_prompt_cache": inner.reuse_prompt_cache}
    report["peak_rss_mb"] = _peak_rss_mb()
    report["answers"] = [asdict(r) for r in runs]
    if args.no_llama or args.language:
        report["llama"] = {"skipped": "--no-llama" if args.no_llama else "--language"}
    elif served:
        report["llama"] = {"skipped": "the drafts come from a server; run bench without --model openai:... "
                                      "to compare the two"}
    else:
        report["llama"] = compare_llama(settings, generator, questions, runs)
    report["answers"] = [asdict(r) for r in runs]
    report["summary"] = summarize([r for r in runs if not r.language])
    if args.language:
        report["summary_language"] = {"language": args.language,
                                      **summarize([r for r in runs if r.language == args.language])}
    out = args.out or settings.index_dir.parent / "bench-results" / f"bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n")
    print_report(report)
    print(f"\nwrote {out}")
    return 0


# --- questions ------------------------------------------------------------------


def load_questions(items_dir: Path, ids: tuple[str, ...] = BENCH_IDS) -> list[BenchQuestion]:
    """The benchmark's questions, in the order of `ids`, from the eval items in `items_dir`.

    Falls back to FALLBACK_QUESTIONS when the folder holds none of `ids`;
    raises ConfigError naming the ids that are missing when only some are.
    """
    from .errors import ConfigError

    found: dict[str, BenchQuestion] = {}
    for path in sorted(Path(items_dir).glob("*.jsonl")) if Path(items_dir).is_dir() else []:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                item = json.loads(line)
                if item.get("id") in ids:
                    found[item["id"]] = BenchQuestion(item["id"], item["kind"], item["question"])
    if not found:
        return [BenchQuestion(*q) for q in FALLBACK_QUESTIONS]
    missing = [i for i in ids if i not in found]
    if missing:
        raise ConfigError(f"eval items in {items_dir} lack the benchmark's ids {', '.join(missing)} — "
                          f"update BENCH_IDS in rag/bench.py")
    return [found[i] for i in ids]


def translate_questions(questions: list[BenchQuestion], folder: Path, language: str) -> list[BenchQuestion]:
    """`questions` in another language, from `folder/questions.jsonl` (read
    as `rag eval --language` reads it); ConfigError names the ids it lacks."""
    from .errors import ConfigError
    from .evaluate import read_translations

    path = folder / "questions.jsonl"
    found = {i: row.get("question") for i, row in read_translations(path).items()}
    missing = [q.id for q in questions if not found.get(q.id)]
    if missing:
        raise ConfigError(f"{path} has no translation of {', '.join(missing)}")
    return [BenchQuestion(q.id, q.kind, found[q.id], language) for q in questions]


# --- our pipeline ---------------------------------------------------------------


class RecordingGenerator:
    """Wraps the real Generator, keeping each prompt so llama.cpp can be given the very same one."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.name = inner.name
        self.last_messages: list[dict[str, str]] | None = None
        self.warm_up_messages: list[dict[str, str]] | None = None

    def load(self) -> None:
        self.inner.load()

    def stream(self, messages: list[dict[str, str]], stop: threading.Event | None = None) -> Iterator[str]:
        self.last_messages = messages
        return self.inner.stream(messages, stop=stop)


def run_pipeline(settings: config.Settings, questions: list[BenchQuestion], options: dict[str, Any] | None = None):
    """Warm up an Assistant, then ask every question; returns (runs, warm-up seconds, recording generator).

    `options` go to the in-process Generator (decode_weights,
    reuse_prompt_cache); the generator is otherwise built from `settings` as
    the pipeline builds it, a served one (openai:URL) included.
    """
    from .generate import Generator, make_generator
    from .pipeline import Assistant
    from .types import Answer

    s = settings
    if _is_served(s):
        inner = make_generator(s, progress=False)
    else:
        inner = Generator(s.model, s.cache_dir, threads=s.threads, max_new_tokens=s.max_new_tokens,
                          prompt_lookup_tokens=s.prompt_lookup_tokens, progress=False, **(options or {}))
    generator = RecordingGenerator(inner)
    assistant = Assistant(s, generator=generator, progress=False)
    started = time.perf_counter()
    assistant.warm_up()
    # One answer before timing: the first forward pass allocates and picks kernels.
    assistant.ask(WARM_UP_QUESTION)
    warm_up_s = time.perf_counter() - started
    generator.warm_up_messages = generator.last_messages

    runs = []
    for q in questions:
        generator.last_messages = None
        answer = None
        for item in assistant.stream(q.question):
            if isinstance(item, Answer):
                answer = item
        assert answer is not None
        t = answer.timings
        asked = generator.last_messages is not None
        run = AnswerRun(id=q.id, kind=q.kind, question=q.question, refused=answer.refused, asked_model=asked,
                        retrieval_ms=1000 * t.get("retrieve", 0.0), generate_s=t.get("generate", 0.0),
                        total_s=t.get("total", 0.0), answer=answer.text, language=q.language)
        if asked:
            run.first_token_s = t.get("first_token")
        # Token counts and decode speed are known only for the in-process generator.
        stats = getattr(generator.inner, "last_stats", None) if asked else None
        if stats is not None:
            run.prompt_tokens, run.reused_tokens, run.new_tokens = (stats.prompt_tokens, stats.reused_tokens,
                                                                    stats.new_tokens)
            run.decode_tokens_per_s = stats.decode_tokens_per_s
            run.llama["messages"] = generator.last_messages
        runs.append(run)
    return runs, warm_up_s, generator


# --- cold start -----------------------------------------------------------------


def measure_cold_start(settings: config.Settings) -> dict[str, Any]:
    """Seconds from starting a fresh Python process to an Assistant ready to answer (index and models loaded)."""
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "rag.bench", _COLD_CHILD_FLAG,
                              json.dumps(_settings_dict(settings))],
                             stdout=subprocess.PIPE, text=True, cwd=str(config.default_root()))
    assert child.stdout is not None
    line = child.stdout.readline()
    ready_s = time.perf_counter() - started
    child.stdout.read()
    code = child.wait()
    if code != 0 or not line.strip():
        return {"error": f"the cold-start process exited with code {code}"}
    return {"ready_s": ready_s, **json.loads(line), "cache_dir": str(settings.cache_dir)}


def _cold_start_child(settings_json: str) -> int:
    """In the fresh process: build the Assistant, load everything, report on stdout, exit."""
    from .pipeline import Assistant

    imported = time.perf_counter()
    values = json.loads(settings_json)
    for name in ("seeds_dir", "index_dir", "cache_dir"):
        values[name] = Path(values[name])
    assistant = Assistant(config.Settings(**values), progress=False)
    assistant.warm_up()
    print(json.dumps({"load_s": time.perf_counter() - imported, "peak_rss_mb": _peak_rss_mb()}), flush=True)
    return 0


# --- llama.cpp ------------------------------------------------------------------


def compare_llama(settings: config.Settings, generator: RecordingGenerator, questions: list[BenchQuestion],
                  runs: list[AnswerRun]) -> dict[str, Any]:
    """Each prompt our model answered, through llama.cpp and through our generator again, interleaved.

    Both get the same prompt token ids (our tokenizer's chat template), the
    same max_new_tokens, greedy decoding and the same threads. Interleaving
    keeps a busy neighbour from favouring one side. Fills `run.llama`.
    """
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return {"skipped": "llama-cpp-python is not installed (pip install -e '.[llama]'; it compiles ~8 min)"}
    from . import models

    spec = models.get_spec(settings.model)
    gguf = models.assembled_gguf(spec, settings.cache_dir, progress=False)
    inner = generator.inner
    llm = _load_llama(gguf, inner.threads)
    asked = [r for r in runs if r.llama.get("messages")]
    if not asked:
        return {"skipped": "no question reached the model"}
    # Warm-up for llama.cpp too (page in the mapped weights, size its buffers),
    # and the same previous prompt for both: each reuses the key/values of the
    # prefix it shares with the prompt before, which must not be the one timed.
    warm_up = generator.warm_up_messages or asked[-1].llama["messages"]
    _llama_answer(llm, inner.encode(warm_up), settings.max_new_tokens)
    _ours_answer(inner, warm_up)
    for run in asked:
        messages = run.llama.pop("messages")
        ids = inner.encode(messages)
        theirs = _llama_answer(llm, ids, settings.max_new_tokens)
        ours = _ours_answer(inner, messages)
        run.llama = {"prompt_tokens": len(ids), "ours": ours, "llama": theirs,
                     "ratio": ours["total_s"] / theirs["total_s"] if theirs["total_s"] else None,
                     "same_text": ours["text"].strip() == theirs["text"].strip()}
    return {"gguf": str(gguf), "llama_cpp_python": _version("llama-cpp-python"), "threads": inner.threads}


def _load_llama(gguf: Path, threads: int):
    from llama_cpp import Llama

    return Llama(model_path=str(gguf), n_ctx=4096, n_batch=512, n_threads=threads, n_threads_batch=threads,
                 seed=0, verbose=False)


def _llama_answer(llm, ids: list[int], max_new_tokens: int) -> dict[str, Any]:
    """Greedy decoding of prompt `ids` with llama.cpp until an end-of-generation token or the limit."""
    started = time.perf_counter()
    first = None
    out: list[int] = []
    # temp 0 selects llama.cpp's greedy sampler; llama-cpp-python reuses the
    # key/value cache of the longest prefix shared with its previous prompt,
    # as our generator does.
    for token in llm.generate(ids, temp=0.0, top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0, reset=True):
        if first is None:
            first = time.perf_counter() - started
        if _is_end_of_generation(llm, token):
            break
        out.append(token)
        if len(out) >= max_new_tokens:
            break
    total = time.perf_counter() - started
    text = llm.detokenize(out).decode("utf-8", errors="replace")
    return {"first_token_s": first, "total_s": total, "new_tokens": len(out), "text": text}


def _is_end_of_generation(llm, token: int) -> bool:
    import llama_cpp

    return bool(llama_cpp.llama_vocab_is_eog(llm._model.vocab, token))


def _ours_answer(generator, messages: list[dict[str, str]]) -> dict[str, Any]:
    pieces = list(generator.stream(messages))
    stats = generator.last_stats
    return {"first_token_s": stats.first_token_s, "total_s": stats.total_s, "new_tokens": stats.new_tokens,
            "reused_tokens": stats.reused_tokens, "text": "".join(pieces)}


# --- figures --------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0-100) by linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summarize(runs: list[AnswerRun]) -> dict[str, Any]:
    """p50/p95 of each figure; first-token and decode figures only over answers the model wrote."""
    asked = [r for r in runs if r.asked_model]
    figures = {
        "retrieval_ms": [r.retrieval_ms for r in runs],
        "prompt_tokens": [float(r.prompt_tokens) for r in asked if r.prompt_tokens],  # none from a server
        "first_token_s": [r.first_token_s for r in asked if r.first_token_s is not None],
        "decode_tokens_per_s": [r.decode_tokens_per_s for r in asked if r.decode_tokens_per_s],
        "total_s": [r.total_s for r in runs],
        "total_s_model_answers": [r.total_s for r in asked],
    }
    ratios = [r.llama["ratio"] for r in runs if r.llama.get("ratio")]
    if ratios:
        figures["llama_ratio"] = ratios
        figures["llama_total_s"] = [r.llama["llama"]["total_s"] for r in runs if r.llama.get("ratio")]
        figures["ours_total_s"] = [r.llama["ours"]["total_s"] for r in runs if r.llama.get("ratio")]
        # The first-token target is about prefill; llama.cpp's on the same
        # prompts says what this CPU allows another engine.
        for side in ("ours", "llama"):
            figures[f"{side}_first_token_s"] = [r.llama[side]["first_token_s"] for r in runs if r.llama.get("ratio")
                                                and r.llama[side]["first_token_s"] is not None]
    summary = {name: {"p50": percentile(v, 50), "p95": percentile(v, 95), "n": len(v)} for name, v in figures.items()}
    if ratios:
        summary["llama_ratio"]["of_sums"] = sum(figures["ours_total_s"]) / sum(figures["llama_total_s"])
    return summary


def print_report(report: dict[str, Any]) -> None:
    """The table a person reads; the JSON file has everything."""
    m = report["machine"]
    s = report["settings"]
    g = report["generator"]
    engine = f"served model {g['served_model']}" if "server" in g else (
        f"{g['threads']} threads · decode weights {'+'.join(g['decode_weights']) or 'bfloat16'} · prompt lookup "
        f"{g['prompt_lookup_tokens']}")
    print(f"rag bench · {s['model']} · top_k {s['top_k']} · {m['cpus']} CPUs ({m['cpu']}) · {engine} "
          f"· load average {m['load_average'][0]:.1f} · {report['started']}")
    cold = report.get("cold_start", {})
    for label, key in (("cold start, model cache filled", "cache_filled"), ("cold start, model cache empty",
                                                                            "cache_empty")):
        if key in cold:
            c = cold[key]
            print(f"{label}: " + (c["error"] if "error" in c else f"{c['ready_s']:.1f} s to ready "
                                                                    f"(peak {c['peak_rss_mb']:.0f} MB)"))
    print(f"warm-up in this process: {report['warm_up_s']:.1f} s · peak resident memory {report['peak_rss_mb']:.0f} MB")
    print()
    header = f"{'id':<14}{'kind':<7}{'retr ms':>8}{'prompt':>7}{'reused':>7}{'new':>5}{'1st tok s':>10}" \
             f"{'tok/s':>7}{'total s':>8}{'llama s':>8}{'ratio':>7}  answer"
    print(header)
    print("-" * len(header))
    for r in report["answers"]:
        llama = r["llama"]
        llama_s = f"{llama['llama']['total_s']:.2f}" if llama.get("llama") else "-"
        ratio = f"{llama['ratio']:.2f}" if llama.get("ratio") else "-"
        first = f"{r['first_token_s']:.2f}" if r["first_token_s"] is not None else "-"
        rate = f"{r['decode_tokens_per_s']:.1f}" if r["decode_tokens_per_s"] else "-"
        text = ("(refused) " if r["refused"] else "") + " ".join(r["answer"].split())
        name = f"{r['id']}:{r['language']}" if r.get("language") else r["id"]
        tokens = (r["prompt_tokens"], r["reused_tokens"], r["new_tokens"]) if r["prompt_tokens"] else ("-",) * 3
        print(f"{name:<14}{r['kind']:<7}{r['retrieval_ms']:>8.1f}{tokens[0]:>7}{tokens[1]:>7}"
              f"{tokens[2]:>5}{first:>10}{rate:>7}{r['total_s']:>8.2f}{llama_s:>8}{ratio:>7}  {text[:60]}")
    print()
    for name, v in report["summary"].items():
        if v["n"]:
            extra = f" · sum/sum {v['of_sums']:.2f}" if "of_sums" in v else ""
            print(f"{name:<24} p50 {v['p50']:>8.2f}   p95 {v['p95']:>8.2f}   (n={v['n']}){extra}")
    other = report.get("summary_language")
    if other:
        print(f"\nthe same questions in {other['language']}:")
        for name in ("retrieval_ms", "first_token_s", "total_s", "total_s_model_answers"):
            v, english = other[name], report["summary"][name]
            if v["n"] and english["n"]:
                print(f"{name:<24} p50 {v['p50']:>8.2f}   p95 {v['p95']:>8.2f}   (n={v['n']}) · "
                      f"p50 {v['p50'] - english['p50']:+.2f} against English")
    llama = report.get("llama", {})
    if "skipped" in llama:
        print(f"llama.cpp: skipped — {llama['skipped']}")
    else:
        print(f"llama.cpp: llama-cpp-python {llama['llama_cpp_python']}, {llama['threads']} threads, same prompt "
              f"tokens, greedy; ratio = our generator's time / llama.cpp's (< 1 means we are faster)")


def machine_info() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    import torch

    return {"cpu": cpu, "cpus": len(os.sched_getaffinity(0)), "torch": torch.__version__,
            "python": sys.version.split()[0],
            # Other processes on the same cores slow torch's threads down a lot: the
            # load average at the start tells whether the figures can be trusted.
            "load_average": os.getloadavg()}


def _is_served(settings: config.Settings) -> bool:
    from .remote import is_remote

    return is_remote(settings.model)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _settings_dict(settings: config.Settings) -> dict[str, Any]:
    return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(settings).items()}


def _replace(settings: config.Settings, **changes: Any) -> config.Settings:
    import dataclasses

    return dataclasses.replace(settings, **changes)


def _version(package: str) -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _standalone(argv: list[str] | None = None) -> int:
    """`python -m rag.bench`: the same as `rag bench`."""
    from .cli import run

    return run(["bench", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(_standalone())
