"""The eval suite on the real pipeline: CI fails when a figure on the test
split falls below its threshold in eval/thresholds.toml."""

from __future__ import annotations

import pytest

from rag import config
from rag.evaluate import below_thresholds, default_eval_dir, evaluate, load_thresholds


@pytest.mark.eval
@pytest.mark.slow
def test_test_split_meets_thresholds(tmp_path, capsys):
    eval_dir = default_eval_dir()
    settings = config.load()
    figures, results, report = evaluate(settings, "test", eval_dir, tmp_path)
    with capsys.disabled():  # the figures belong in CI's log
        print(f"\neval on the test split ({len(results)} items, {settings.model}); report {report}")
        for name, value in figures.items():
            print(f"  {name:<24} {value if value is None else round(value, 3)}")
    failures = below_thresholds(figures, load_thresholds(eval_dir))
    assert not failures, "eval figures below threshold:\n" + "\n".join(failures) + f"\nsee {report}"
