"""The milvus vector backend next to faiss in one run: build time, recall@10 against exact, search latency with and
without a region/status filter (docs/performance.md, "Vectors on Milvus").

Usage:
    .venv/bin/python bench/milvus_vectors.py [--n 100000] [--queries 200] [--variants faiss-flat,...] [--random]

The pool is the synthetic one of `chainmatch bench vector` (bench.perf.pool), embedded with the built-in embedder
into the same resumable store (/tmp/chainmatch-bench/vector-<n>-1/embeddings, reused when present); with --random,
clustered random unit vectors of the same shape stand in (no embedding, for pools too large to embed). Per variant:
build seconds (index + insert of every vector), recall@10 of the exact top 10 (numpy), and wall-clock p50/p95 of
single-query top-100 searches: unfiltered, then filtered to one province's active firms — as an allowed-id list
(every backend) and, on milvus, as a scalar filter on fields stored with each vector ("where": the
matching.vectors.filters.FieldFilter the web app's province + active filter becomes). Embedded milvus runs
Milvus's engine (milvus-lite 2.5.1) as a local process. Prints one JSON object per variant, then a summary.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.perf.machine import Stopwatch, machine_facts, percentiles_ms, work_dir  # noqa: E402

RECALL_K = 10
SEARCH_K = 100  # hits per timed search, as in `chainmatch bench vector`
WARM_QUERIES = 5  # untimed searches first (loading segments, caches)
VARIANTS = ("faiss-flat", "faiss-ivfpq", "milvus-flat", "milvus-ivf")
# --random: clustered random unit vectors instead of the embedded synthetic pool.
RANDOM_DIM = 256
RANDOM_CENTERS = 2000
RANDOM_NOISE = 0.35
RANDOM_CHUNK = 100_000
PROVINCES = 31
ACTIVE_SHARE = 0.8


def _make(variant: str, n: int, dim: int):
    from matching.vectors import KIND_FLAT, KIND_IVFPQ, make_vector_index

    backend, kind = variant.split("-")
    return make_vector_index(n, dim, kind=KIND_FLAT if kind == "flat" else KIND_IVFPQ, backend=backend)


def _timed(index, qvec: np.ndarray, **filters) -> tuple[dict, np.ndarray]:
    """(latency percentiles, top-100 ids per query) of one search per query."""
    for q in qvec[:WARM_QUERIES]:
        index.search(q.reshape(1, -1), SEARCH_K, **filters)
    times, found = [], []
    for q in qvec:
        with Stopwatch() as sw:
            _, ids = index.search(q.reshape(1, -1), SEARCH_K, **filters)
        times.append(sw.seconds)
        found.append(ids[0])
    return percentiles_ms(times), np.array(found)


def _recall(truth: list[np.ndarray], found: np.ndarray) -> float:
    return round(float(np.mean([len(np.intersect1d(t, f[:RECALL_K])) / len(t) for t, f in zip(truth, found)])), 4)


def _embedded(n: int, queries: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]:
    """(vectors, queries, provinces, active, embedder name) of the synthetic pool, embedded (resumable store)."""
    from bench.perf.pool import link_queries, synthetic_pool
    from bench.perf.vector_bench import ensure_embeddings
    from matching import embedding_store

    base = work_dir(None, f"vector-{n}-1")
    pool = synthetic_pool(n, 1)
    ensure_embeddings(pool.texts, base / "embeddings")
    embedder = embedding_store.stored_embedder(base / "embeddings")
    qvec = np.ascontiguousarray(embedder.encode(link_queries(queries, 1)), dtype=np.float32)
    return embedding_store.load_vectors(base / "embeddings"), qvec, pool.provinces, pool.active, embedder.name


def _clustered(n: int, queries: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]:
    """The same shapes without embedding: unit vectors and queries around RANDOM_CENTERS centres,
    PROVINCES equally likely provinces and ACTIVE_SHARE active firms (for pools too large to embed in time)."""
    rng = np.random.default_rng(1)
    centres = rng.standard_normal((RANDOM_CENTERS, RANDOM_DIM)).astype(np.float32)
    vectors = np.empty((n, RANDOM_DIM), np.float32)
    for start in range(0, n, RANDOM_CHUNK):
        stop = min(n, start + RANDOM_CHUNK)
        rows = centres[rng.integers(0, RANDOM_CENTERS, stop - start)]
        rows += RANDOM_NOISE * rng.standard_normal(rows.shape).astype(np.float32)
        vectors[start:stop] = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    qvec = centres[rng.integers(0, RANDOM_CENTERS, queries)]  # drawn like the stored vectors
    qvec = qvec + RANDOM_NOISE * rng.standard_normal(qvec.shape).astype(np.float32)
    qvec = np.ascontiguousarray(qvec / np.linalg.norm(qvec, axis=1, keepdims=True), dtype=np.float32)
    provinces = np.array([f"省份{i:02d}" for i in range(PROVINCES)])[rng.integers(0, PROVINCES, n)]
    return vectors, qvec, provinces, rng.random(n) < ACTIVE_SHARE, "clustered-random"


def run(n: int, queries: int, variants: tuple[str, ...], random_vectors: bool = False) -> dict:
    """Measure every variant on one pool and query set."""
    vectors, qvec, provinces, active, embedder = (_clustered if random_vectors else _embedded)(n, queries)
    ids = np.arange(n, dtype=np.int64)
    province = str(provinces[0])
    allowed = ids[(provinces == province) & active]
    fields = {"province": [str(p) for p in provinces], "active": [bool(a) for a in active]}
    from matching.vectors.filters import FieldFilter, condition, mask, milvus_expression

    where = FieldFilter(((condition("province", "in", [province]),), (condition("active", "eq", True),)))
    assert np.array_equal(ids[mask(where, fields, n)], allowed)  # the filter passes the allowed ids
    gc.collect()
    truth = [np.argsort(-(vectors @ q), kind="stable")[:RECALL_K] for q in qvec]
    filtered_truth = [allowed[np.argsort(-(vectors[allowed] @ q), kind="stable")[:RECALL_K]] for q in qvec]
    results = []
    for variant in variants:
        index = _make(variant, n, vectors.shape[1])
        extra = {"fields": fields} if variant.startswith("milvus") else {}
        with Stopwatch() as sw:
            index.index(ids, vectors, **extra)
        row = {
            "variant": variant,
            "n": n,
            "dim": int(vectors.shape[1]),
            "queries": len(qvec),
            "index_type": getattr(index, "index_type", index.kind),
            "build_seconds": round(sw.seconds, 1),
        }
        latency, found = _timed(index, qvec)
        row.update(recall_at_10=_recall(truth, found), search_top100=latency)
        latency, found = _timed(index, qvec, allowed_ids=allowed)
        row.update(
            filtered_allowed_ids=len(allowed),
            filtered_recall_at_10=_recall(filtered_truth, found),
            search_top100_allowed_ids=latency,
        )
        if variant.startswith("milvus"):
            latency, found = _timed(index, qvec, where=where)
            row.update(
                where=milvus_expression(where),
                where_recall_at_10=_recall(filtered_truth, found),
                search_top100_where=latency,
            )
        row["load_average_1m"] = round(os.getloadavg()[0], 2)
        print(json.dumps(row, ensure_ascii=False), flush=True)
        results.append(row)
        if hasattr(index, "close"):
            index.close()
        del index
        gc.collect()
    return {"bench": "milvus_vectors", "n": n, "embedder": embedder, "variants": results, "machine": machine_facts()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--random", action="store_true", help="clustered random vectors, no embedding")
    args = parser.parse_args()
    began = time.time()
    summary = run(args.n, args.queries, tuple(v for v in args.variants.split(",") if v), args.random)
    summary["seconds"] = round(time.time() - began, 1)
    print(json.dumps(summary, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
