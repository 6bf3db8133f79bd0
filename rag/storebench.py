"""`rag bench --stores N`: dense search in FAISS and Milvus Lite, and BM25, on a synthetic corpus.

N random unit vectors of the embedding's dimension stand in for chunk vectors,
and N texts of made-up words (Zipf-distributed, chunk-sized) for their texts.
Each store runs the project's own code path (FaissStore, MilvusDatabase and
MilvusStore, bm25s as Retriever uses it) in a fresh child process, so its
memory figure is its own and no store warms another's caches. Queries are
single, k=20, one thread, as a question is searched. Figures only; it never
fails on time. docs/scale.md reads these figures.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

DIMENSION = 384  # all-MiniLM-L6-v2, the project's embedding
QUERIES = 200
K = 20  # candidates_k: what dense and BM25 search each return per question
STORES = ("faiss-flat", "faiss-hnsw", "milvus-lite", "bm25")
# Synthetic chunk texts: about 450 characters (chunk_max_chars) of words drawn
# from a vocabulary with a Zipf tail, as news text has; a few figures and years.
_WORDS_PER_CHUNK = 65
_VOCABULARY = 40_000
_QUERY_TERMS = 8
_CHILD_TIMEOUT_S = 3600


def main(n_chunks: int, out: Path | None, flat_max: int, seed: int = 0) -> int:
    """Measure every store on `n_chunks` synthetic chunks and print the table."""
    from .bench import machine_info

    report: dict[str, Any] = {"n_chunks": n_chunks, "dimension": DIMENSION, "queries": QUERIES, "k": K,
                              "seed": seed, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                              "machine": {k: v for k, v in machine_info().items() if k != "torch"}, "stores": {}}
    with tempfile.TemporaryDirectory(prefix="rag-storebench-") as work:
        for store in STORES:
            report["stores"][store] = _run_child(store, n_chunks, flat_max, seed, Path(work))
    print_report(report)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=1), encoding="utf-8")
        print(f"wrote {out}")
    return 0


def _run_child(store: str, n_chunks: int, flat_max: int, seed: int, work: Path) -> dict[str, Any]:
    command = [sys.executable, "-m", "rag.storebench", store, str(n_chunks), str(flat_max), str(seed), str(work)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=_CHILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return {"error": f"did not finish in {_CHILD_TIMEOUT_S} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        return {"error": (done.stderr.strip().splitlines() or ["no output"])[-1][:200]}
    return json.loads(lines[-1])


# --- synthetic corpus -----------------------------------------------------------


def unit_vectors(n: int, seed: int) -> np.ndarray:
    """(n, DIMENSION) float32, L2-normalised, like the embedder's output."""
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, DIMENSION), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def query_vectors(vectors: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(queries, the row each was made from): each query is near its own
    chunk (cosine about 0.7), as a question is near its answer."""
    rng = np.random.default_rng(seed + 1)
    rows = rng.choice(len(vectors), size=QUERIES, replace=len(vectors) < QUERIES)
    noise = rng.standard_normal((QUERIES, DIMENSION), dtype=np.float32)
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    queries = vectors[rows] + noise
    return queries / np.linalg.norm(queries, axis=1, keepdims=True), rows


def chunk_texts(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed + 2)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    lengths = rng.integers(3, 11, size=_VOCABULARY)
    words = ["".join(rng.choice(letters, size=length)) for length in lengths]
    # Zipf rank-frequency over the vocabulary, as in natural text.
    weights = 1.0 / np.arange(1, _VOCABULARY + 1) ** 1.1
    picks = rng.choice(_VOCABULARY, size=(n, _WORDS_PER_CHUNK), p=weights / weights.sum())
    figures = rng.integers(0, 10_000, size=(n, 2))
    return [" ".join(words[i] for i in row) + f" {a / 100:.2f} in {1990 + b % 35}."
            for row, (a, b) in zip(picks, figures)]


# --- one store, in a child process ------------------------------------------------


def measure(store: str, n_chunks: int, flat_max: int, seed: int, work: Path) -> dict[str, Any]:
    if store == "bm25":
        return _measure_bm25(n_chunks, seed)
    import faiss

    from .index import FLAT_KIND, HNSW_KIND, FaissStore, _index_kind, _make_faiss

    vectors = unit_vectors(n_chunks, seed)
    queries, own_rows = query_vectors(vectors, seed)
    exact = _exact_top(vectors, queries)
    connect_s = None
    if store == "milvus-lite":
        # Imported and started before the clock and the memory baseline: the
        # figures are the collection's, not the client's or the engine's own.
        from .milvus_store import MilvusDatabase

        folder = work / "milvus.db"
        shutil.rmtree(folder, ignore_errors=True)
        database = MilvusDatabase(str(folder))
        started = time.perf_counter()
        database.client  # starts Milvus Lite in this process
        connect_s = time.perf_counter() - started
    gc.collect()
    before = _rss_mb()
    started = time.perf_counter()
    if store in ("faiss-flat", "faiss-hnsw"):
        kind = FLAT_KIND if store == "faiss-flat" else HNSW_KIND
        searcher = FaissStore(_make_faiss(vectors, kind))
        label = kind
    elif store == "milvus-lite":
        kind = _index_kind(n_chunks, flat_max)
        searcher = database.create("rag_bench", vectors, kind)
        _wait_for_lite_index(str(folder), "rag_bench")
        label = f"{'FLAT' if kind == FLAT_KIND else 'HNSW'} (Milvus Lite {_version('milvus-lite')})"
    else:
        raise ValueError(f"unknown store {store!r}")
    build_s = time.perf_counter() - started
    gc.collect()
    rss_mb = _rss_mb() - before
    # Built as the project builds (FAISS with all cores), searched as
    # Retriever searches: one thread (see retrieve.py).
    faiss.omp_set_num_threads(1)
    if store == "milvus-lite":
        index_mb = _folder_mb(folder)
    else:  # what faiss.index would take on disk
        index_mb = len(faiss.serialize_index(searcher.index)) / 2**20
    times, found = [], []
    for query in queries:
        started = time.perf_counter()
        hits = searcher.search(query[None, :], K)[0]
        times.append(time.perf_counter() - started)
        found.append([i for i, _ in hits])
    recall = float(np.mean([len(set(f) & set(e)) / K for f, e in zip(found, exact)]))
    own = float(np.mean([row in f for row, f in zip(own_rows, found)]))
    return {"index": label, "build_s": build_s, **_latency(times), "rss_delta_mb": rss_mb, "index_mb": index_mb,
            f"recall_at_{K}": recall, "own_chunk_found": own, "engine_start_s": connect_s}


def _wait_for_lite_index(folder: str, name: str) -> None:
    """Wait until Milvus Lite has built its index. It builds in a background
    thread after a flush and searches exactly meanwhile, while its
    describe_index already says "Finished"; only its engine knows (an
    internal call, as milvus_lite's own tests drain it)."""
    from milvus_lite import server_manager_instance

    _, db, _ = server_manager_instance._servers[os.path.abspath(folder)]
    db.get_collection(name)._wait_for_bg()


def _measure_bm25(n_chunks: int, seed: int) -> dict[str, Any]:
    import bm25s

    from .text import terms

    texts = chunk_texts(n_chunks, seed)
    before = _rss_mb()
    started = time.perf_counter()
    chunk_terms = [terms(t) for t in texts]  # as Retriever.__init__ does
    tokenize_s = time.perf_counter() - started
    started = time.perf_counter()
    bm25 = bm25s.BM25()
    bm25.index(chunk_terms, show_progress=False)
    index_s = time.perf_counter() - started
    gc.collect()
    rss_mb = _rss_mb() - before
    rng = np.random.default_rng(seed + 3)
    questions = [list(dict.fromkeys(rng.choice(chunk_terms[i], size=_QUERY_TERMS)))
                 for i in rng.integers(0, n_chunks, size=QUERIES)]
    times = []
    for question in questions:
        started = time.perf_counter()
        known = [t for t in question if t in bm25.vocab_dict]
        scores = np.asarray(bm25.get_scores(known), dtype=np.float32)  # as Retriever._lexical_scores
        top = np.argsort(-scores, kind="stable")[:K]  # as Retriever._top
        times.append(time.perf_counter() - started)
        assert len(top) == min(K, n_chunks)
    return {"index": f"bm25s {_version('bm25s')}", "build_s": tokenize_s + index_s, "tokenize_s": tokenize_s,
            "index_s": index_s, **_latency(times), "rss_delta_mb": rss_mb, "index_mb": None,
            "vocabulary": len(bm25.vocab_dict)}


def _exact_top(vectors: np.ndarray, queries: np.ndarray) -> list[list[int]]:
    scores = queries @ vectors.T
    return [list(np.argsort(-row, kind="stable")[:K]) for row in scores]


def _latency(times: list[float]) -> dict[str, float]:
    from .bench import percentile

    return {"query_p50_ms": 1000 * percentile(times, 50), "query_p95_ms": 1000 * percentile(times, 95)}


def _rss_mb() -> float:
    """Resident memory now (not the peak): what a store keeps after its build."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


def _version(package: str) -> str:
    from .bench import _version as version

    return version(package)


# --- the table --------------------------------------------------------------------


def print_report(report: dict[str, Any]) -> None:
    n, m = report["n_chunks"], report["machine"]
    print(f"rag bench --stores · {n:,} synthetic chunks · {DIMENSION}-d float32 vectors "
          f"({n * DIMENSION * 4 / 2**20:.0f} MiB) · {report['queries']} single queries, k={report['k']}, one thread · "
          f"{m['cpus']} CPUs · load average {m['load_average'][0]:.1f}")
    header = f"{'store':<13}{'index':<30}{'build s':>9}{'p50 ms':>9}{'p95 ms':>9}{'RSS +MiB':>10}{'files MiB':>10}" \
             f"{'recall@' + str(report['k']):>11}{'own found':>10}"
    print(header)
    print("-" * len(header))
    for name, r in report["stores"].items():
        if "error" in r:
            print(f"{name:<13}error: {r['error']}")
            continue
        files = f"{r['index_mb']:.0f}" if r.get("index_mb") is not None else "-"
        recall, own = r.get(f"recall_at_{report['k']}"), r.get("own_chunk_found")
        print(f"{name:<13}{r['index'][:29]:<30}{r['build_s']:>9.1f}{r['query_p50_ms']:>9.2f}{r['query_p95_ms']:>9.2f}"
              f"{r['rss_delta_mb']:>10.0f}{files:>10}{f'{recall:.3f}' if recall is not None else '-':>11}"
              f"{f'{own:.3f}' if own is not None else '-':>10}")
    milvus = report["stores"].get("milvus-lite", {})
    if milvus.get("engine_start_s") is not None:
        print(f"milvus-lite: the engine started in {milvus['engine_start_s']:.1f} s before the build (not counted); "
              "build = insert + flush + its background index build; queries go through gRPC on a loopback port")
    bm25 = report["stores"].get("bm25", {})
    if "tokenize_s" in bm25:
        print(f"bm25: build = tokenizing with rag.text.terms {bm25['tokenize_s']:.1f} s + bm25s index "
              f"{bm25['index_s']:.1f} s; {bm25['vocabulary']:,} terms; a query scores every chunk, as Retriever does")
    print(f"recall@{report['k']}: share of the exact top {report['k']} found; own found: share of queries whose "
          "own chunk is among the hits. Random vectors are the worst case for a graph index's recall (the 19 "
          "neighbours after the own chunk are near-ties); figures are noisy while other processes share the cores.")


def _child(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m rag.storebench")
    parser.add_argument("store", choices=STORES)
    parser.add_argument("n_chunks", type=int)
    parser.add_argument("flat_max", type=int)
    parser.add_argument("seed", type=int)
    parser.add_argument("work", type=Path)
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.store, args.n_chunks, args.flat_max, args.seed, args.work)))
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
