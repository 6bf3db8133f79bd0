"""`rag bench` runs end to end on the real models and prints its table.

Slow: it loads the real models twice (once in a fresh process for the cold
start). Speed is never asserted — the benchmark reports figures — only that
they are there.
"""

import json
import os
import subprocess
import sys

import pytest

from rag.bench import BenchQuestion, load_questions, percentile, translate_questions
from rag.errors import ConfigError

from .conftest import ROOT, SEEDS


def test_percentiles_interpolate():
    assert percentile([], 50) is None
    assert percentile([3.0], 95) == 3.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([float(i) for i in range(1, 101)], 95) == pytest.approx(95.05)


def test_questions_come_from_the_eval_set_by_id(tmp_path):
    (tmp_path / "a.jsonl").write_text(
        json.dumps({"id": "x-1", "kind": "fact", "split": "test", "question": "Q1?"}) + "\n"
        + json.dumps({"id": "x-2", "kind": "refuse", "split": "test", "question": "Q2?"}) + "\n")
    assert load_questions(tmp_path, ("x-2", "x-1")) == [BenchQuestion("x-2", "refuse", "Q2?"),
                                                        BenchQuestion("x-1", "fact", "Q1?")]


def test_missing_ids_are_named(tmp_path):
    from rag.errors import ConfigError

    (tmp_path / "a.jsonl").write_text(json.dumps({"id": "x-1", "kind": "fact", "question": "Q?"}) + "\n")
    with pytest.raises(ConfigError, match="x-9"):
        load_questions(tmp_path, ("x-1", "x-9"))


def test_questions_in_another_language_keep_their_ids_and_a_missing_one_is_named(tmp_path):
    (tmp_path / "questions.jsonl").write_text(json.dumps({"id": "a", "question": "일본은?"}, ensure_ascii=False) + "\n")
    asked = [BenchQuestion("a", "fact", "Japan?")]
    assert translate_questions(asked, tmp_path, "ko") == [BenchQuestion("a", "fact", "일본은?", "ko")]
    with pytest.raises(ConfigError, match="no translation of b"):
        translate_questions(asked + [BenchQuestion("b", "fact", "B?")], tmp_path, "ko")


def test_no_eval_set_falls_back_to_the_built_in_questions(tmp_path):
    assert len(load_questions(tmp_path / "nothing", ("x-1",))) == 10


@pytest.mark.slow
def test_bench_runs_two_questions_and_prints_its_table(tmp_path):
    (tmp_path / "seeds").symlink_to(SEEDS)
    out = tmp_path / "bench.json"
    env = dict(os.environ, RAG_HOME=str(tmp_path))
    done = subprocess.run([sys.executable, "-m", "rag.bench", "--limit", "2", "--no-llama", "--out", str(out)],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=1800)
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert len(report["answers"]) == 2
    for name in ("retrieval_ms", "total_s"):
        assert report["summary"][name]["p50"] is not None
    assert report["cold_start"]["cache_filled"]["ready_s"] > 0
    assert report["peak_rss_mb"] > 0
    lines = done.stdout.splitlines()
    assert any("1st tok s" in line for line in lines)
    for answer in report["answers"]:
        assert any(line.startswith(answer["id"]) for line in lines)
    assert any(line.startswith("total_s") and "p50" in line for line in lines)
    assert "llama.cpp: skipped" in done.stdout and f"wrote {out}" in done.stdout
