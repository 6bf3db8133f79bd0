"""Dense search on Milvus: a VectorStore for corpora past one machine's memory.

The same code reaches Milvus Lite (the embedded engine, a folder ending in
`.db`, started inside this process on a loopback port) and a Milvus server or
cluster (`http://host:19530`). One collection holds one index version's
vectors, row id = chunk position; which collection belongs to which version,
and when one is made or dropped, is IndexStore's business (rag/index.py).
Chunk texts, their metadata and BM25 stay in the index folder (docs/scale.md).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .errors import ConfigError, IndexLoadError, IndexWriteError, RagError

try:
    import grpc
    from pymilvus import DataType, MilvusClient, MilvusException
except ImportError:  # pragma: no cover - depends on the install
    raise ConfigError("vector_store = \"milvus\" needs the Milvus client: pip install -e '.[milvus]'") from None

log = logging.getLogger(__name__)

COLLECTION_PREFIX = "rag_"
_ID, _VECTOR = "id", "vector"
# Rows per insert call: 5,000 rows of 384 float32 are 7.7 MB, well under
# gRPC's 64 MB message limit, and few enough calls that RPC overhead is small.
_INSERT_ROWS = 5_000
# The same graph as FAISS's IndexHNSWFlat in rag/index.py (32 neighbours,
# FAISS's default construction depth, 128 candidates per search), so the two
# engines trade the same recall for speed. Milvus needs ef >= k.
_HNSW_BUILD = {"M": 32, "efConstruction": 40}
_HNSW_EF_SEARCH = 128
# A Milvus server that does not answer within this many seconds is reported
# as unreachable instead of hanging the first question.
_CONNECT_TIMEOUT_S = 10.0


def collection_name(version: str) -> str:
    """The collection of an index version; Milvus names take letters, digits and "_".

    >>> collection_name("v-20261202-020000-ab12cd")
    'rag_v_20261202_020000_ab12cd'
    """
    return COLLECTION_PREFIX + version.replace("-", "_")


class MilvusStore:
    """The VectorStore of one collection: inner-product search over its rows."""

    def __init__(self, client: MilvusClient, name: str, ef_search: int = _HNSW_EF_SEARCH) -> None:
        self.client = client
        self.name = name
        self.ef_search = ef_search

    def add(self, vectors: np.ndarray) -> None:
        """Append rows; each takes the next position as its id."""
        vectors = np.asarray(vectors, dtype=np.float32)
        start = self.count()
        with _reported(f"vectors cannot be written to the Milvus collection {self.name}", IndexWriteError):
            for first in range(0, len(vectors), _INSERT_ROWS):
                batch = vectors[first:first + _INSERT_ROWS]
                self.client.insert(self.name, [{_ID: start + first + i, _VECTOR: row}
                                               for i, row in enumerate(batch)])
            # Seals what was inserted, so it is indexed and every reader sees it.
            self.client.flush(self.name)

    def search(self, vectors: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        if k <= 0 or not len(vectors):
            return [[] for _ in range(len(vectors))]
        with _reported(f"the Milvus collection {self.name} cannot be searched", IndexLoadError):
            hits = self.client.search(self.name, data=np.asarray(vectors, dtype=np.float32).tolist(), limit=k,
                                      anns_field=_VECTOR, output_fields=[_ID],
                                      search_params={"metric_type": "IP",
                                                     "params": {"ef": max(self.ef_search, k)}})
        return [[(int(hit[_ID]), float(hit["distance"])) for hit in row] for row in hits]

    def count(self) -> int:
        with _reported(f"the Milvus collection {self.name} cannot be read", IndexLoadError):
            rows = self.client.query(self.name, filter="", output_fields=["count(*)"], consistency_level="Strong")
        return int(rows[0]["count(*)"])


class MilvusDatabase:
    """A connection to one Milvus database and this project's collections in it.

    One index folder per database: `drop_all_but` treats every collection
    named rag_... as this index's own.
    """

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self._client: MilvusClient | None = None

    @property
    def client(self) -> MilvusClient:
        if self._client is None:
            self._client = _connect(self.uri)
        return self._client

    def create(self, name: str, vectors: np.ndarray, kind: str) -> MilvusStore:
        """A new collection `name` holding `vectors` at positions 0..n-1,
        searched exactly (`kind` "IndexFlatIP") or by an HNSW graph, as
        FAISS would be for the same index. Replaces one of that name."""
        dimension = int(vectors.shape[1])
        with _reported(f"the Milvus collection {name} cannot be made", IndexWriteError):
            if self.client.has_collection(name):
                self.client.drop_collection(name)
            schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
            schema.add_field(_ID, DataType.INT64, is_primary=True)
            schema.add_field(_VECTOR, DataType.FLOAT_VECTOR, dim=dimension)
            index = self.client.prepare_index_params()
            if kind == "IndexFlatIP":
                index.add_index(field_name=_VECTOR, index_type="FLAT", metric_type="IP")
            else:
                # In both wire forms: Milvus reads the flat keys, Milvus Lite
                # 3.2 only the JSON "params" entry older clients sent.
                index.add_index(field_name=_VECTOR, index_type="HNSW", metric_type="IP", **_HNSW_BUILD,
                                params={"params": _HNSW_BUILD})
            # Strong: a search right after the build sees every row; a
            # version's collection is written once, so nothing is waited for after.
            self.client.create_collection(name, schema=schema, consistency_level="Strong")
            # Not waited for (sync=False): the collection is empty now, and
            # Milvus indexes each segment as it seals, searching the rest
            # exactly meanwhile. (Waiting polls every 0.5 s and, on Milvus
            # Lite, calls an RPC it lacks.)
            self.client.create_index(name, index, sync=False)
            self.client.load_collection(name)
        store = MilvusStore(self.client, name)
        store.add(vectors)
        held = store.count()
        if held != len(vectors):
            raise IndexWriteError(f"the Milvus collection {name} holds {held} of {len(vectors)} vectors after "
                                  "writing them — run `rag index --rebuild`")
        log.info("wrote %d vectors to the Milvus collection %s (%s)", len(vectors), name, self.uri)
        return store

    def open(self, name: str, n_vectors: int) -> MilvusStore | None:
        """The collection `name` when it holds exactly `n_vectors` rows; None
        when it is missing or holds another number (then make it anew)."""
        with _reported(f"the Milvus collection {name} cannot be opened", IndexLoadError):
            if not self.client.has_collection(name):
                return None
            self.client.load_collection(name)
        store = MilvusStore(self.client, name)
        return store if store.count() == n_vectors else None

    def drop(self, name: str) -> None:
        with _reported(f"the Milvus collection {name} cannot be dropped", IndexWriteError):
            if self.client.has_collection(name):
                self.client.drop_collection(name)

    def drop_all_but(self, keep: set[str]) -> None:
        """Drop this project's collections (rag_...) except those in `keep`."""
        with _reported("the Milvus collections cannot be listed", IndexWriteError):
            names = self.client.list_collections()
        for name in names:
            if name.startswith(COLLECTION_PREFIX) and name not in keep:
                self.drop(name)
                log.info("dropped the Milvus collection %s of an older index version", name)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def _connect(uri: str) -> MilvusClient:
    """A client for `uri`; IndexLoadError naming the next step when it cannot be reached."""
    lite = uri.endswith(".db")
    if lite:
        Path(uri).parent.mkdir(parents=True, exist_ok=True)
    try:
        with _quiet("milvus_lite.server_manager"):
            return MilvusClient(uri=uri, timeout=_CONNECT_TIMEOUT_S)
    except (MilvusException, grpc.RpcError, OSError) as exc:
        if lite and _locked(Path(uri)):
            raise IndexLoadError(f"another process has the Milvus Lite database {uri} open — stop it, or serve the "
                                 f"database with `milvus-lite server --data-dir {uri} --port 19530` and set "
                                 "vector_store = \"milvus:http://127.0.0.1:19530\"") from None
        where = f"Milvus Lite in {uri}" if lite else f"the Milvus server at {uri}"
        raise IndexLoadError(f"{where} cannot be reached ({_reason(exc)}) — start it, or set vector_store = "
                             "\"faiss\"") from None


@contextlib.contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    """Hold back a logger while its failure is reported as one sentence:
    milvus_lite logs a whole traceback when another process holds its folder."""
    logger = logging.getLogger(logger_name)
    disabled, logger.disabled = logger.disabled, True
    try:
        yield
    finally:
        logger.disabled = disabled


def _locked(folder: Path) -> bool:
    """Whether another process holds Milvus Lite's lock on `folder` (it lets one process in)."""
    import fcntl

    try:
        with open(folder / "LOCK", "a+") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return True
            fcntl.flock(fh, fcntl.LOCK_UN)
    except OSError:
        return False
    return False


@contextlib.contextmanager
def _reported(what: str, error: type[RagError]) -> Iterator[None]:
    """Turn the client's errors (MilvusException, gRPC's) into the project's, naming `what` failed."""
    try:
        yield
    except (MilvusException, grpc.RpcError) as exc:
        raise error(f"{what} ({_reason(exc)}) — check that Milvus is running, or set vector_store = "
                    "\"faiss\"") from None


def _reason(exc: Exception) -> str:
    message = getattr(exc, "message", None) or (exc.details() if isinstance(exc, grpc.RpcError)
                                                and hasattr(exc, "details") else str(exc))
    return " ".join(str(message).split())[:160] or type(exc).__name__
