"""The eval suite on the real pipeline: CI fails when a figure on a test
split falls below its bound in eval/thresholds.toml — the seed articles' own
items (asked in English and in Korean), and a second corpus of other news the
checks were never tuned on."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag import config
from rag.evaluate import below_thresholds, default_eval_dir, evaluate, item_files, load_thresholds

# A second corpus beside the project (../shared/benchmarks/news-snippets):
# short news snippets of other subjects and years, in the eval item format.
NEWS_SNIPPETS = Path(__file__).resolve().parent.parent.parent / "shared" / "benchmarks" / "news-snippets"


def _run(name: str, item_paths: list[Path], tmp_path: Path, capsys, corpus: Path | None = None,
         language: str | None = None) -> None:
    eval_dir = default_eval_dir()
    settings = config.load()
    figures, results, report = evaluate(settings, "test", item_paths, tmp_path, corpus=corpus, language=language)
    with capsys.disabled():  # the figures belong in CI's log
        print(f"\neval on the {name} test split ({len(results)} items, {settings.model}); report {report}")
        for figure, value in figures.items():
            print(f"  {figure:<24} {value if value is None else round(value, 3)}")
    thresholds = load_thresholds(eval_dir, name)
    assert thresholds, f"eval/thresholds.toml has no [{name}] section"
    failures = below_thresholds(figures, thresholds)
    assert not failures, "eval figures below threshold:\n" + "\n".join(failures) + f"\nsee {report}"


@pytest.mark.eval
@pytest.mark.slow
def test_seed_test_split_meets_thresholds(tmp_path, capsys):
    _run("seeds", item_files(default_eval_dir()), tmp_path, capsys)


@pytest.mark.eval
@pytest.mark.slow
def test_seed_test_split_in_korean_meets_thresholds(tmp_path, capsys):
    """The same items asked in Korean (eval/items/ko/), answered in Korean
    and cited to the English sentences."""
    _run("seeds-ko", item_files(default_eval_dir()), tmp_path, capsys, language="ko")


@pytest.mark.eval
@pytest.mark.slow
@pytest.mark.skipif(not (NEWS_SNIPPETS / "items.jsonl").is_file(), reason="../shared/benchmarks/news-snippets is absent")
def test_news_snippets_test_split_meets_thresholds(tmp_path, capsys):
    _run("news-snippets", [NEWS_SNIPPETS / "items.jsonl"], tmp_path, capsys, corpus=NEWS_SNIPPETS / "articles")
