"""The `rag` command: a thin shell over `rag.pipeline`.

This is one of the two places (with the app) where a RagError becomes one
clean sentence on stderr. Exit codes: 0 success, 2 a user's mistake (bad
question, bad file, bad setting), 1 anything else the project reports.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from . import config, models
from .errors import BadInput, ConfigError, RagError
from .types import Answer


def _print_answer(answer: Answer) -> None:
    print(answer.text)
    if answer.asked:
        print(f"(read in English as: {answer.asked})")
    if answer.refused:
        if answer.passages:
            print("\nClosest passages:")
            for p in answer.passages[:3]:
                print(f"  - {p.title}: {' '.join(p.chunk.text.split())[:160]}…")
        return
    print()
    for c in answer.citations:
        print(f"[{c.marker}] {c.title} ({c.doc_id}, characters {c.start}-{c.end})")
        print(f"    “{c.quote}”")
    t = answer.timings
    print(f"\n{answer.model} · retrieve {t.get('retrieve', 0):.2f} s · generate {t.get('generate', 0):.1f} s"
          f" · total {t.get('total', 0):.1f} s", file=sys.stderr)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rag", description="Cited answers from news articles, offline.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each stage with timings")
    parser.add_argument("--config", type=Path, help="TOML settings file (default: rag.toml in the project)")
    sub = parser.add_subparsers(dest="command", required=True)

    ask = sub.add_parser("ask", help="answer a question with citations")
    ask.add_argument("question")
    ask.add_argument("--json", action="store_true", help="print the whole Answer as JSON")
    ask.add_argument("--model", help=f"generator: {', '.join(models.MODELS)} (default {models.DEFAULT_MODEL}), "
                                     f"or openai:URL[#MODEL] for a served one, e.g. openai:http://127.0.0.1:8080/v1")
    ask.add_argument("-k", "--top-k", type=int, help="passages given to the model")

    index = sub.add_parser("index", help="build or update the index from the article folder")
    index.add_argument("--rebuild", action="store_true", help="rebuild from scratch (also repairs a damaged index)")

    add = sub.add_parser("add", help="add article files (.txt/.md) and index them")
    add.add_argument("files", nargs="+", type=Path)

    # Tools with their own modules; each defines add_arguments(parser) and
    # main(args, settings) -> exit code, imported only when used.
    for name, help_text in _TOOLS.items():
        _tool(name).add_arguments(sub.add_parser(name, help=help_text))
    return parser


_TOOLS = {
    "chat": "start the chat app in the browser",
    "eval": "run the eval suite and write a report",
    "bench": "measure speed: cold start, first token, whole answer",
    "serve": "serve an HTTP API (its own and OpenAI-compatible)",
    "doctor": "check the model packages and cache, the index and the folders; exit 1 on a problem",
}


def _tool(name: str):
    import importlib

    modules = {"chat": ".app", "eval": ".evaluate", "bench": ".bench", "serve": ".serve", "doctor": ".doctor"}
    return importlib.import_module(modules[name], __package__)


def run(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    logging.getLogger("rag").setLevel(logging.INFO if args.verbose else logging.WARNING)
    from .pipeline import Assistant  # heavy imports after argument errors are reported

    try:
        if args.config is not None and not args.config.is_file():
            # config.load skips a missing rag.toml; one named on purpose must exist.
            raise ConfigError(f"no settings file at {args.config} — check the --config path")
        settings = config.load(args.config, model=getattr(args, "model", None), top_k=getattr(args, "top_k", None))
        if args.command in _TOOLS:
            return _tool(args.command).main(args, settings)
        assistant = Assistant(settings)
        if args.command == "index":
            print(assistant.index(rebuild=args.rebuild))
        elif args.command == "add":
            print(assistant.add(args.files))
        else:
            answer = assistant.ask(args.question)
            if args.json:
                print(json.dumps(answer.to_dict(), indent=2, ensure_ascii=False))
            else:
                _print_answer(answer)
    except (BadInput, ConfigError) as exc:
        print(f"rag: {exc}", file=sys.stderr)
        return 2
    except RagError as exc:
        print(f"rag: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("rag: interrupted", file=sys.stderr)
        return 130
    return 0


def main() -> None:
    sys.exit(run())
