"""Show that 10M firms' PQ codes fit in RAM on this machine: an IVF-PQ fast-scan index over 10 × the 1M pool's vectors.

Usage: .venv/bin/python benchmarks/pq_10m.py --store /tmp/chainmatch-bench/vector-1000000-1/embeddings \
           [--copies 10] [--nlist 1024] [--queries 20]
The store is the embedding store written by `chainmatch bench vector --n 1000000`. Each copy is the 1M real
(synthetic-firm) vectors plus small Gaussian noise, re-normalised, so the 10M vectors keep the pool's cluster
structure. Prints one JSON object: resident MB and bytes per vector of the index, add time, search latency and
recall@10 of the PQ codes alone (no refine) against an exact scan of the same 10M vectors.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from matching import embedding_store  # noqa: E402
from webapp.perf.machine import machine_facts, percentiles_ms, rss_mb  # noqa: E402

NOISE = 0.02  # per-dimension noise (unit vectors of 256 dims have ~0.06 per dimension)
CHUNK = 250_000


def _copy(base: np.ndarray, copy: int, start: int, stop: int) -> np.ndarray:
    rng = np.random.default_rng(1000 + copy * 100_000 + start // CHUNK)
    x = base[start:stop] + rng.normal(0, NOISE, (stop - start, base.shape[1])).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def main() -> None:
    import faiss

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True)
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--nlist", type=int, default=1024)
    parser.add_argument("--queries", type=int, default=20)
    args = parser.parse_args()
    base = embedding_store.load_vectors(Path(args.store))
    n1, dim = base.shape
    total = n1 * args.copies
    rng = np.random.default_rng(0)
    index = faiss.IndexIVFPQFastScan(faiss.IndexFlatIP(dim), dim, args.nlist, dim // 2, 4, faiss.METRIC_INNER_PRODUCT)
    t0 = time.perf_counter()
    index.train(base[rng.choice(n1, min(n1, 200_000), replace=False)])
    train_s = time.perf_counter() - t0
    before = rss_mb("RssAnon")
    t0 = time.perf_counter()
    for c in range(args.copies):
        for start in range(0, n1, CHUNK):
            stop = min(n1, start + CHUNK)
            index.add_with_ids(_copy(base, c, start, stop), np.arange(c * n1 + start, c * n1 + stop, dtype=np.int64))
    add_s = time.perf_counter() - t0
    index_mb = rss_mb("RssAnon") - before
    queries = _copy(base, 99, 0, CHUNK)[rng.choice(CHUNK, args.queries, replace=False)]
    params = faiss.SearchParametersIVF(nprobe=max(16, args.nlist // 16))
    times, found = [], []
    for q in queries:
        t = time.perf_counter()
        _, ids = index.search(q.reshape(1, -1), 100, params=params)
        times.append(time.perf_counter() - t)
        found.append(ids[0][:10])
    # Exact top-10 by scanning all 10M regenerated vectors (same seeds), chunk by chunk.
    best_s = np.full((len(queries), 10), -np.inf, np.float32)
    best_i = np.zeros((len(queries), 10), np.int64)
    for c in range(args.copies):
        for start in range(0, n1, CHUNK):
            stop = min(n1, start + CHUNK)
            s = queries @ _copy(base, c, start, stop).T
            s = np.hstack([best_s, s])
            i = np.hstack([best_i, np.broadcast_to(np.arange(c * n1 + start, c * n1 + stop), (len(queries), stop - start))])
            top = np.argsort(-s, axis=1)[:, :10]
            best_s, best_i = np.take_along_axis(s, top, 1), np.take_along_axis(i, top, 1)
    recall = float(np.mean([len(np.intersect1d(f, e)) / 10 for f, e in zip(found, best_i)]))
    print(json.dumps({
        "bench": "pq_10m", "vectors": total, "dim": dim, "nlist": args.nlist, "pq": f"{dim // 2}x4 bits fast-scan",
        "train_seconds": round(train_s, 1), "add_seconds": round(add_s, 1),
        "index_resident_mb": round(index_mb, 1), "index_bytes_per_vector": round(index_mb * 1e6 / total, 1),
        "search_top100_pq_only": percentiles_ms(times), "recall@10_pq_only_no_refine": round(recall, 4),
        "machine": machine_facts(),
    }, ensure_ascii=False))


if __name__ == "__main__":
    main()
