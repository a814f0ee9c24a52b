"""Measurements behind the IVF-PQ settings of matching.vectors.faiss_index (docs/performance.md, Vector index).

Usage (after `chainmatch bench vector --n 1000000 --json`, which writes the embedding store and the fp32 index):
    .venv/bin/python bench/vector_choices.py candidates [--n 1000000]
    .venv/bin/python bench/vector_choices.py stores [--n 1000000]
    .venv/bin/python bench/vector_choices.py filters [--n 1000000]

- candidates: recall@10 against exact search and CPU time per query for PQ candidate counts 1,000 / 2,000 / 4,000
  and nprobe 250 / 500, all re-scored in float32 (MIN_CANDIDATES).
- stores: two ways to keep the float32 refine rows memory-mapped, each in a fresh process: faiss
  IndexIDMap2(IndexFlatIP) read with IO_FLAG_MMAP_IFC vs matching.vectors.row_store (numpy memmap + sorted ids): anonymous
  RSS per row and CPU time of gathering 2,000 rows by id. (Appending to the mapped faiss index is not tried: it
  aborts the process with faiss's assertion 'is_owned'.)
- filters: allowed-id sets of 1,000–40,000 random firms, exact scan of their rows vs IVF probing with the id
  selector: recall@10 and CPU time (FILTER_EXACT_MAX_ROWS).
Prints one JSON object per line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.perf.machine import DEFAULT_WORK_DIR, rss_mb  # noqa: E402

QUERIES = 200


def _folder(n: int) -> Path:
    return DEFAULT_WORK_DIR / f"vector-{n}-1"


def _queries_and_vectors(n: int):
    from bench.perf.pool import link_queries
    from matching import embedding_store

    base = _folder(n)
    embedder = embedding_store.stored_embedder(base / "embeddings")
    qvec = np.ascontiguousarray(embedder.encode(link_queries(QUERIES, 1)), dtype=np.float32)
    return qvec, embedding_store.load_vectors(base / "embeddings")


def _cpu_ms(samples: list[float]) -> dict:
    arr = np.asarray(samples) * 1000
    return {
        "cpu_p50_ms": round(float(np.percentile(arr, 50)), 2),
        "cpu_p95_ms": round(float(np.percentile(arr, 95)), 2),
    }


def candidates(n: int) -> None:
    import faiss

    from matching.vectors import inner_products, load_vector_index

    qvec, vectors = _queries_and_vectors(n)
    truth = []
    for q in qvec:
        scores = vectors @ q
        top = np.argpartition(-scores, 10)[:10]
        truth.append((top, float(np.min(scores[top]))))
    index = load_vector_index(_folder(n) / "index-fp32" / "vectors.faiss")
    faiss.omp_set_num_threads(1)
    for nprobe in (index.nprobe, 2 * index.nprobe):
        for fetch in (1000, 2000, 4000):
            params = faiss.SearchParametersIVF(nprobe=nprobe)
            hits = near = 0
            cpu = []
            for q, (want, tenth) in zip(qvec, truth):
                began = time.process_time()
                _, cand = index._main.search(q.reshape(1, -1), fetch, params=params)
                ids = np.unique(cand[0][cand[0] >= 0])
                rows, present = index._rows.get(ids)
                ids = ids[present]
                top = ids[np.argsort(-inner_products(rows, q), kind="stable")[:100]]
                cpu.append(time.process_time() - began)
                hits += len(np.intersect1d(top[:10], want))
                near += int(np.sum(vectors[top[:10]] @ q >= tenth - 1e-3))
            print(
                json.dumps(
                    {
                        "test": "candidates",
                        "n": n,
                        "nprobe": nprobe,
                        "candidates": fetch,
                        "recall@10": hits / (10 * len(qvec)),
                        "recall@10_score_eps": near / (10 * len(qvec)),
                        **_cpu_ms(cpu),
                        "load_average_1m": round(os.getloadavg()[0], 2),
                    }
                ),
                flush=True,
            )


def _store_probe(variant: str, folder: str, n: int) -> None:
    import faiss

    from matching.vectors import RowStore

    anon0 = rss_mb("RssAnon")
    if variant == "faiss_idmap2_flat_mmap":
        index = faiss.read_index(str(Path(folder) / "flat.faiss"), faiss.IO_FLAG_MMAP_IFC)
        get = index.reconstruct_batch
        rows_file = Path(folder) / "flat.faiss"
    else:
        store = RowStore.open(Path(folder) / "v.faiss", 256, mmap=True)
        get = lambda ids: store.get(ids)[0]  # noqa: E731
        rows_file = Path(folder) / "v.faiss.fp32.npy"
    anon = rss_mb("RssAnon") - anon0
    with open(rows_file, "rb") as fh:  # page cache warm, as in steady serving
        while fh.read(1 << 24):
            pass
    rounds = []
    for _ in range(3):
        rng = np.random.default_rng(7)
        cpu = []
        for _ in range(300):
            ids = np.sort(rng.choice(n, 2000, replace=False)).astype(np.int64)
            began = time.process_time()
            get(ids)
            cpu.append(time.process_time() - began)
        rounds.append(cpu)
    print(
        json.dumps(
            {
                "test": "stores",
                "variant": variant,
                "n": n,
                "anon_bytes_per_row": round(anon * 1e6 / n, 1),
                "gather_2000_rows_first_round": _cpu_ms(rounds[0]),
                "gather_2000_rows_third_round": _cpu_ms(rounds[-1]),
                "load_average_1m": round(os.getloadavg()[0], 2),
            }
        ),
        flush=True,
    )


def stores(n: int) -> None:
    import faiss

    from matching import embedding_store
    from matching.vectors import RowStore

    folder = _folder(n) / "store-choices"
    folder.mkdir(parents=True, exist_ok=True)
    vectors = embedding_store.load_vectors(_folder(n) / "embeddings")
    ids = np.arange(len(vectors), dtype=np.int64)
    flat = faiss.IndexIDMap2(faiss.IndexFlatIP(vectors.shape[1]))
    flat.add_with_ids(vectors, ids)
    faiss.write_index(flat, str(folder / "flat.faiss"))
    del flat
    RowStore.from_arrays(ids, vectors).save(folder / "v.faiss")
    del vectors
    for variant in ("faiss_idmap2_flat_mmap", "row_store"):
        subprocess.run(
            [sys.executable, __file__, "_store_probe", "--variant", variant, "--folder", str(folder), "--n", str(n)],
            check=True,
        )


def filters(n: int) -> None:
    from matching.vectors import faiss_index as vi
    from matching.vectors import load_vector_index

    qvec, vectors = _queries_and_vectors(n)
    qvec = qvec[::4]
    index = load_vector_index(_folder(n) / "index-fp32" / "vectors.faiss")
    rng = np.random.default_rng(5)
    saved = vi.FILTER_EXACT_MAX_ROWS
    try:
        for size in (1000, 5000, 10000, 20000, 40000):
            allowed = [np.sort(rng.choice(n, size, replace=False)).astype(np.int64) for _ in qvec]
            truth = [a[np.argsort(-(vectors[a] @ q), kind="stable")[:10]] for q, a in zip(qvec, allowed)]
            for path, cap in (("exact scan of the rows", n), ("IVF probing + id selector", 0)):
                vi.FILTER_EXACT_MAX_ROWS = cap
                for _ in range(2):  # the second pass is reported (warm)
                    cpu, hits = [], 0
                    for q, a, want in zip(qvec, allowed, truth):
                        began = time.process_time()
                        _, found = index.search(q.reshape(1, -1), 100, allowed_ids=a)
                        cpu.append(time.process_time() - began)
                        hits += len(np.intersect1d(found[0][:10], want))
                print(
                    json.dumps(
                        {
                            "test": "filters",
                            "n": n,
                            "allowed": size,
                            "path": path,
                            "recall@10": hits / (10 * len(qvec)),
                            **_cpu_ms(cpu),
                            "load_average_1m": round(os.getloadavg()[0], 2),
                        }
                    ),
                    flush=True,
                )
    finally:
        vi.FILTER_EXACT_MAX_ROWS = saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("test", choices=["candidates", "stores", "filters", "_store_probe"])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--variant", default="")
    parser.add_argument("--folder", default="")
    args = parser.parse_args()
    if args.test == "_store_probe":
        _store_probe(args.variant, args.folder, args.n)
    else:
        {"candidates": candidates, "stores": stores, "filters": filters}[args.test](args.n)


if __name__ == "__main__":
    main()
