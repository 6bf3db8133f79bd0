"""`rag doctor`: check what can break on this machine, one line per check.

Every file of the embedders' packages and of the generator's cache is read in
full and compared with the sha256 recorded when it was written (pip's install
record; the cache's marker, where a load hashes only the small files; the
packed 4-bit decode weights' own record, see models._write_record). The
generator's packages are looked for, the index is loaded and compared with
the article folder, and the cache and index folders must take a new file.
Nothing is repaired: each problem comes with its fix.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import importlib.metadata
import sys
from collections.abc import Iterator
from dataclasses import dataclass

from . import config, models, remote
from .embed import EMBED_PACKAGE, MULTILINGUAL_PACKAGE, Embedder, TextEmbedder
from .errors import RagError
from .generate import check_model_name
from .index import IndexStore, stale_reasons
from .ingest import load_corpus

# Models that ship as ordinary packages: pip's install record (RECORD) holds
# the sha256 of each of their files, the only record there is to check against.
_MODEL_PACKAGES = {"embedder": EMBED_PACKAGE, "multilingual embedder": MULTILINGUAL_PACKAGE}


@dataclass(frozen=True)
class Check:
    """One line of the report: what was checked, and what was found (`ok`) or the problem and its fix."""

    name: str
    ok: bool
    message: str

    def line(self) -> str:
        return f"{'OK' if self.ok else 'PROBLEM':<7}  {self.name}: {self.message}"


def run_checks(settings: config.Settings, embedder: TextEmbedder | None = None,
               progress: bool = False) -> Iterator[Check]:
    """Yield each Check as it finishes (the generator's cache takes seconds to a minute).

    `embedder` is the one the index is compared with (default: the real one,
    whose weights are hashed, not loaded). Raises ConfigError, before the
    first Check, when `settings.model` names no model.
    """
    check_model_name(settings.model)
    for label, requirement in _MODEL_PACKAGES.items():
        yield _package_check(label, requirement)
    yield from _generator_checks(settings, progress)
    yield _index_check(settings, embedder if embedder is not None else Embedder())
    yield from _folder_checks(settings)


def _package_check(label: str, requirement: str) -> Check:
    """Every file of an installed package against the sha256 pip recorded when it installed it."""
    name, _, version = requirement.partition("==")
    title = f"{label} ({name})"
    try:
        installed = importlib.metadata.version(name)
        files = importlib.metadata.files(name) or []
    except importlib.metadata.PackageNotFoundError:
        return Check(title, False, f"not installed — run `pip install {requirement}`")
    if installed != version:
        return Check(title, False, f"version {installed} is installed, not {version} — "
                                   f"run `pip install {requirement}`")
    reinstall = f"run `pip install --force-reinstall {requirement}`"
    checked = 0
    for file in files:
        if file.hash is None or file.hash.mode != "sha256":
            continue  # RECORD itself, and byte code compiled after the install
        try:
            with open(file.locate(), "rb") as fh:
                digest = hashlib.file_digest(fh, "sha256").digest()  # streamed in blocks
        except OSError:
            return Check(title, False, f"{file} is missing — {reinstall}")
        # RECORD writes a digest as URL-safe base64 without padding.
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != file.hash.value:
            return Check(title, False, f"{file} differs from the file pip installed — {reinstall}")
        checked += 1
    return Check(title, True, f"version {version}, every file matches pip's install record ({checked} checked)")


def _generator_checks(settings: config.Settings, progress: bool) -> Iterator[Check]:
    """The configured generator's packages and cache, and the cache of any other model built here."""
    specs: list[models.ModelSpec] = []
    if remote.is_remote(settings.model):
        yield Check("generator", True, f"served at {settings.model.removeprefix('openai:')}; "
                                       "this machine caches nothing of it")
    else:
        specs.append(models.get_spec(settings.model))
    specs += [spec for spec in models.MODELS.values()
              if spec not in specs and models.cached_model_dir(spec, settings.cache_dir).exists()]
    for spec in specs:
        try:
            n_parts = len(models.part_paths(spec))
        except RagError as exc:
            yield Check(f"{spec.name} packages", False, str(exc))
        else:
            yield Check(f"{spec.name} packages", True, f"all {n_parts} installed at version {spec.version}")
        folder = models.cached_model_dir(spec, settings.cache_dir)
        if not folder.exists():
            yield Check(f"{spec.name} cache", True, "not built yet: the first question builds it from the packages")
            continue
        problem = models.cache_problem(folder, spec, full=True, progress=progress)
        if problem:
            # Delete, not wait: a large file altered at its own size still loads.
            yield Check(f"{spec.name} cache", False,
                        f"in {folder}, {problem} — delete that folder; the next start rebuilds it from the packages")
        else:
            yield Check(f"{spec.name} cache", True, f"every file in {folder} matches the sha256 recorded when "
                                                    "it was built")


def _index_check(settings: config.Settings, embedder: TextEmbedder) -> Check:
    """The index loads and matches the article folder, as `rag index` judges it."""
    # The rule `rag index` applies: an indexed file that can no longer be
    # read keeps its chunks and does not make the index stale.
    from .pipeline import unreadable_now

    s = settings
    store = IndexStore(s.index_dir, s.vector_store)
    if not store.exists():
        return Check("index", True, f"none in {s.index_dir} yet: the first question (or `rag index`) builds it")
    try:
        index = store.load()
        articles, _ = load_corpus(s.seeds_dir, s.max_article_bytes)  # each skipped file is logged
        kept = unreadable_now(index, articles, s.seeds_dir)
        reasons = stale_reasons(index, articles, embedder, s.chunk_max_chars, s.chunk_min_chars, kept)
    except RagError as exc:
        return Check("index", False, str(exc))
    if reasons:
        return Check("index", False, f"it is stale against {s.seeds_dir} ({'; '.join(reasons)}) — "
                                     "run `rag index` to update it")
    return Check("index", True, f"{len(index.documents)} articles, {len(index.chunks)} chunks, "
                                f"up to date with {s.seeds_dir}")


def _folder_checks(settings: config.Settings) -> Iterator[Check]:
    """Both folders take a new file, as a cache build or an index save first needs."""
    try:
        models.prepare_cache_dir(settings.cache_dir)
    except RagError as exc:
        yield Check("model cache folder", False, str(exc))
    else:
        yield Check("model cache folder", True, f"{settings.cache_dir} is writable")
    try:
        IndexStore(settings.index_dir).check_writable()
    except RagError as exc:
        yield Check("index folder", False, str(exc))
    else:
        yield Check("index folder", True, f"{settings.index_dir} is writable")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`rag doctor` takes no flags of its own (--config and RAG_* choose what it checks)."""


def main(args: argparse.Namespace, settings: config.Settings) -> int:
    """Print one line per check; 0 when all are OK, 1 when any found a problem."""
    problems = 0
    for check in run_checks(settings, progress=sys.stderr.isatty()):
        print(check.line(), flush=True)
        problems += not check.ok
    print(f"{problems} problem{'s' if problems != 1 else ''} found" if problems else "no problems found")
    return 1 if problems else 0

