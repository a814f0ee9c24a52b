"""Show that 10M firms' PQ codes fit in RAM on this machine: an IVF-PQ fast-scan index over 10 × the 1M pool's vectors.

Usage: .venv/bin/python bench/pq_10m.py --store /tmp/chainmatch-bench/vector-1000000-1/embeddings \
           [--copies 10] [--nlist 1024] [--queries 20] [--refine-dir /tmp/chainmatch-bench/pq-10m] \
           [--min-available-gb 3] [--candidates 2000]
The store is the embedding store written by `chainmatch bench vector --n 1000000`. Each copy is the 1M real
(synthetic-firm) vectors plus small Gaussian noise, re-normalised, so the 10M vectors keep the pool's cluster
structure. Prints one JSON object: resident MB and bytes per vector of the index, add time, search latency and
recall@10 of the PQ codes alone (no refine) against an exact scan of the same 10M vectors.

With --refine-dir, the 10M float32 vectors are also written there as the product's memory-mapped refine store
(matching.vectors.row_store, 10 GB on disk), and the search is repeated the way the product runs it: the PQ top
MIN_CANDIDATES (2,000) re-scored exactly against the mapped rows (first pass right after evicting the file from the
page cache, then warm).

Memory guard: the run stops (exit 3) before starting when MemAvailable is below the estimate plus
--min-available-gb, and during the build whenever MemAvailable falls below --min-available-gb (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.perf.machine import evict_from_page_cache, machine_facts, percentiles_ms, rss_mb  # noqa: E402
from matching import embedding_store  # noqa: E402
from matching.vectors import MIN_CANDIDATES as FETCH  # noqa: E402  PQ candidates re-scored, as the product does

NOISE = 0.02  # per-dimension noise (unit vectors of 256 dims have ~0.06 per dimension)
CHUNK = 250_000
SEARCH_K = 100


class MemoryGuard(SystemExit):
    pass


def available_gb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024 / 1024
    return float("inf")


def guard(floor_gb: float, where: str) -> None:
    have = available_gb()
    if have < floor_gb:
        print(
            json.dumps(
                {"bench": "pq_10m", "stopped": f"memory guard at {where}: {have:.1f} GB available < {floor_gb} GB"}
            ),
            flush=True,
        )
        raise MemoryGuard(3)


def _copy(base: np.ndarray, copy: int, start: int, stop: int) -> np.ndarray:
    rng = np.random.default_rng(1000 + copy * 100_000 + start // CHUNK)
    x = base[start:stop] + rng.normal(0, NOISE, (stop - start, base.shape[1])).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def main() -> None:
    import faiss

    from matching.vectors.row_store import RowStore, ids_path, inner_products, rows_path

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True)
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--nlist", type=int, default=1024)
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--refine-dir", default=None, help="write the float32 rows here and measure re-scoring")
    parser.add_argument("--min-available-gb", type=float, default=3.0)
    parser.add_argument(
        "--candidates", type=int, default=FETCH, help="PQ candidates re-scored (default: the product's)"
    )
    args = parser.parse_args()
    faiss.omp_set_num_threads(1)  # a single query on one thread, as the product searches
    store_dir = Path(args.store)
    manifest = json.loads((store_dir / "manifest.json").read_text())
    n1, dim = manifest["count"], manifest["dim"]
    total = n1 * args.copies
    # base float32 + PQ codes and ids (dim/2 bytes + 8 per vector, plus list slack) + a few chunks of work
    need_gb = (n1 * dim * 4 + total * (dim // 2 + 8) * 1.3 + 4 * CHUNK * dim * 4 * 3) / 1e9
    guard(need_gb + args.min_available_gb, f"start (needs ≈ {need_gb:.1f} GB)")
    if args.refine_dir:
        free_disk = (
            shutil.disk_usage(
                Path(args.refine_dir).parent if not Path(args.refine_dir).exists() else args.refine_dir
            ).free
            / 1e9
        )
        if free_disk < total * dim * 4 / 1e9 * 1.2:
            raise SystemExit(f"not enough disk for the refine rows: {free_disk:.0f} GB free")
    load_start = round(os.getloadavg()[0], 2)
    base = embedding_store.load_vectors(store_dir)
    rng = np.random.default_rng(0)
    index = faiss.IndexIVFPQFastScan(faiss.IndexFlatIP(dim), dim, args.nlist, dim // 2, 4, faiss.METRIC_INNER_PRODUCT)
    t0 = time.perf_counter()
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    index.train(base[rng.choice(n1, min(n1, 200_000), replace=False)])
    train_s = time.perf_counter() - t0
    rows_file = None
    if args.refine_dir:
        refine_index = Path(args.refine_dir) / "vectors.faiss"
        refine_index.parent.mkdir(parents=True, exist_ok=True)
        rows_file = np.lib.format.open_memmap(rows_path(refine_index), mode="w+", dtype=np.float32, shape=(total, dim))
    before = rss_mb("RssAnon")
    t0 = time.perf_counter()
    for c in range(args.copies):
        for start in range(0, n1, CHUNK):
            guard(args.min_available_gb, f"copy {c} row {start}")
            stop = min(n1, start + CHUNK)
            x = _copy(base, c, start, stop)
            index.add_with_ids(x, np.arange(c * n1 + start, c * n1 + stop, dtype=np.int64))
            if rows_file is not None:
                rows_file[c * n1 + start : c * n1 + stop] = x
    add_s = time.perf_counter() - t0
    index_mb = rss_mb("RssAnon") - before
    faiss.omp_set_num_threads(1)
    queries = _copy(base, 99, 0, CHUNK)[rng.choice(CHUNK, args.queries, replace=False)]
    params = faiss.SearchParametersIVF(nprobe=max(16, args.nlist // 16))
    times, found = [], []
    for q in queries:
        t = time.perf_counter()
        _, ids = index.search(q.reshape(1, -1), SEARCH_K, params=params)
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
            i = np.hstack(
                [best_i, np.broadcast_to(np.arange(c * n1 + start, c * n1 + stop), (len(queries), stop - start))]
            )
            top = np.argsort(-s, axis=1)[:, :10]
            best_s, best_i = np.take_along_axis(s, top, 1), np.take_along_axis(i, top, 1)
    recall = float(np.mean([len(np.intersect1d(f, e)) / 10 for f, e in zip(found, best_i)]))
    out = {
        "bench": "pq_10m",
        "vectors": total,
        "dim": dim,
        "nlist": args.nlist,
        "pq": f"{dim // 2}x4 bits fast-scan",
        "nprobe": max(16, args.nlist // 16),
        "train_seconds": round(train_s, 1),
        "add_seconds": round(add_s, 1),
        "index_resident_mb": round(index_mb, 1),
        "index_bytes_per_vector": round(index_mb * 1e6 / total, 1),
        "search_top100_pq_only": percentiles_ms(times),
        "recall@10_pq_only_no_refine": round(recall, 4),
    }
    if rows_file is not None:
        rows_file.flush()
        del rows_file
        ids_bytes = ids_path(refine_index)
        np.save(ids_bytes, np.arange(total, dtype=np.int64))
        evict_from_page_cache([rows_path(refine_index)])
        anon0 = rss_mb("RssAnon")
        rows = RowStore.open(refine_index, dim, mmap=True)
        store_mb = rss_mb("RssAnon") - anon0
        passes = {}
        for name in ("cold_first_pass", "warm"):
            t_list, hits = [], 0
            for q, want in zip(queries, best_i):
                t = time.perf_counter()
                _, cand = index.search(q.reshape(1, -1), args.candidates, params=params)
                cand = np.unique(cand[0][cand[0] >= 0])
                vec, present = rows.get(cand)
                cand = cand[present]
                exact = inner_products(vec, q)
                top = cand[np.argsort(-exact, kind="stable")[:SEARCH_K]]
                t_list.append(time.perf_counter() - t)
                hits += len(np.intersect1d(top[:10], want))
            passes[name] = percentiles_ms(t_list)
            refined_recall = hits / (10 * len(queries))
        out.update(
            {
                "refine_rows_file_gb": round(rows_path(refine_index).stat().st_size / 1e9, 2),
                "refine_store_resident_mb": round(store_mb, 1),
                "total_resident_bytes_per_vector": round((index_mb + store_mb) * 1e6 / total, 1),
                "candidates_rescored": args.candidates,
                "search_top100_fp32_refine": passes,
                "recall@10_fp32_refine": round(refined_recall, 4),
            }
        )
    out.update({"load_average_1m_at_start": load_start, "machine": machine_facts()})
    print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
