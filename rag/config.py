"""Settings: one frozen dataclass, loaded from defaults, a TOML file, `RAG_*`
environment variables and explicit overrides, in that order.

Nothing here runs at import time; callers build Settings once and pass them
into constructors. Unknown keys are rejected by name, so a typo never
silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

from .errors import ConfigError

_PACKAGE_PARENT = Path(__file__).resolve().parent.parent


def default_root() -> Path:
    """The project folder holding `seeds/` and `index/`.

    A source checkout (the usual editable install) uses its own folder, so
    `rag ask` works from any directory; otherwise the current directory.
    """
    if (_PACKAGE_PARENT / "seeds").is_dir() and (_PACKAGE_PARENT / "pyproject.toml").is_file():
        return _PACKAGE_PARENT
    return Path.cwd()


@dataclass(frozen=True)
class Settings:
    # Folder of article files (.txt/.md); a file's stem is its document id.
    seeds_dir: Path = Path("seeds")
    # Folder for the FAISS index, chunk records and manifest.
    index_dir: Path = Path("index")
    # Dequantized models are cached here (about 3 GB for the 1.5B model),
    # outside the project so a fresh clone reuses them.
    cache_dir: Path = Path(platformdirs.user_cache_dir("rag-news")) / "models"
    # Generator id; see rag.models.MODELS. The 1.5B model is the accurate default.
    # "openai:<URL>[#<model>]" drafts on a serving engine instead (rag/remote.py).
    model: str = "qwen2.5-coder-1.5b"
    # Passages given to the model. Four short chunks keep the prompt near
    # 500 tokens, which 2 cores prefill in about 3 s.
    top_k: int = 4
    # Candidates taken from each of dense and BM25 search before fusion.
    candidates_k: int = 20
    # Reciprocal-rank-fusion constant; 60 is the value from the RRF paper.
    rrf_k: int = 60
    # Chunks grow sentence by sentence up to this many characters (a sentence
    # longer than this becomes a chunk of its own; none is ever cut).
    chunk_max_chars: int = 450
    # A paragraph shorter than this (a subheading) joins the next chunk.
    chunk_min_chars: int = 120
    # Longest question accepted, in characters.
    max_question_chars: int = 1000
    # Largest article file accepted, in bytes (about 200 pages of text).
    max_article_bytes: int = 2_000_000
    # Characters of evidence sentences the model reads (see evidence.py):
    # prefill before the first answer word grows with every prompt token.
    evidence_chars: int = 700
    # Answers are short; this bounds generation time on a slow machine.
    max_new_tokens: int = 160
    # Prompt-lookup decoding: draft tokens checked per step. Answers copy
    # phrases from the passages, so n-gram drafts from the prompt are often
    # accepted. 3, because the 4-bit decode kernel reads its weights once per
    # 4 rows: a step of 1 token + 3 drafts costs 1.6x a plain step, one of
    # 1 + 10 drafts 3.7x (and falls back to bfloat16). Simulated on the eval
    # answers: 3 -> 0.66 of plain decoding time, 10 -> 0.85.
    prompt_lookup_tokens: int = 3
    # Torch threads; 0 means one per core.
    threads: int = 0
    # Refusal gate, run before the model is asked. A question goes to the
    # model when its best passage has at least `min_dense_score` cosine
    # similarity and either the passages hold `min_question_coverage` of its
    # terms (weighted by rarity) or the similarity reaches
    # `confident_dense_score` (a paraphrase). Calibrated on the eval's dev
    # split: answerable questions had coverage 0.23-1.0 with cosine 0.55 or
    # more wherever coverage was under 0.5; "population of South Korea" 0.45
    # and 0.49, "FIFA World Cup" 0.44, "sourdough" 0.0 coverage. Near misses
    # ("China's figure for 2023") pass the gate; cite.py refuses them.
    min_dense_score: float = 0.20
    min_question_coverage: float = 0.5
    confident_dense_score: float = 0.50
    # The same floor for a question in another language, searched with the
    # multilingual model (crosslingual.py), whose cosines sit higher: Korean
    # translations of the dev questions scored 0.77-0.90 answerable and
    # 0.79-0.81 for world-knowledge ones ("water's boiling point"), so the
    # floor only stops questions about nothing near the articles at all, and
    # cite.py refuses the rest.
    crosslingual_min_dense_score: float = 0.72
    # The language answers are written in: "" for the question's own (a
    # Korean question gets a Korean answer), or a language's English name
    # ("English", "Korean") for every answer. Quotes stay as the articles
    # write them either way.
    answer_language: str = ""
    # A question in another language than English is put into English by the
    # generator first (about 2 s), answered and checked as an English one,
    # and the checked answer put back into the reader's language (translate.py).
    # Measured on the Korean dev questions: 46.8% answered right against
    # 29.0% when the model read the Korean question and the multilingual
    # embedder searched, for about 3 s more per answer. Off: that old way.
    translate_questions: bool = True
    # Up to this many chunks a flat (exact) index is fastest; above it an
    # HNSW graph keeps search in milliseconds.
    flat_index_max_chunks: int = 50_000
    # Where dense search runs. "faiss": in this process, saved in the index
    # folder (the default: nothing to run, fastest up to millions of chunks).
    # "milvus": Milvus Lite, the embedded engine, in <index_dir>/milvus.db
    # (one process at a time). "milvus:<uri>": a Milvus server or cluster
    # (milvus:http://host:19530) or a Milvus Lite folder elsewhere (a path
    # ending in .db). Milvus needs the `milvus` extra. Chunk texts and BM25
    # stay in the index folder either way; see docs/scale.md.
    vector_store: str = "faiss"

    def __post_init__(self) -> None:
        if not (self.vector_store in ("faiss", "milvus")
                or (self.vector_store.startswith("milvus:") and self.vector_store[len("milvus:"):].strip())):
            raise ConfigError(f"setting vector_store has a bad value {self.vector_store!r} "
                              "(known: \"faiss\", \"milvus\", \"milvus:<uri>\")")
        for name in ("top_k", "candidates_k", "rrf_k", "chunk_max_chars", "max_question_chars",
                     "max_article_bytes", "max_new_tokens", "flat_index_max_chunks"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"setting {name} must be positive, got {getattr(self, name)!r}")
        if self.candidates_k < self.top_k:
            raise ConfigError(f"candidates_k ({self.candidates_k}) must be at least top_k ({self.top_k})")
        if self.threads < 0 or self.prompt_lookup_tokens < 0:
            raise ConfigError("threads and prompt_lookup_tokens must not be negative")


_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}


def _coerce(name: str, value: Any) -> Any:
    """Convert a TOML or environment value to the field's type, or fail by name."""
    default = _FIELDS[name].default
    try:
        if isinstance(default, Path):
            return Path(value).expanduser()
        if isinstance(default, bool):
            return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"setting {name} has a bad value {value!r}") from None


def load(config_file: Path | None = None, root: Path | None = None, **overrides: Any) -> Settings:
    """Build Settings from defaults, `rag.toml`, `RAG_*` variables, then overrides.

    Relative folders are resolved against `root` (default: `$RAG_HOME`, else
    `default_root()`).
    Overrides whose value is None are ignored, so CLI flags can pass through.

    >>> load(top_k=6).top_k
    6
    """
    if root is None:
        root = Path(os.environ["RAG_HOME"]) if os.environ.get("RAG_HOME") else default_root()
    root = Path(root)
    values: dict[str, Any] = {}
    config_file = config_file or (root / "rag.toml")
    if config_file.is_file():
        try:
            data = tomllib.loads(config_file.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{config_file} is not valid TOML: {exc}") from None
        values.update(data)
    for key, value in os.environ.items():
        # RAG_GENERATOR_API_KEY is a secret, read where the remote generator is
        # built, so it never lands in Settings (which bench reports write out);
        # RAG_API_TOKEN likewise, read by `rag serve` (rag/serve.py).
        if key.startswith("RAG_") and key not in ("RAG_HOME", "RAG_GENERATOR_API_KEY", "RAG_API_TOKEN"):
            values[key[4:].lower()] = value
    values.update({k: v for k, v in overrides.items() if v is not None})
    unknown = sorted(set(values) - set(_FIELDS))
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(unknown)} (known: {', '.join(_FIELDS)})")
    coerced = {k: _coerce(k, v) for k, v in values.items()}
    for name in ("seeds_dir", "index_dir", "cache_dir"):
        path = coerced.get(name, _FIELDS[name].default)
        coerced[name] = path if path.is_absolute() else root / path
    return Settings(**coerced)
