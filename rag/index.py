"""The chunk store and its dense search on disk: build, update, save, load.

`index/` holds one complete version folder per build and a `CURRENT` file
naming the live one. A build writes a new folder and then switches `CURRENT`
with an atomic rename, so a crash mid-build leaves the previous index intact.
Each version carries a manifest of what built it (embedding model and hash,
chunking settings, each article's content hash), which is how a stale index is
recognised. Vectors of unchanged chunks are reused, so adding or changing one
article embeds only its own chunks.

Dense search runs behind `VectorStore`: FAISS in this process by default
(`faiss.index` in the version folder), or a Milvus collection named by the
version (rag/milvus_store.py, imported only when `vector_store` names it).
`vectors.npy` is the truth either way; a search structure is derived from it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from collections.abc import Set as AbstractSet
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import faiss
import numpy as np

from .chunk import chunk_article
from .embed import TextEmbedder
from .errors import ConfigError, IndexLoadError, IndexWriteError, RagError, os_reason, why_unwritable
from .types import Article, Chunk

if TYPE_CHECKING:
    from .milvus_store import MilvusDatabase

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
_CURRENT = "CURRENT"
_LOCK = ".lock"
_FILES = ("manifest.json", "chunks.jsonl", "vectors.npy", "faiss.index")
_HNSW_NEIGHBOURS = 32  # graph degree; 32 is faiss's usual choice for recall
_HNSW_EF_SEARCH = 128  # candidates examined per search; recall over speed


@dataclass(frozen=True)
class DocumentInfo:
    """What the index remembers of an article besides its chunks."""

    content_hash: str
    title: str
    publisher: str | None = None
    author: str | None = None
    date: str | None = None


class VectorStore(Protocol):
    """Dense search over an index's vectors. A hit names its chunk by position
    in `ChunkIndex.chunks`; the score is the inner product, which is cosine
    similarity for the L2-normalised vectors the embedder makes."""

    def add(self, vectors: np.ndarray) -> None:
        """Append (n, dimension) float32 rows; they take the next n positions."""

    def search(self, vectors: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        """Top-k (position, score) for each (m, dimension) query row, best first."""

    def count(self) -> int:
        """How many vectors the store holds."""


class FaissStore:
    """The default VectorStore: a FAISS index in this process's memory."""

    def __init__(self, index: faiss.Index) -> None:
        self.index = index

    def add(self, vectors: np.ndarray) -> None:
        self.index.add(np.ascontiguousarray(vectors, dtype=np.float32))

    def search(self, vectors: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        scores, ids = self.index.search(np.ascontiguousarray(vectors, dtype=np.float32), k)
        return [[(int(i), float(s)) for i, s in zip(row_ids, row_scores) if i >= 0]
                for row_ids, row_scores in zip(ids, scores)]

    def count(self) -> int:
        return int(self.index.ntotal)


@dataclass
class ChunkIndex:
    """A loaded (or freshly built) index: chunks, their vectors and the search structure."""

    chunks: list[Chunk]
    vectors: np.ndarray  # (n_chunks, dimension) float32, L2-normalised
    documents: dict[str, DocumentInfo]
    manifest: dict
    # Where dense search runs. None until first needed, when a FAISS index of
    # the kind the manifest names is made from `vectors`: a build headed for
    # Milvus gets its collection from IndexStore.save and never makes one.
    store: VectorStore | None = None
    _making: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def vector_store(self) -> VectorStore:
        with self._making:  # two first questions at once make one FAISS index, not two
            if self.store is None:
                self.store = FaissStore(_make_faiss(self.vectors, self.manifest["index_type"]))
            return self.store

    @property
    def faiss_index(self) -> faiss.Index | None:
        """The FAISS index behind search; None when another engine runs it."""
        store = self.vector_store
        return store.index if isinstance(store, FaissStore) else None

    def search(self, query_vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        """Top-k (chunk position, cosine similarity) for one (dimension,) vector."""
        if not self.chunks:
            return []
        return self.vector_store.search(query_vector.reshape(1, -1).astype(np.float32), min(k, len(self.chunks)))[0]


# The FAISS index kinds, by the class name the manifest records.
FLAT_KIND = "IndexFlatIP"
HNSW_KIND = "IndexHNSWFlat"


def _index_kind(n_chunks: int, flat_max: int) -> str:
    """Exact search while the corpus is small; an HNSW graph once it is large,
    where exact search would cost tens of milliseconds per question. Milvus
    builds the same kind (rag/milvus_store.py)."""
    return FLAT_KIND if n_chunks <= flat_max else HNSW_KIND


def _make_faiss(vectors: np.ndarray, kind: str) -> faiss.Index:
    dimension = vectors.shape[1]
    if kind == FLAT_KIND:
        index = faiss.IndexFlatIP(dimension)
    else:
        index = faiss.IndexHNSWFlat(dimension, _HNSW_NEIGHBOURS, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efSearch = _HNSW_EF_SEARCH
    if len(vectors):
        index.add(vectors)
    return index


# What each vector embeds. Recorded in the manifest: vectors of another text
# (a chunk with its title, say) come from the same model but are not
# comparable, so an index built another way is rebuilt, never reused.
EMBEDDED_TEXT = "chunk text"


def _vectors_reusable(manifest: dict, embedder: TextEmbedder) -> bool:
    return (manifest.get("embedding_hash") == embedder.model_hash and manifest.get("embedded_text") == EMBEDDED_TEXT
            and manifest.get("embedding_dtype") == embedder.dtype)


def build_index(articles: list[Article], embedder: TextEmbedder, chunk_max_chars: int, chunk_min_chars: int,
                flat_index_max_chunks: int, previous: ChunkIndex | None = None,
                kept: AbstractSet[str] = frozenset()) -> ChunkIndex:
    """Chunk and embed `articles`, reusing `previous`'s vectors for unchanged
    chunks; the documents in `kept` (indexed before, unreadable now) keep
    their chunks from `previous` as they were."""
    started = time.perf_counter()
    carried = [c for c in previous.chunks if c.doc_id in kept] if previous is not None else []
    chunks = carried + [c for article in articles for c in chunk_article(article, chunk_max_chars, chunk_min_chars)]
    reusable: dict[str, np.ndarray] = {}
    if previous is not None and _vectors_reusable(previous.manifest, embedder):
        reusable = {c.chunk_id: previous.vectors[i] for i, c in enumerate(previous.chunks)}
    missing = [c for c in chunks if c.chunk_id not in reusable]
    fresh = embedder.encode([c.text for c in missing]) if missing else np.zeros((0, embedder.dimension), np.float32)
    by_id = dict(reusable)
    by_id.update({c.chunk_id: fresh[i] for i, c in enumerate(missing)})
    vectors = np.stack([by_id[c.chunk_id] for c in chunks]).astype(np.float32) if chunks \
        else np.zeros((0, embedder.dimension), np.float32)
    documents = {d: previous.documents[d] for d in sorted(kept)} if previous is not None else {}
    documents.update({a.doc_id: DocumentInfo(a.content_hash, a.title, a.publisher, a.author, a.date)
                      for a in articles})
    manifest = {
        "format_version": FORMAT_VERSION,
        "embedding_model": embedder.model_id,
        "embedding_hash": embedder.model_hash,
        # An index built on a CPU embedding in the other precision is stale
        # here: its vectors differ slightly from what a question gets.
        "embedding_dtype": embedder.dtype,
        "dimension": embedder.dimension,
        "embedded_text": EMBEDDED_TEXT,
        "index_type": _index_kind(len(chunks), flat_index_max_chunks),
        "chunking": {"max_chars": chunk_max_chars, "min_chars": chunk_min_chars},
        "n_chunks": len(chunks),
        "documents": {doc_id: asdict(info) for doc_id, info in documents.items()},
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    log.info("indexed %d articles as %d chunks (%d embedded, %d reused) in %.1f s", len(articles), len(chunks),
             len(missing), len(chunks) - len(missing), time.perf_counter() - started)
    return ChunkIndex(chunks, vectors, documents, manifest)


def stale_reasons(index: ChunkIndex, articles: list[Article], embedder: TextEmbedder,
                  chunk_max_chars: int, chunk_min_chars: int, kept: AbstractSet[str] = frozenset()) -> list[str]:
    """Why `index` no longer matches the articles and settings; [] when
    current. Documents in `kept` count as unchanged."""
    manifest = index.manifest
    if manifest.get("embedding_hash") != embedder.model_hash:
        return [f"it was built with another embedding model ({manifest.get('embedding_model')})"]
    if manifest.get("embedding_dtype") != embedder.dtype:
        return [f"its vectors were embedded in {manifest.get('embedding_dtype') or 'an unrecorded precision'}, "
                f"this machine embeds in {embedder.dtype}"]
    if not _vectors_reusable(manifest, embedder):
        return ["its vectors embed another text than the chunks"]
    reasons = []
    if manifest.get("chunking") != {"max_chars": chunk_max_chars, "min_chars": chunk_min_chars}:
        reasons.append("chunking settings changed")
    current = {a.doc_id: DocumentInfo(a.content_hash, a.title, a.publisher, a.author, a.date) for a in articles}
    added = current.keys() - index.documents.keys()
    removed = index.documents.keys() - current.keys() - kept
    changed = [d for d in current.keys() & index.documents.keys() if current[d] != index.documents[d]]
    for count, what in ((len(added), "added"), (len(changed), "changed"), (len(removed), "removed")):
        if count:
            reasons.append(f"{count} article{'s' if count > 1 else ''} {what}")
    return reasons


MILVUS_LITE_DB = "milvus.db"  # Milvus Lite's folder inside the index folder, for vector_store = "milvus"


def milvus_uri(vector_store: str, index_dir: Path) -> str | None:
    """The Milvus URI a `vector_store` setting names; None for FAISS.

    >>> milvus_uri("milvus:http://milvus:19530", Path("index"))
    'http://milvus:19530'
    """
    if vector_store == "faiss":
        return None
    if vector_store == "milvus":
        return str(Path(index_dir) / MILVUS_LITE_DB)
    if vector_store.startswith("milvus:") and vector_store[len("milvus:"):].strip():
        return vector_store[len("milvus:"):].strip()
    raise ConfigError(f"setting vector_store has a bad value {vector_store!r} (known: \"faiss\", \"milvus\", "
                      "\"milvus:<uri>\")")


class IndexStore:
    """Reads and writes versions of the index under one folder, with dense
    search in FAISS or in Milvus (`vector_store`, as Settings.vector_store).

    With Milvus each version's vectors live in a collection named by the
    version (rag_v_...). The name ties the collection to exactly one manifest
    and chunk list, so a reader never searches vectors of another build by
    the wrong chunk positions; a missing or incomplete collection (a new
    cluster, a crash mid-insert) is rebuilt from the version's vectors.npy.
    """

    def __init__(self, folder: Path, vector_store: str = "faiss") -> None:
        self.folder = Path(folder)
        self.milvus_uri = milvus_uri(vector_store, self.folder)
        self._milvus: MilvusDatabase | None = None  # connected at first use
        # The file lock is held per process; within one, a thread that holds
        # it (a build, then its save) may take it again.
        self._held = threading.RLock()
        self._depth = 0

    def exists(self) -> bool:
        return (self.folder / _CURRENT).is_file()

    def _database(self) -> MilvusDatabase:
        if self._milvus is None:
            from .milvus_store import MilvusDatabase  # pymilvus only when Milvus is chosen

            self._milvus = MilvusDatabase(self.milvus_uri)
        return self._milvus

    def _unwritable(self, reason: str) -> IndexWriteError:
        return IndexWriteError(f"the index folder {self.folder} cannot be written ({reason}) — make it a writable "
                               "folder, or set index_dir to one; the previous index, if any, is still live")

    def check_writable(self) -> None:
        """Raise IndexWriteError unless a build could write its files here
        (`rag doctor`); creates the folder if needed, never waits for the lock."""
        reason = why_unwritable(self.folder)
        if reason:
            raise self._unwritable(reason)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold an exclusive lock while building and saving, so two processes
        never write at once and a build reads the articles and the live index
        only after the other's save. Re-entrant within a thread."""
        with self._held:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                fh = open(self.folder / _LOCK, "w")
            except OSError as exc:
                raise self._unwritable(os_reason(exc)) from None
            with fh:
                fcntl.flock(fh, fcntl.LOCK_EX)
                self._depth = 1
                try:
                    yield
                finally:
                    self._depth = 0
                    fcntl.flock(fh, fcntl.LOCK_UN)

    def load(self) -> ChunkIndex:
        """Load the live version; IndexLoadError when it is missing or damaged."""
        if not self.exists():
            raise IndexLoadError(f"no index in {self.folder} — run `rag index` to build it")
        damaged = f"the index in {self.folder} is damaged"
        fix = "run `rag index --rebuild` to rebuild it from the articles"
        try:
            version = (self.folder / _CURRENT).read_text(encoding="utf-8").strip()
            folder = self.folder / version
            manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
            if not isinstance(manifest, dict):
                raise ValueError("the manifest is not a JSON object")
            if manifest.get("format_version") != FORMAT_VERSION:
                raise IndexLoadError(f"the index in {self.folder} has an old format — {fix}")
            with open(folder / "chunks.jsonl", encoding="utf-8") as fh:
                chunks = []
                for line in fh:
                    record = json.loads(line)
                    record["sentences"] = tuple(tuple(s) for s in record["sentences"])
                    chunks.append(Chunk(**record))
            vectors = np.load(folder / "vectors.npy", allow_pickle=False)
            store = _read_faiss(folder, manifest) if self.milvus_uri is None else None
            documents = {d: DocumentInfo(**info) for d, info in manifest["documents"].items()}
        except IndexLoadError:
            raise
        except (OSError, EOFError, ValueError, KeyError, TypeError, AttributeError, RuntimeError) as exc:
            # json, numpy and faiss each report damage with their own types
            # (numpy an empty file as EOFError).
            raise IndexLoadError(f"{damaged} ({type(exc).__name__}: {str(exc)[:120]}) — {fix}") from None
        n = len(chunks)
        if vectors.shape != (n, manifest.get("dimension")) or manifest.get("n_chunks") != n \
                or (store is not None and store.count() != n):
            raise IndexLoadError(f"{damaged} (its files disagree on the number of chunks) — {fix}")
        if self.milvus_uri is not None:
            store = self._open_collection(version, vectors, manifest)
        return ChunkIndex(chunks, vectors, documents, manifest, store)

    def _open_collection(self, version: str, vectors: np.ndarray, manifest: dict) -> VectorStore:
        """The version's Milvus collection, made from its vectors when it is
        missing or incomplete (under the lock, so two readers make it once)."""
        from .milvus_store import collection_name

        database, name = self._database(), collection_name(version)
        store = database.open(name, len(vectors))
        if store is None:
            with self.lock():
                store = database.open(name, len(vectors))
                if store is None:
                    log.warning("the Milvus collection %s is missing or incomplete — loading its %d vectors "
                                "from %s", name, len(vectors), self.folder / version)
                    store = database.create(name, vectors, manifest["index_type"])
        return store

    def save(self, index: ChunkIndex) -> None:
        """Write `index` as a new version and switch to it atomically; IndexWriteError
        (the previous version still live) when the folder cannot be written."""
        try:
            with self.lock():
                self._write(index)
        except (OSError, RuntimeError) as exc:  # faiss reports a failed write as RuntimeError
            raise self._unwritable(os_reason(exc)) from None

    def _write(self, index: ChunkIndex) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        version = f"v-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        # Which version was live (its Milvus collection is kept); a damaged
        # CURRENT, which a rebuild replaces, names none.
        previous = (self.folder / _CURRENT).read_text(encoding="utf-8", errors="replace").strip() \
            if self.exists() else None
        manifest = index.manifest if self.milvus_uri is None else dict(index.manifest, vector_store="milvus")
        files = _FILES if self.milvus_uri is None else _FILES[:-1]
        if self.milvus_uri is not None:
            from .milvus_store import collection_name
        collection: VectorStore | None = None
        live = False
        tmp = self.folder / f".tmp-{version}"
        tmp.mkdir()
        try:
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False), encoding="utf-8")
            with open(tmp / "chunks.jsonl", "w", encoding="utf-8") as fh:
                for chunk in index.chunks:
                    fh.write(json.dumps(asdict(chunk), ensure_ascii=False) + "\n")
            np.save(tmp / "vectors.npy", index.vectors, allow_pickle=False)
            if self.milvus_uri is None:
                faiss.write_index(index.faiss_index, str(tmp / "faiss.index"))
            else:
                # Filled before CURRENT names the version, so a live Milvus
                # version always has its collection.
                collection = self._database().create(collection_name(version), index.vectors,
                                                     index.manifest["index_type"])
            for name in files:
                _fsync(tmp / name)
            os.rename(tmp, self.folder / version)
            pointer = self.folder / f".{_CURRENT}.tmp"
            pointer.write_text(version + "\n", encoding="utf-8")
            _fsync(pointer)
            os.replace(pointer, self.folder / _CURRENT)  # the moment the new version goes live
            live = True
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            if self.milvus_uri is not None and not live:
                # A half-made collection goes; best effort, so that the
                # error raised is the one that stopped the save.
                with contextlib.suppress(RagError):
                    self._database().drop(collection_name(version))
        if collection is not None:
            # From now on `index` searches its collection, as a load of it would.
            index.store, index.manifest = collection, manifest
            # The version live until now keeps its collection: another process
            # may still be answering from it (it loads the new one next time).
            # Older ones go; one left by a failure here goes at the next save.
            try:
                self._database().drop_all_but({collection_name(v) for v in (version, previous) if v})
            except RagError as exc:
                log.warning("older Milvus collections stay for now: %s", exc)
        self._remove_old_versions(keep=version)

    def _remove_old_versions(self, keep: str) -> None:
        for path in self.folder.iterdir():
            if path.is_dir() and path.name != keep and (path.name.startswith("v-") or path.name.startswith(".tmp-")):
                shutil.rmtree(path, ignore_errors=True)


def _read_faiss(folder: Path, manifest: dict) -> FaissStore | None:
    """The version's saved FAISS index; None for a version saved to Milvus,
    whose ChunkIndex makes one from its vectors at the first search."""
    if manifest.get("vector_store") == "milvus" and not (folder / "faiss.index").exists():
        return None
    faiss_index = faiss.read_index(str(folder / "faiss.index"))
    if faiss_index is None:
        raise ValueError("the FAISS file holds no index")
    return FaissStore(faiss_index)


def _fsync(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())
