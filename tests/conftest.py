"""Shared fixtures: a private copy of the seed articles, and deterministic
fakes for the two models so the logic around them is tested in milliseconds."""

from __future__ import annotations

import hashlib
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from rag import config
from rag.text import terms

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"


class HashEmbedder:
    """Bag of hashed terms: texts sharing terms get similar vectors."""

    model_id = "test/hash-embedder"
    dimension = 64
    dtype = "float32"

    def __init__(self, salt: str = "") -> None:
        self.salt = salt
        self.calls: list[int] = []  # number of texts per encode call

    @property
    def model_hash(self) -> str:
        return hashlib.sha256(f"hash-embedder{self.salt}".encode()).hexdigest()

    def load(self) -> None:
        pass

    def encode(self, texts: list[str]) -> np.ndarray:
        self.calls.append(len(texts))
        out = np.zeros((len(texts), self.dimension), np.float32)
        for row, text in enumerate(texts):
            for term in terms(text):
                out[row, int(hashlib.md5((self.salt + term).encode()).hexdigest(), 16) % self.dimension] += 1
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1, norms)


class FakeGenerator:
    """Replies with a fixed draft, in a few pieces, and records what it saw.

    `replies` maps a last message's text to another reply (a translation,
    say); a request to translate that it lacks is answered as a model that
    cannot: the question with no English, the answer unchanged.
    """

    name = "fake-generator"

    def __init__(self, draft: str, replies: dict[str, str] | None = None) -> None:
        self.draft = draft
        self.replies = dict(replies or {})
        self.messages: list[list[dict[str, str]]] = []

    def load(self) -> None:
        pass

    def _reply(self, messages) -> str:
        from rag.prompts import request_kind

        last = messages[-1]["content"]
        if last in self.replies:
            return self.replies[last]
        return last if request_kind(messages) != "answer" else self.draft

    def stream(self, messages, stop: threading.Event | None = None):
        self.messages.append(messages)
        words = self._reply(messages).split(" ")
        for i, word in enumerate(words):
            yield word + (" " if i < len(words) - 1 else "")


class StoppableGenerator(FakeGenerator):
    """Writes word by word, ends when the stop event is set, and can pause
    after its first word so a test can act in the middle of an answer."""

    def __init__(self, draft: str) -> None:
        super().__init__(draft)
        self.first_word_out = threading.Event()
        self.go_on = threading.Event()
        self.go_on.set()

    def stream(self, messages, stop: threading.Event | None = None):
        for i, piece in enumerate(super().stream(messages, stop)):
            if stop is not None and stop.is_set():
                return
            yield piece
            if i == 0:
                self.first_word_out.set()
                self.go_on.wait(10)


class BrokenGenerator(FakeGenerator):
    def stream(self, messages, stop=None):
        raise RuntimeError("CUDA out of memory at 0x7f")  # an unexpected error with internals in it
        yield  # pragma: no cover


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project folder with a copy of the seed articles and no index."""
    shutil.copytree(SEEDS, tmp_path / "seeds")
    return tmp_path


@pytest.fixture
def settings(project: Path) -> config.Settings:
    return config.load(root=project, config_file=project / "none.toml", min_dense_score=0.0,
                       min_question_coverage=0.0)
