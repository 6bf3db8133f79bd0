"""Cited question answering over news articles, offline on a CPU.

>>> from rag import ask
>>> answer = ask("What was Japan's net AI talent inflow per 10,000 people in 2023?")
>>> print(answer.text)          # inline [n] markers
>>> answer.citations[0].quote   # the exact article sentence
"""

from .errors import BadInput, ConfigError, IndexLoadError, ModelLoadError, RagError
from .pipeline import Assistant, ask
from .types import Answer, Article, Chunk, Citation, Passage

__all__ = [
    "Answer", "Article", "Assistant", "BadInput", "Chunk", "Citation", "ConfigError", "IndexLoadError",
    "ModelLoadError", "Passage", "RagError", "ask",
]
