"""The Milvus vector store: the retrieval tests of tests/test_retrieve.py run
again on an index searched by Milvus Lite, and the store keeps its collections
in step with the index versions.

Two Milvus Lite engines serve the whole module (each starts a gRPC server in
this process): one holds the shared seed-corpus index the retrieval tests
search, the other the collections of the tests that save and load.
"""

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest
from milvus_lite import server_manager_instance

from rag import Assistant, config
from rag.errors import ConfigError, IndexLoadError, IndexWriteError
from rag.index import FaissStore, IndexStore, build_index, milvus_uri
from rag.ingest import load_corpus
from rag.milvus_store import MilvusDatabase, MilvusStore, collection_name
from rag.retrieve import Retriever

from . import test_retrieve
from .conftest import ROOT, SEEDS, FakeGenerator, HashEmbedder


def _articles():
    return load_corpus(SEEDS, 2_000_000)[0]


@pytest.fixture(scope="module")
def lite(tmp_path_factory):
    """A Milvus Lite engine for the tests that save and load (one index folder at a time)."""
    uri = str(tmp_path_factory.mktemp("lite") / "store.db")
    yield uri
    server_manager_instance.release_server(uri)


@pytest.fixture(scope="module")
def milvus_index(tmp_path_factory):
    """The seed corpus indexed with the fake embedder, saved to Milvus Lite
    and loaded back: what `rag ask` searches with vector_store = "milvus"."""
    folder = tmp_path_factory.mktemp("shared-index")
    store = IndexStore(folder, "milvus")
    store.save(build_index(_articles(), HashEmbedder(), 450, 120, 50_000))
    yield store.load()
    server_manager_instance.release_server(str(folder / "milvus.db"))


@pytest.fixture
def on_milvus(milvus_index, monkeypatch):
    """test_retrieve's tests, with their retriever searching Milvus."""
    texts = {a.doc_id: a.text for a in _articles()}

    def retriever(settings, embedder):
        assert isinstance(milvus_index.store, MilvusStore)
        return Retriever(milvus_index, embedder, candidates_k=20, rrf_k=60, article_texts=texts)

    monkeypatch.setattr(test_retrieve, "_retriever", retriever)


_LEXICAL = test_retrieve.test_numbers_names_and_years_are_found_lexically
_CASES = next(m.args[1] for m in _LEXICAL.pytestmark if m.name == "parametrize")


@pytest.mark.parametrize("question, needle", _CASES)
def test_numbers_names_and_years_are_found_lexically_on_milvus(on_milvus, settings, question, needle):
    _LEXICAL(settings, question, needle)


@pytest.mark.parametrize("test", [
    test_retrieve.test_passages_are_ranked_with_scores,
    test_retrieve.test_a_chunk_that_continues_a_chosen_one_comes_right_after_it,
    test_retrieve.test_a_question_about_the_articles_gets_each_articles_best_chunk,
    test_retrieve.test_article_terms_hold_every_chunk_and_the_byline,
    test_retrieve.test_empty_index_and_unknown_terms,
], ids=lambda test: test.__name__)
def test_retrieval_tests_pass_on_milvus(on_milvus, settings, test):
    test(settings)


def test_milvus_finds_what_faiss_finds(milvus_index):
    embedder = HashEmbedder()
    faiss_index = build_index(_articles(), embedder, 450, 120, 50_000)
    for question in ["Japan net inflow 0.54", "Korea AI talent outflow", "Sakana", "the EU budget for researchers",
                     "Who wrote about Bae Gyeong-hun?", "zzzz"]:
        query = embedder.encode([question])[0]
        ours, theirs = milvus_index.search(query, 20), faiss_index.search(query, 20)
        assert np.allclose([s for _, s in ours], [s for _, s in theirs], atol=1e-5), question
        # The fake embedder ties many chunks; each engine may order a tie
        # its own way, and the last tie may be cut at k differently.
        last = theirs[-1][1]
        assert {i for i, s in ours if s > last + 1e-5} == {i for i, s in theirs if s > last + 1e-5}, question


# --- the store and the index versions ---------------------------------------------


def _version(folder):
    return (folder / "CURRENT").read_text().strip()


def _collections(uri):
    return set(MilvusDatabase(uri).client.list_collections())


def test_save_fills_a_collection_named_by_the_version(tmp_path, lite):
    embedder = HashEmbedder()
    built = build_index(_articles(), embedder, 450, 120, 50_000)
    store = IndexStore(tmp_path / "index", f"milvus:{lite}")
    store.save(built)
    version = _version(tmp_path / "index")
    assert collection_name(version) in _collections(lite)
    # The version folder holds no FAISS index, and its manifest says where the vectors are searched.
    assert not (tmp_path / "index" / version / "faiss.index").exists()
    assert json.loads((tmp_path / "index" / version / "manifest.json").read_text())["vector_store"] == "milvus"
    # The built index now searches its collection, as the loaded one does.
    assert isinstance(built.store, MilvusStore) and built.faiss_index is None
    loaded = store.load()
    assert isinstance(loaded.store, MilvusStore) and loaded.store.count() == len(loaded.chunks)
    query = embedder.encode(["Japan net inflow 0.54"])[0]
    assert loaded.search(query, 5) == built.search(query, 5)


def test_the_version_before_keeps_its_collection_and_older_ones_go(tmp_path, lite):
    store = IndexStore(tmp_path / "index", f"milvus:{lite}")
    versions = []
    for _ in range(3):
        store.save(build_index(_articles(), HashEmbedder(), 450, 120, 50_000))
        versions.append(_version(tmp_path / "index"))
    # Another process may still answer from the version before; the one before that is gone.
    assert _collections(lite) == {collection_name(v) for v in versions[1:]}
    assert [p.name for p in (tmp_path / "index").iterdir() if p.name.startswith("v-")] == [versions[-1]]


@pytest.mark.parametrize("damage", ["dropped", "incomplete"])
def test_a_missing_or_incomplete_collection_is_made_again_from_the_vectors(tmp_path, lite, caplog, damage):
    embedder = HashEmbedder()
    store = IndexStore(tmp_path / "index", f"milvus:{lite}")
    store.save(build_index(_articles(), embedder, 450, 120, 50_000))
    name = collection_name(_version(tmp_path / "index"))
    client = MilvusDatabase(lite).client
    if damage == "dropped":  # a new cluster, say, or one wiped
        client.drop_collection(name)
    else:  # a crash mid-insert
        client.delete(name, ids=[0, 1, 2])
    loaded = IndexStore(tmp_path / "index", f"milvus:{lite}").load()
    assert "missing or incomplete" in caplog.text
    assert loaded.store.count() == len(loaded.chunks)
    assert loaded.search(loaded.vectors[1], 1)[0][0] == 1


def test_the_setting_can_change_either_way(tmp_path, lite):
    embedder = HashEmbedder()
    query = embedder.encode(["Korea's -0.30 outflow"])[0]
    expected = build_index(_articles(), embedder, 450, 120, 50_000).search(query, 10)
    folder = tmp_path / "index"
    IndexStore(folder, f"milvus:{lite}").save(build_index(_articles(), embedder, 450, 120, 50_000))
    # FAISS reads a version saved to Milvus: it makes its index from the vectors.
    on_faiss = IndexStore(folder).load()
    assert on_faiss.store is None and on_faiss.search(query, 10) == expected
    assert isinstance(on_faiss.store, FaissStore)
    # Milvus reads a version saved with FAISS: it fills the version's collection.
    IndexStore(folder).save(build_index(_articles(), embedder, 450, 120, 50_000))
    on_milvus = IndexStore(folder, f"milvus:{lite}").load()
    assert isinstance(on_milvus.store, MilvusStore)
    assert [i for i, _ in on_milvus.search(query, 10)] == [i for i, _ in expected]


def test_a_large_index_gets_an_hnsw_collection(tmp_path, lite):
    built = build_index(_articles(), HashEmbedder(), 450, 120, flat_index_max_chunks=10)
    store = IndexStore(tmp_path / "index", f"milvus:{lite}")
    store.save(built)
    name = collection_name(_version(tmp_path / "index"))
    index = MilvusDatabase(lite).client.describe_index(name, "vector")
    assert index["index_type"] == "HNSW" and index["metric_type"] == "IP"
    assert index["params"] == {"M": 32, "efConstruction": 40}  # as FAISS's graph
    assert store.load().search(built.vectors[7], 1)[0][0] == 7


def test_a_failed_write_to_milvus_leaves_the_previous_index_live(tmp_path, lite, monkeypatch):
    store = IndexStore(tmp_path / "index", f"milvus:{lite}")
    first = build_index(_articles(), HashEmbedder(), 450, 120, 50_000)
    store.save(first)
    live = _version(tmp_path / "index")

    def refuse(self, vectors):
        raise IndexWriteError(f"vectors cannot be written to the Milvus collection {self.name} (disk full)")

    monkeypatch.setattr(MilvusStore, "add", refuse)
    second = build_index(_articles()[:-1], HashEmbedder(), 450, 120, 50_000)
    with pytest.raises(IndexWriteError, match="disk full"):
        store.save(second)
    assert _version(tmp_path / "index") == live
    assert _collections(lite) == {collection_name(live)}  # the half-made collection went too
    assert len(store.load().chunks) == len(first.chunks)
    assert [p.name for p in (tmp_path / "index").iterdir() if p.name.startswith(".tmp")] == []


def test_the_assistant_searches_the_configured_store(settings, lite):
    settings = dataclasses.replace(settings, vector_store=f"milvus:{lite}")
    assistant = Assistant(settings, embedder=HashEmbedder(),
                          generator=FakeGenerator("Japan recorded a net inflow of +0.54 [1]."))
    answer = assistant.ask("What was Japan's net AI talent inflow per 10,000 people in 2023?")
    assert not answer.refused and answer.citations[0].doc_id == "004_8845b63d3c664428"
    assert isinstance(assistant._retriever.index.store, MilvusStore)
    # A second Assistant finds the index up to date and searches the same collection.
    again = Assistant(settings, embedder=HashEmbedder(), generator=FakeGenerator("x"))
    assert again.index().startswith("index is up to date")
    assert again._retriever.index.store.name == assistant._retriever.index.store.name


def test_an_empty_index_in_milvus(tmp_path, lite):
    store = IndexStore(tmp_path / "index", f"milvus:{lite}")
    store.save(build_index([], HashEmbedder(), 450, 120, 50_000))
    loaded = store.load()
    assert loaded.store.count() == 0 and loaded.search(np.ones(64, np.float32), 3) == []
    assert Retriever(loaded, HashEmbedder()).retrieve("anything", 3) == []


# --- settings and errors ----------------------------------------------------------


def test_the_setting_names_faiss_milvus_lite_or_a_uri(project, monkeypatch, tmp_path):
    assert config.load(root=project, config_file=project / "none.toml").vector_store == "faiss"
    monkeypatch.setenv("RAG_VECTOR_STORE", "milvus:http://milvus:19530")
    assert config.load(root=project, config_file=project / "none.toml").vector_store == "milvus:http://milvus:19530"
    for bad in ("chroma", "milvus:", "Milvus"):
        with pytest.raises(ConfigError, match="vector_store"):
            config.load(root=project, config_file=project / "none.toml", vector_store=bad)
    assert milvus_uri("faiss", tmp_path) is None
    assert milvus_uri("milvus", tmp_path) == str(tmp_path / "milvus.db")
    assert milvus_uri("milvus:/data/x.db", tmp_path) == "/data/x.db"


def test_an_unreachable_server_is_one_sentence(tmp_path):
    folder = tmp_path / "index"
    IndexStore(folder).save(build_index(_articles(), HashEmbedder(), 450, 120, 50_000))
    # Port 1 on the loopback: nothing listens there.
    with pytest.raises(IndexLoadError, match=r"the Milvus server at http://127.0.0.1:1 cannot be reached .* "
                                             r"set vector_store = \"faiss\""):
        IndexStore(folder, "milvus:http://127.0.0.1:1").load()


def test_a_lite_folder_another_process_holds_is_one_sentence(tmp_path):
    held = tmp_path / "held.db"
    holder = subprocess.Popen([sys.executable, "-c", "import sys; from pymilvus import MilvusClient; "
                               f"c = MilvusClient({str(held)!r}); print('ready', flush=True); sys.stdin.read()"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        folder = tmp_path / "index"
        IndexStore(folder).save(build_index(_articles(), HashEmbedder(), 450, 120, 50_000))
        with pytest.raises(IndexLoadError, match="another process has the Milvus Lite database .* open"):
            IndexStore(folder, f"milvus:{held}").load()
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


# --- the benchmark ----------------------------------------------------------------


def test_bench_stores_runs_small_and_prints_every_store(tmp_path):
    out = tmp_path / "stores.json"
    done = subprocess.run([sys.executable, "-m", "rag.bench", "--stores", "1500", "--out", str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert report["n_chunks"] == 1500 and report["queries"] == 200 and report["k"] == 20
    for name in ("faiss-flat", "faiss-hnsw", "milvus-lite", "bm25"):
        figures = report["stores"][name]
        assert "error" not in figures, figures
        assert figures["build_s"] > 0 and 0 < figures["query_p50_ms"] <= figures["query_p95_ms"]
        assert any(line.startswith(name) for line in done.stdout.splitlines())
    # Exact search is exact; the others find most of its neighbours.
    assert report["stores"]["faiss-flat"]["recall_at_20"] == 1.0
    assert report["stores"]["milvus-lite"]["recall_at_20"] == 1.0  # flat at this size, as FAISS would be
    assert report["stores"]["faiss-hnsw"]["recall_at_20"] > 0.8
    assert report["stores"]["faiss-flat"]["own_chunk_found"] == 1.0


def test_bench_stores_rejects_a_bad_count():
    done = subprocess.run([sys.executable, "-m", "rag.bench", "--stores", "0"], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 2 and "--stores takes a number of chunks" in done.stderr
    assert "Traceback" not in done.stderr
