import pytest

from rag.index import build_index
from rag.ingest import load_corpus
from rag.question import read_question
from rag.retrieve import Retriever

from .conftest import HashEmbedder


def _retriever(settings, embedder):
    articles, _ = load_corpus(settings.seeds_dir, settings.max_article_bytes)
    index = build_index(articles, embedder, 450, 120, 50_000)
    return Retriever(index, embedder, candidates_k=20, rrf_k=60, article_texts={a.doc_id: a.text for a in articles})


@pytest.mark.parametrize("question, needle", [
    ("Which country had +0.54?", "+0.54"),
    ("net inflow 0.54", "+0.54"),
    ("What happened in the first survey in 2019?", "2019"),
    ("Tell me about Sakana", "SakanaAI"),
    ("the 10.26 figure", "10.26"),
    ("Korea's -0.30 outflow", "-0.3"),
    ("What did Bae Gyeong-hun get?", "Bae Gyeong-hun"),
])
def test_numbers_names_and_years_are_found_lexically(settings, question, needle):
    retriever = _retriever(settings, HashEmbedder())
    (best, score), *_ = retriever.lexical(question, 3)
    assert needle in retriever.index.chunks[best].text and score > 0
    # and fusion keeps that chunk among the passages given to the model
    assert any(retriever.index.chunks[best].text in p.chunk.text for p in retriever.retrieve(question, 4))


def test_passages_are_ranked_with_scores(settings):
    passages = _retriever(settings, HashEmbedder()).retrieve("Japan net inflow of AI talent in 2023", 5)
    assert [p.rank for p in passages] == [1, 2, 3, 4, 5]
    assert all(a.score >= b.score for a, b in zip(passages, passages[1:]))
    assert all(-1.0 <= p.dense_score <= 1.0 and p.title for p in passages)
    assert len({p.chunk.chunk_id for p in passages}) == 5


def test_empty_index_and_unknown_terms(settings):
    retriever = _retriever(settings, HashEmbedder())
    assert retriever.retrieve("zzzz qqqq", 3)  # dense search still ranks something
    empty = Retriever(build_index([], HashEmbedder(), 450, 120, 50_000), HashEmbedder())
    assert empty.retrieve("anything", 3) == []


def test_a_chunk_that_continues_a_chosen_one_comes_right_after_it(settings):
    retriever = _retriever(settings, HashEmbedder())
    chunks = retriever.index.chunks
    first = next(i for i, c in enumerate(chunks) if "Korea recorded -0.30 last year" in c.text)
    assert chunks[first + 1].text.startswith("This indicator, which was 0.30 in 2020")
    # It holds the asked year its predecessor lacks, so it comes along ...
    assert retriever._with_continuations(read_question("Korea's HAI indicator in 2020?"), [first]) == [[first, first + 1]]
    # ... but not when it adds none of the question's terms.
    assert retriever._with_continuations(read_question("Korea's HAI survey result last year?"), [first]) == [[first]]
    # The two are one passage, whose text is the article's from the first to the last.
    joined = retriever._joined([first, first + 1])
    article = retriever.article_texts[joined.doc_id]
    assert article[joined.start:joined.end] == joined.text
    assert joined.sentences == chunks[first].sentences + chunks[first + 1].sentences


def test_a_question_about_the_articles_gets_each_articles_best_chunk(settings):
    retriever = _retriever(settings, HashEmbedder())
    question = "How do the articles rank Korea's AI talent outflow?"
    assert len({p.chunk.doc_id for p in retriever.retrieve(question, 4)}) >= 4


def test_each_article_first_keeps_ranked_order():
    from types import SimpleNamespace

    from rag.retrieve import _each_article_first

    chunks = [SimpleNamespace(doc_id=d) for d in "aabbc"]
    assert _each_article_first([0, 1, 2, 3, 4], chunks, 4) == [0, 1, 2, 4]
    assert _each_article_first([0, 1, 2, 3, 4], chunks, 2) == [0, 2]


def test_article_terms_hold_every_chunk_and_the_byline(settings):
    retriever = _retriever(settings, HashEmbedder())
    aju = retriever.article_terms["002_f3264cf3099be723"]
    assert {"aju", "press", "park", "10.26", "luxembourg"} <= aju
    assert "luxembourg" not in retriever.article_terms["004_8845b63d3c664428"]
    assert retriever.common_terms == {"ai", "talent"}


def test_each_method_keeps_its_best_chunk():
    from rag.retrieve import _each_method_first

    # BM25's only hit ranks 6th after fusion; it still takes a place.
    assert _each_method_first([0, 1, 2, 3, 4, 5], [[0], [5]], 4) == [0, 1, 2, 5]
    assert _each_method_first([0, 1, 2, 3], [[1], [1]], 2) == [0, 1]
    assert _each_method_first([0, 1, 2], [[], []], 2) == [0, 1]
