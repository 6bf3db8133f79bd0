"""Question -> ranked Passages: dense (FAISS) and lexical (BM25) search, fused.

Dense search finds paraphrases; BM25 finds exact numbers, names and years
("0.54", "2019", "Sakana") that embeddings blur. The two rankings are merged
by reciprocal rank fusion, which needs no score calibration between them.
"""

from __future__ import annotations

import functools
import logging
import math
from collections import Counter
from collections.abc import Mapping

import bm25s
import faiss
import numpy as np

from .crosslingual import CrossLingualVectors
from .embed import TextEmbedder
from .hangul import name_keys
from .index import ChunkIndex
from .question import Question, as_question
from .text import main_scripts, points_back, script_of, terms
from .translate import ordinary_words
from .types import Chunk, Passage

log = logging.getLogger(__name__)
# bm25s sets its own logger to DEBUG when imported, which prints a line per
# index build whatever the application configured; hand the choice back.
logging.getLogger("bm25s").setLevel(logging.NOTSET)


def _top_k_with(ranked: list[int], first: list[int], k: int) -> list[int]:
    """`first` (up to k of them), then the best of the rest of `ranked`, in
    `ranked` order."""
    chosen = list(dict.fromkeys(first))[:k]
    chosen += [i for i in ranked if i not in chosen][:k - len(chosen)]
    return [i for i in ranked if i in chosen]


def _each_article_first(ranked: list[int], chunks: list[Chunk], k: int) -> list[int]:
    """The best chunk of each article (up to k), then the best of the rest,
    in `ranked` order."""
    best_of: dict[str, int] = {}
    for i in ranked:
        best_of.setdefault(chunks[i].doc_id, i)
    return _top_k_with(ranked, list(best_of.values()), k)


def _each_method_first(ranked: list[int], heads: list[list[int]], k: int) -> list[int]:
    """The k best of `ranked`, sure to include each method's own best
    (`heads`), in `ranked` order.

    Fusion by rank sums can push out the one chunk BM25 is surest of: the
    only chunk with the question's rare words ("S-level", "SPRi") may rank
    30th by meaning for MiniLM and fall below chunks both methods rank fair.
    """
    return _top_k_with(ranked, [i for head in heads for i in head], k)


class Retriever:
    """Hybrid search over one loaded ChunkIndex.

    Building it tokenises every chunk for BM25 (milliseconds for the seed
    corpus); the embedder is shared with whoever built the index.
    """

    def __init__(self, index: ChunkIndex, embedder: TextEmbedder, candidates_k: int = 20, rrf_k: int = 60,
                 article_texts: Mapping[str, str] | None = None,
                 crosslingual: CrossLingualVectors | None = None) -> None:
        self.index = index
        # Dense search for a question in another script (Korean, say); without
        # it such a question is searched like an English one.
        self.crosslingual = crosslingual
        # The indexed articles' texts (doc id -> text), to join a chunk and
        # its continuation into one passage; without them none is joined.
        self.article_texts = dict(article_texts or {})
        self.embedder = embedder
        self.candidates_k = candidates_k
        self.rrf_k = rrf_k
        self._bm25 = bm25s.BM25()
        chunk_terms = [terms(c.text) for c in index.chunks]
        if index.chunks:
            self._bm25.index(chunk_terms, show_progress=False)
        self._chunk_terms = [frozenset(ts) for ts in chunk_terms]
        self._document_frequency = Counter(t for ts in self._chunk_terms for t in ts)
        self._scripts = main_scripts(self._document_frequency.keys())  # what the articles are written in
        # Terms in at least half the chunks ("AI", "talent" here): the
        # corpus's subject, which pins no claim to a passage (see cite.py).
        self.common_terms = frozenset(t for t, n in self._document_frequency.items()
                                      if n >= 2 and n >= len(chunk_terms) / 2)
        # Every term of each article, with its title, publisher and author:
        # what an article names anywhere (see cite.check_answer).
        found: dict[str, set[str]] = {}
        for chunk, chunk_words in zip(index.chunks, chunk_terms):
            found.setdefault(chunk.doc_id, set()).update(chunk_words)
        self.article_terms: dict[str, frozenset[str]] = {}
        for doc_id, info in index.documents.items():
            byline = " ".join(x for x in (info.title, info.publisher, info.author) if x)
            self.article_terms[doc_id] = frozenset(found.get(doc_id, set()) | set(terms(byline)))

    @functools.cached_property
    def ordinary_words(self) -> frozenset[str]:
        """Words the articles write in lower case: a translated answer may
        translate them, not the names (see translate.ordinary_words). Read on
        the first answer in another language, not with the index."""
        return ordinary_words(c.text for c in self.index.chunks)

    @functools.cached_property
    def name_keys(self) -> dict[str, str]:
        """The articles' names by their sound key, for a Korean question's
        translation to spell them as the articles do (see hangul.py). Read on
        the first such question."""
        return name_keys((c.text for c in self.index.chunks), self.ordinary_words)

    def term_weight(self, term: str) -> float:
        # A term no chunk contains weighs most: it is what the question is about
        # and what the articles lack ("FIFA").
        n = len(self.index.chunks)
        return math.log(1 + n / (self._document_frequency.get(term, 0) + 0.5))

    def coverage(self, question: Question | str, passages: list[Passage]) -> float:
        """Share of the question's terms, weighted by rarity, found in `passages`
        (0..1). Low coverage means the passages are about something else."""
        wanted = as_question(question).term_set
        if not wanted:
            return 0.0
        # Only terms the articles could hold count: a Korean question's Korean
        # words are in no English article, which says nothing of its subject.
        wanted = {t for t in wanted if script_of(t) in self._scripts}
        if not wanted:
            return 1.0  # nothing to compare; the dense score decides
        found = set().union(*(terms(p.chunk.text) for p in passages)) if passages else set()
        total = sum(self.term_weight(t) for t in wanted)
        return sum(self.term_weight(t) for t in wanted & found) / total

    def _lexical_scores(self, question: Question) -> np.ndarray:
        known = [t for t in question.terms if t in self._bm25.vocab_dict]
        if not known:
            return np.zeros(len(self.index.chunks), dtype=np.float32)
        return np.asarray(self._bm25.get_scores(known), dtype=np.float32)

    @staticmethod
    def _top(scores: np.ndarray, k: int) -> list[int]:
        """Positions of the k best positive scores, best first."""
        return [int(i) for i in np.argsort(-scores, kind="stable")[:k] if scores[i] > 0]

    def lexical(self, question: Question | str, k: int) -> list[tuple[int, float]]:
        """BM25 top-k as (chunk position, score), only chunks sharing a term."""
        scores = self._lexical_scores(as_question(question))
        return [(i, float(scores[i])) for i in self._top(scores, k)]

    def _with_continuations(self, question: Question, chosen: list[int]) -> list[list[int]]:
        """`chosen` as groups of chunks read together: each chunk with the
        next chunk of its article when that one opens by pointing back ("This
        indicator, which was 0.30 in 2020, ...") and holds a question term the
        first lacks ("2020"). Its subject is named only in the chunk before,
        so it ranks low on its own while the chunk before ranks high, and a
        claim about it needs both ("Korea's HAI indicator was 0.30 in 2020")."""
        chunks = self.index.chunks
        wanted = question.term_set
        out: list[list[int]] = []
        taken = set(chosen)
        for i in chosen:
            j = i + 1
            if (j < len(chunks) and j not in taken and chunks[j].doc_id == chunks[i].doc_id
                    and chunks[i].doc_id in self.article_texts
                    and chunks[j].start >= chunks[i].end and points_back(chunks[j].text)
                    and wanted & self._chunk_terms[j] - self._chunk_terms[i]):
                taken.add(j)
                out.append([i, j])
            else:
                out.append([i])
        return out

    def _joined(self, group: list[int]) -> Chunk:
        """One chunk spanning the chunks of `group` (neighbours in one article)."""
        parts = [self.index.chunks[i] for i in group]
        if len(parts) == 1:
            return parts[0]
        first, last = parts[0], parts[-1]
        return Chunk(chunk_id="+".join(c.chunk_id for c in parts), doc_id=first.doc_id,
                     text=self.article_texts[first.doc_id][first.start:last.end], start=first.start, end=last.end,
                     sentences=tuple(span for c in parts for span in c.sentences))

    def retrieve(self, question: Question | str, top_k: int) -> list[Passage]:
        """The `top_k` best passages for `question`, best first, each joined
        with the chunk that continues it, if any (see `_with_continuations`).
        A question about "the articles" gets each article's best chunk first,
        so that one article's chunks do not crowd out the others'."""
        question = as_question(question)
        chunks = self.index.chunks
        if not chunks:
            return []
        if question.language and self.crosslingual is not None:
            similarities = self.crosslingual.similarities(question.text)
            dense = [(int(i), float(similarities[i]))
                     for i in np.argsort(-similarities, kind="stable")[:self.candidates_k]]
        else:
            query = self.embedder.encode([question.text])[0]
            # One thread: a single query on a small index ran 40x slower with a
            # two-thread OpenMP pool on 2 cores. Set per search, because the count
            # is per calling thread and shared with torch, which sets its own.
            faiss.omp_set_num_threads(1)
            dense = self.index.search(query, self.candidates_k)
            similarities = None
        lexical_scores = self._lexical_scores(question)

        rankings = ([i for i, _ in dense], self._top(lexical_scores, self.candidates_k))
        fused: dict[int, float] = {}
        for ranking in rankings:
            for rank, position in enumerate(ranking, start=1):
                fused[position] = fused.get(position, 0.0) + 1.0 / (self.rrf_k + rank)
        ranked = sorted(fused, key=lambda i: (-fused[i], i))
        if question.about_the_articles:
            best = _each_article_first(ranked, chunks, top_k)
        else:
            best = _each_method_first(ranked, [ranking[:1] for ranking in rankings], top_k)
        groups = self._with_continuations(question, best)
        # Cosine for every chosen chunk, including those only BM25 found; a
        # joined pair scores as its first chunk, which is the one found.
        firsts = [g[0] for g in groups]
        cosine = similarities[firsts] if similarities is not None else self.index.vectors[firsts] @ query
        return [
            Passage(chunk=self._joined(group), title=self.index.documents[chunks[group[0]].doc_id].title,
                    score=fused.get(group[0], 0.0), rank=rank, dense_score=float(cosine[rank - 1]),
                    lexical_score=float(lexical_scores[group[0]]))
            for rank, group in enumerate(groups, start=1)
        ]
