import faiss
import numpy as np
import pytest

from rag.errors import IndexLoadError, IndexWriteError
from rag.index import IndexStore, build_index, stale_reasons
from rag.ingest import load_corpus

from .conftest import HashEmbedder


def _build(settings, embedder, previous=None):
    articles, _ = load_corpus(settings.seeds_dir, settings.max_article_bytes)
    return articles, build_index(articles, embedder, settings.chunk_max_chars, settings.chunk_min_chars,
                                 settings.flat_index_max_chunks, previous=previous)


def test_round_trip(settings):
    embedder = HashEmbedder()
    articles, built = _build(settings, embedder)
    store = IndexStore(settings.index_dir)
    store.save(built)
    loaded = store.load()
    assert [c.chunk_id for c in loaded.chunks] == [c.chunk_id for c in built.chunks]
    assert loaded.chunks == built.chunks
    assert np.array_equal(loaded.vectors, built.vectors)
    assert loaded.manifest["embedding_hash"] == embedder.model_hash
    assert loaded.manifest["documents"]["002_f3264cf3099be723"]["date"] == "2024-04-17"
    assert stale_reasons(loaded, articles, embedder, settings.chunk_max_chars, settings.chunk_min_chars) == []
    top = loaded.search(embedder.encode(["Japan net inflow 0.54"])[0], 3)
    assert len(top) == 3 and top[0][1] >= top[1][1]


def test_staleness_detects_articles_and_model(settings):
    embedder = HashEmbedder()
    articles, built = _build(settings, embedder)
    args = (settings.chunk_max_chars, settings.chunk_min_chars)
    changed = articles[:-1]
    assert stale_reasons(built, changed, embedder, *args) == ["1 article removed"]
    assert "another embedding model" in stale_reasons(built, articles, HashEmbedder(salt="v2"), *args)[0]
    assert stale_reasons(built, articles, embedder, 300, 100) == ["chunking settings changed"]


def test_changed_article_replaces_exactly_its_own_chunks(settings):
    embedder = HashEmbedder()
    articles, first = _build(settings, embedder)
    path = settings.seeds_dir / "002_f3264cf3099be723.txt"
    path.write_text(path.read_text(encoding="utf-8").replace("10.26 AI patents", "10.27 AI patents"),
                    encoding="utf-8")
    embedder.calls.clear()
    _, second = _build(settings, embedder, previous=first)
    assert embedder.calls == [1]  # only the edited chunk was embedded again
    old, new = {c.chunk_id for c in first.chunks}, {c.chunk_id for c in second.chunks}
    assert {i.split("#")[0] for i in old ^ new} == {"002_f3264cf3099be723"}
    assert len(old - new) == len(new - old) == 1


def test_large_corpus_gets_an_approximate_index(settings):
    embedder = HashEmbedder()
    articles, _ = load_corpus(settings.seeds_dir, settings.max_article_bytes)
    built = build_index(articles, embedder, 450, 120, flat_index_max_chunks=10)
    assert isinstance(built.faiss_index, faiss.IndexHNSWFlat)
    query = built.vectors[7]
    assert built.search(query, 1)[0][0] == 7


def test_crash_mid_save_leaves_previous_index_intact(settings, monkeypatch):
    embedder = HashEmbedder()
    store = IndexStore(settings.index_dir)
    _, first = _build(settings, embedder)
    store.save(first)
    (settings.seeds_dir / "004_8845b63d3c664428.txt").unlink()
    _, second = _build(settings, embedder, previous=first)

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(faiss, "write_index", crash)
    with pytest.raises(IndexWriteError, match="disk full"):
        store.save(second)
    loaded = store.load()
    assert len(loaded.chunks) == len(first.chunks)
    assert [p.name for p in settings.index_dir.iterdir() if p.name.startswith(".tmp")] == []


@pytest.mark.parametrize("damage", ["manifest", "chunks", "faiss", "current", "count"])
def test_damaged_index_gets_a_clear_error(settings, damage):
    store = IndexStore(settings.index_dir)
    store.save(_build(settings, HashEmbedder())[1])
    version = settings.index_dir / (settings.index_dir / "CURRENT").read_text().strip()
    if damage == "manifest":
        (version / "manifest.json").write_text("{not json")
    elif damage == "chunks":
        (version / "chunks.jsonl").write_text('{"chunk_id": 1}\n')
    elif damage == "faiss":
        (version / "faiss.index").write_bytes(b"garbage")
    elif damage == "current":
        (settings.index_dir / "CURRENT").write_text("v-missing\n")
    else:
        lines = (version / "chunks.jsonl").read_text().splitlines(keepends=True)
        (version / "chunks.jsonl").write_text("".join(lines[:-1]))
    with pytest.raises(IndexLoadError, match="rag index --rebuild"):
        store.load()


def test_missing_index_says_how_to_build(settings):
    with pytest.raises(IndexLoadError, match="run `rag index`"):
        IndexStore(settings.index_dir).load()


def test_an_index_whose_vectors_embed_another_text_is_rebuilt_whole(settings):
    # An index built from chunks embedded with their title (or any other
    # recipe) has the same model hash but vectors that do not compare.
    embedder = HashEmbedder()
    articles, built = _build(settings, embedder)
    built.manifest["embedded_text"] = "sentence before + chunk"
    args = (settings.chunk_max_chars, settings.chunk_min_chars)
    assert stale_reasons(built, articles, embedder, *args) == ["its vectors embed another text than the chunks"]
    embedder.calls.clear()
    _build(settings, embedder, previous=built)
    assert sum(embedder.calls) == len(built.chunks)  # nothing reused
