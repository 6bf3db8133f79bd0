"""The chat's HTML: escaping, chips, quotes marked in their paragraph."""

from rag.types import Answer, Chunk, Citation, Passage
from rag.view import ArticleShelf, Turn, quote_in_context, render_articles, render_chat

ARTICLE = "Title line\nFirst sentence here. Japan recorded +0.54. Last one.\nNext paragraph."


def citation(quote: str, text: str = ARTICLE, marker: int = 1, doc_id: str = "doc") -> Citation:
    start = text.index(quote)
    return Citation(marker, doc_id, "A <b>title</b>", quote, start, start + len(quote), f"{doc_id}#abc")


def passage(doc_id: str = "doc", text: str = "First sentence here. Japan recorded +0.54.", rank: int = 1) -> Passage:
    return Passage(Chunk(f"{doc_id}#abc", doc_id, text, 11, 11 + len(text)), "A <b>title</b>", 0.03, rank, 0.7, 3.2)


def test_quote_is_marked_inside_its_paragraph_only():
    html = quote_in_context(ARTICLE, citation("Japan recorded +0.54."))
    assert html == "First sentence here. <mark>Japan recorded +0.54.</mark> Last one."


def test_a_long_paragraph_is_cut_to_a_window_at_spaces():
    text = "word " * 400 + "Japan recorded +0.54. " + "more " * 400
    html = quote_in_context(text, citation("Japan recorded +0.54.", text))
    assert html.startswith("…word") and html.endswith("more…") and len(html) < 800


def test_a_changed_or_missing_article_shows_the_quote_alone():
    c = citation("Japan recorded +0.54.")
    assert quote_in_context(ARTICLE.replace("Japan", "Korea"), c) == "<mark>Japan recorded +0.54.</mark>"
    assert quote_in_context(None, c) == "<mark>Japan recorded +0.54.</mark>"


def test_everything_from_users_models_and_articles_is_escaped(tmp_path):
    shelf = ArticleShelf(tmp_path, 1000)
    answer = Answer("q", "<script>x</script> Japan recorded +0.54 [1] and [7].", False,
                    citations=(citation("Japan recorded +0.54."),), passages=(passage(),), model="m")
    page = render_chat([Turn("<img src=x onerror=alert(1)>", "<img src=x onerror=alert(1)>", answer=answer)], shelf)
    assert "<script>" not in page and "<img" not in page and "<b>title</b>" not in page
    assert "&lt;script&gt;" in page and "A &lt;b&gt;title&lt;/b&gt;" in page
    # [1] has a source and becomes a chip; [7] has none and stays text.
    assert 'data-target="t0-s1"' in page and "[7]" in page and 't0-s7' not in page


def test_a_draft_points_its_chips_at_the_passages(tmp_path):
    turn = Turn("q", "q", passages=(passage(), passage(rank=2)), draft="Japan recorded +0.54 [2]", status="Writing…")
    page = render_chat([turn], ArticleShelf(tmp_path, 1000))
    assert 'data-target="t0-p2"' in page and 'data-source="t0-p2"' in page and "Writing…" in page


def test_quote_context_comes_from_the_article_file(tmp_path):
    (tmp_path / "doc.txt").write_text(ARTICLE, encoding="utf-8")
    (tmp_path / "metadata.toml").write_text('[doc]\ntitle = "T"\ndate = "2024-04-17"\npublisher = "AJU"\n')
    answer = Answer("q", "Japan recorded +0.54 [1].", False, citations=(citation("Japan recorded +0.54."),),
                    passages=(passage(),), timings={"retrieve": 0.012, "total": 7.3}, model="m")
    shelf = ArticleShelf(tmp_path, 1000)
    page = render_chat([Turn("q", "q", answer=answer)], shelf)
    assert "First sentence here. <mark>Japan recorded +0.54.</mark> Last one." in page
    assert "2024-04-17 · AJU" in page and "passage rank 1 of 1" in page
    assert "m · retrieve 0.01 s · total 7.3 s" in page
    assert "2024-04-17 · AJU" in render_articles({"doc": "T"}, shelf) and "1 article in the index" in \
        render_articles({"doc": "T"}, shelf)


def test_empty_chat_has_a_welcome(tmp_path):
    assert "Ask a question" in render_chat([], ArticleShelf(tmp_path, 1000))


def test_a_translated_question_shows_the_english_it_was_answered_as(tmp_path):
    answer = Answer("일본은?", "일본은 +0.54를 기록했습니다 [1].", False, citations=(citation("Japan recorded +0.54."),),
                    passages=(passage(),), model="m", asked="What did <Japan> record?")
    page = render_chat([Turn("일본은?", "일본은?", answer=answer)], ArticleShelf(tmp_path, 1000))
    assert "Read in English as: “What did &lt;Japan&gt; record?”" in page
    plain = Answer("q", "Japan recorded +0.54 [1].", False, citations=(citation("Japan recorded +0.54."),),
                   passages=(passage(),), model="m")
    assert "Read in English as" not in render_chat([Turn("q", "q", answer=plain)], ArticleShelf(tmp_path, 1000))
