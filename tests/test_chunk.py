import pytest

from rag.chunk import chunk_article
from rag.ingest import content_hash, load_corpus
from rag.types import Article

from .conftest import SEEDS


def _article(text: str, doc_id: str = "doc") -> Article:
    return Article(doc_id, "title", text, content_hash(text))


@pytest.fixture(scope="module")
def seeds():
    articles, problems = load_corpus(SEEDS, 2_000_000)
    assert len(articles) == 5 and not problems
    return articles


def test_offsets_round_trip_for_every_seed(seeds):
    for article in seeds:
        chunks = chunk_article(article, max_chars=450, min_chars=120)
        assert chunks
        for chunk in chunks:
            assert article.text[chunk.start:chunk.end] == chunk.text
            assert chunk.sentences[0][0] == chunk.start and chunk.sentences[-1][1] == chunk.end
            for s, e in chunk.sentences:
                assert article.text[s:e].strip() == article.text[s:e] != ""
        # Every non-blank character of the article is in exactly one chunk.
        covered = "".join(c.text for c in chunks)
        assert "".join(covered.split()) == "".join(article.text.split())


def test_no_sentence_is_cut_and_size_limit_holds(seeds):
    for article in seeds:
        for chunk in chunk_article(article, max_chars=300, min_chars=100):
            assert len(chunk.text) <= 300 or len(chunk.sentences) == 1


def test_chunk_exactly_at_the_limit_stays_whole():
    text = "Aaaa bbbb. Cccc dddd."  # 21 characters, two sentences
    assert [c.text for c in chunk_article(_article(text), max_chars=21, min_chars=1)] == [text]
    assert len(chunk_article(_article(text), max_chars=20, min_chars=1)) == 2


def test_subheading_joins_the_paragraph_it_heads():
    text = "◇ A heading\nThe body sentence is here and it is long enough to stand alone as a chunk."
    chunks = chunk_article(_article(text), max_chars=450, min_chars=40)
    assert len(chunks) == 1 and chunks[0].text == text


def test_ids_are_stable_and_change_only_with_content(seeds):
    article = seeds[0]
    first = [c.chunk_id for c in chunk_article(article, 450, 120)]
    assert first == [c.chunk_id for c in chunk_article(article, 450, 120)]
    assert len(set(first)) == len(first) and all(i.startswith(article.doc_id + "#") for i in first)
    edited = article.text.replace("3.6 AI talents", "3.7 AI talents")
    second = [c.chunk_id for c in chunk_article(_article(edited, article.doc_id), 450, 120)]
    assert len(set(first) - set(second)) == 1  # only the edited chunk has a new id


def test_repeated_text_gets_distinct_ids():
    text = "Same line here.\nSame line here."
    ids = [c.chunk_id for c in chunk_article(_article(text), max_chars=15, min_chars=1)]
    assert len(ids) == 2 and len(set(ids)) == 2
