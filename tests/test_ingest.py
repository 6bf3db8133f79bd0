import pytest

from rag.errors import BadInput, ConfigError
from rag.ingest import load_corpus, read_article

from .conftest import SEEDS


def test_seed_metadata_states_only_what_the_articles_state():
    articles = {a.doc_id: a for a in load_corpus(SEEDS, 2_000_000)[0]}
    assert set(articles) == {"000_9ee447cb686ba3f7", "001_b001572057e29601", "002_f3264cf3099be723",
                             "003_29683098325bf1b6", "004_8845b63d3c664428"}
    assert all(a.title for a in articles.values())
    dated = {d: a.date for d, a in articles.items() if a.date}
    assert dated == {"002_f3264cf3099be723": "2024-04-17", "003_29683098325bf1b6": "2024-04-27"}
    for doc_id, date in dated.items():  # a date is only recorded where the text states it
        assert date in articles[doc_id].text or "April 17, 2024" in articles[doc_id].text
    assert articles["002_f3264cf3099be723"].author == "Park Sae-jin"


def test_seed_files_are_the_shared_originals_unchanged():
    shared = SEEDS.parent.parent / "shared" / "seeds"
    if not shared.is_dir():
        pytest.skip("the shared seed folder is not beside this checkout")
    for original in shared.glob("*.txt"):
        assert (SEEDS / original.name).read_bytes() == original.read_bytes()


@pytest.mark.parametrize("content, message", [
    (b"", "is empty"),
    (b"   \n\t\n", "is empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "binary"),
    (b"caf\xe9 au lait", "not UTF-8"),
    ("Seoul hired 12 AI researchers.".encode("utf-16"), "bad.txt is UTF-16 text — save it as UTF-8"),
    (b"\xff\xfe\x00", "binary"),  # a UTF-16 byte-order mark before bytes that are not UTF-16
])
def test_bad_article_files_get_one_clear_sentence(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(BadInput, match=message):
        read_article(path, max_bytes=1000)


def test_too_large_wrong_suffix_and_missing_files(tmp_path):
    big = tmp_path / "big.txt"
    big.write_text("word " * 500)
    with pytest.raises(BadInput, match="limited to 1,000 bytes"):
        read_article(big, max_bytes=1000)
    pdf = tmp_path / "a.pdf"
    pdf.write_text("text")
    with pytest.raises(BadInput, match="only .txt and .md"):
        read_article(pdf, max_bytes=1000)
    with pytest.raises(BadInput, match="no such file"):
        read_article(tmp_path / "missing.txt", max_bytes=1000)


def test_markdown_heading_and_bom(tmp_path):
    path = tmp_path / "note.md"
    path.write_bytes("\ufeff# Seoul hires AI staff\n\nBody text.".encode("utf-8"))
    article = read_article(path, max_bytes=1000)
    assert article.title == "Seoul hires AI staff" and article.text.startswith("# Seoul")
    assert article.doc_id == "note" and article.date is None


def test_corpus_skips_a_bad_file_and_keeps_the_rest(project):
    (project / "seeds" / "zz_bad.txt").write_bytes(b"\xff\xfe\x00garbage")
    articles, problems = load_corpus(project / "seeds", 2_000_000)
    assert len(articles) == 5 and len(problems) == 1 and "zz_bad.txt" in problems[0]


def test_bad_metadata_is_named(project):
    (project / "seeds" / "metadata.toml").write_text('["x"]\ntitel = "typo"\n')
    with pytest.raises(ConfigError, match="titel"):
        load_corpus(project / "seeds", 2_000_000)
