"""The command line's handling of a user's mistakes: one sentence, exit code 2,
no traceback. These paths fail before any model loads."""

import pytest

from rag.cli import run


@pytest.fixture
def home(project, monkeypatch):
    monkeypatch.setenv("RAG_HOME", str(project))
    return project


@pytest.mark.parametrize("argv, message", [
    (["ask", ""], "the question is empty"),
    (["ask", "   "], "the question is empty"),
    (["ask", "why " * 400], "characters long; the limit is 1,000"),
    (["ask", "What?", "--model", "gpt-5"], "unknown model 'gpt-5'"),
    (["ask", "What?", "-k", "0"], "top_k must be positive"),
])
def test_user_mistakes_exit_2_with_one_sentence(home, capsys, argv, message):
    assert run(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.startswith("rag: ")


def test_bad_article_file_exits_2_and_adds_nothing(home, tmp_path, capsys):
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\xe9".encode("latin-1"))
    before = sorted(p.name for p in (home / "seeds").iterdir())
    assert run(["add", str(bad)]) == 2
    assert "not UTF-8" in capsys.readouterr().err
    assert sorted(p.name for p in (home / "seeds").iterdir()) == before
    assert run(["add", str(tmp_path / "missing.txt")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_unknown_setting_in_environment_is_named(home, monkeypatch, capsys):
    monkeypatch.setenv("RAG_TOPK", "3")
    assert run(["ask", "What?"]) == 2
    assert "unknown setting(s): topk" in capsys.readouterr().err


def test_damaged_index_exits_1_with_the_fix(home, capsys):
    (home / "index").mkdir()
    (home / "index" / "CURRENT").write_text("v-gone\n")
    assert run(["ask", "What was Japan's figure?"]) == 1
    err = capsys.readouterr().err
    assert "damaged" in err and "rag index --rebuild" in err and "Traceback" not in err
