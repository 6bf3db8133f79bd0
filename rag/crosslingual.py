"""Dense search for questions in another language than the articles'.

The index's vectors come from an English-only model. A question whose script
is not Latin (text.script_language) is searched instead against vectors of a
multilingual model (embed.MultilingualEmbedder), which are built for the
chunks the first time such a question arrives, not with the index: the model
embeds about six chunks a second on one thread, a cost only readers of other
languages should pay. They are kept in the user cache by chunk text, so a
restart or an added article embeds only chunks not seen before.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
import uuid
from pathlib import Path

import numpy as np

from .embed import MultilingualEmbedder
from .types import Chunk

log = logging.getLogger(__name__)


def _passage_text(chunk: Chunk, titles: dict[str, str]) -> str:
    """What is embedded for a chunk: its article's title, then its text. The
    title names the subject a chunk's sentences leave unsaid (found 82% of the
    Korean dev questions' gold chunks among the top 4, against 79% without)."""
    title = titles.get(chunk.doc_id, "")
    return f"{title}\n{chunk.text}" if title else chunk.text


def _key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


class CrossLingualVectors:
    """Multilingual vectors of one index's chunks (with their articles'
    `titles`, doc id -> title), built lazily and cached by text.

    >>> vectors = CrossLingualVectors(MultilingualEmbedder(), chunks, cache_dir)
    >>> vectors.similarities("2023년 일본의 AI 인재 순유입은?").shape  # one cosine per chunk
    (83,)
    """

    def __init__(self, embedder: MultilingualEmbedder, chunks: list[Chunk], cache_dir: Path | None,
                 titles: dict[str, str] | None = None) -> None:
        self.embedder = embedder
        self.texts = [_passage_text(c, titles or {}) for c in chunks]
        self.cache_file = (Path(cache_dir) / "multilingual-vectors" / f"{embedder.model_hash}.npz"
                           if cache_dir else None)
        self._vectors: np.ndarray | None = None
        self._lock = threading.Lock()

    def similarities(self, text: str) -> np.ndarray:
        """Cosine similarity of `text` (a question) to every chunk, in index order."""
        query = self.embedder.encode_queries([text])[0]
        return self._chunk_vectors() @ query

    def _chunk_vectors(self) -> np.ndarray:
        with self._lock:
            if self._vectors is None:
                self._vectors = self._build()
            return self._vectors

    def _build(self) -> np.ndarray:
        cached = self._read_cache()
        keys = [_key(t) for t in self.texts]
        missing = sorted({k for k in keys if k not in cached})
        if missing:
            by_key = dict(zip(keys, self.texts))
            started = time.perf_counter()
            log.warning("embedding %d chunks for questions in other languages (once; about %d s)",
                        len(missing), max(1, len(missing) // 6))
            fresh = self.embedder.encode_passages([by_key[k] for k in missing])
            cached.update(zip(missing, fresh))
            log.info("embedded %d chunks in %.1f s", len(missing), time.perf_counter() - started)
            self._write_cache(cached)
        if not keys:
            return np.zeros((0, self.embedder.dimension), np.float32)
        return np.stack([cached[k] for k in keys]).astype(np.float32)

    def _read_cache(self) -> dict[str, np.ndarray]:
        if self.cache_file is None or not self.cache_file.is_file():
            return {}
        try:
            with np.load(self.cache_file) as data:
                keys, vectors = data["keys"], data["vectors"]
            if vectors.ndim != 2 or vectors.shape[1] != self.embedder.dimension or len(keys) != len(vectors):
                raise ValueError("wrong shape")
            return {str(k): v for k, v in zip(keys, vectors)}
        except Exception as exc:  # a damaged cache is rebuilt, never trusted
            log.warning("ignoring the damaged cache %s (%s); re-embedding", self.cache_file, exc)
            return {}

    def _write_cache(self, vectors: dict[str, np.ndarray]) -> None:
        """Written whole to a temporary file, then renamed: never half a cache."""
        if self.cache_file is None:
            return
        try:
            self.cache_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.cache_file.with_name(f".{self.cache_file.stem}.{uuid.uuid4().hex[:6]}.tmp.npz")
            keys = sorted(vectors)
            np.savez(tmp, keys=np.array(keys), vectors=np.stack([vectors[k] for k in keys]))
            os.replace(tmp, self.cache_file)
        except OSError as exc:  # a read-only cache costs time, not answers
            log.warning("cannot keep the multilingual vectors in %s (%s)", self.cache_file.parent, exc)
