"""Cited question answering over news articles, offline on a CPU.

>>> from rag import ask
>>> answer = ask("What net AI talent inflow did Japan record in 2023 in the OECD survey?")
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
