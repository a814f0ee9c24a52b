"""How fast milvus-lite filters a search by text columns, integer columns or text columns with a scalar index: the
measurement behind storing text fields as integer codes (docs/scaling.md, "Text fields are stored as integer codes").

Usage:
    .venv/bin/python bench/milvus_field_types.py [--n 1000000] [--columns text|codes] [--scalar-index INVERTED]

A collection of N random 256-d unit vectors (IVF_FLAT, nlist 4·√N, nprobe nlist/16, as the milvus backend builds
it) with province (31 values), city (310) and status (4) columns, stored as text (VARCHAR) or as
matching.vectors.filters.text_code integers, optionally with a scalar index on each; flushed, released and loaded
again (the index is built then, as when the product loads a saved index). Then 40 single-query top-1,000 searches
each: unfiltered, "one province, active" and "other city, active" (the product's filters, written by
matching.vectors.filters.milvus_expression). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.perf.machine import machine_facts, percentiles_ms  # noqa: E402
from matching.vectors.filters import FieldFilter, condition, milvus_expression, text_code  # noqa: E402
from matching.vectors.milvus_connection import pymilvus_module  # noqa: E402

DIM = 256
SEARCHES = 40
TOP_K = 1000
INSERT_ROWS = 1000
FIELDS = ("province", "city", "status")
ACTIVE = ("存续", "在业")


def run(n: int, columns: str, scalar_index: str | None) -> dict:
    """Build the collection and time the three searches (see the module docstring)."""
    pymilvus = pymilvus_module()
    rng = np.random.default_rng(0)
    client = pymilvus.MilvusClient(os.path.join(tempfile.mkdtemp(prefix="chainmatch-fields-"), "x.db"))
    schema = pymilvus.MilvusClient.create_schema(auto_id=False)
    schema.add_field("id", pymilvus.DataType.INT64, is_primary=True)
    schema.add_field("vector", pymilvus.DataType.FLOAT_VECTOR, dim=DIM)
    for name in FIELDS:
        if columns == "text":
            schema.add_field(name, pymilvus.DataType.VARCHAR, max_length=64)
        else:
            schema.add_field(name, pymilvus.DataType.INT64)
    nlist = 4 * int(np.sqrt(n))
    params = client.prepare_index_params()
    params.add_index(field_name="vector", index_type="IVF_FLAT", metric_type="IP", params={"nlist": nlist})
    if scalar_index:
        for name in FIELDS:
            params.add_index(field_name=name, index_type=scalar_index, index_name=f"{name}_index")
    client.create_collection("v", schema=schema, index_params=params, consistency_level="Strong")
    provinces = [f"省{i}" for i in range(31)]
    cities = [f"市{i}" for i in range(310)]
    statuses = [*ACTIVE, "注销", "吊销"]

    def stored(value: str) -> str | int:
        return value if columns == "text" else text_code(value)

    started = time.perf_counter()
    for start in range(0, n, INSERT_ROWS):
        rows = min(INSERT_ROWS, n - start)
        vectors = rng.standard_normal((rows, DIM)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        province = rng.integers(0, 31, rows)
        city = province * 10 + rng.integers(0, 10, rows)
        status = rng.choice(4, rows, p=[0.6, 0.25, 0.1, 0.05])
        client.insert(
            "v",
            [
                {
                    "id": start + i,
                    "vector": vectors[i],
                    "province": stored(provinces[province[i]]),
                    "city": stored(cities[city[i]]),
                    "status": stored(statuses[status[i]]),
                }
                for i in range(rows)
            ],
        )
    insert_seconds = time.perf_counter() - started
    client.flush("v")
    client.release_collection("v")
    started = time.perf_counter()
    client.load_collection("v")
    load_seconds = time.perf_counter() - started
    queries = rng.standard_normal((SEARCHES + 1, DIM)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    active = condition("status", "in", ACTIVE)
    filters = {
        "none": FieldFilter(),
        "province_active": FieldFilter(((active,), (condition("province", "in", [provinces[3]]),))),
        "other_city_active": FieldFilter(((active,), (condition("city", "ne", cities[35]),))),
    }
    coded = set(FIELDS) if columns == "codes" else set()
    search_params = {"metric_type": "IP", "params": {"nprobe": max(16, nlist // 16)}}
    client.search("v", data=[queries[-1]], limit=TOP_K, search_params=search_params)  # warm up
    latency = {}
    for label, flt in filters.items():
        times, found = [], 0
        for query in queries[:SEARCHES]:
            started = time.perf_counter()
            hits = client.search(
                "v", data=[query], limit=TOP_K, search_params=search_params, filter=milvus_expression(flt, coded)
            )
            times.append(time.perf_counter() - started)
            found += len(hits[0])
        latency[label] = {**percentiles_ms(times), "mean_hits": found / SEARCHES}
    client.close()
    return {
        "bench": "milvus_field_types",
        "n": n,
        "columns": columns,
        "scalar_index": scalar_index,
        "insert_seconds": round(insert_seconds, 1),
        "load_seconds": round(load_seconds, 1),
        "search_top1000": latency,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "machine": machine_facts(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--columns", choices=("text", "codes"), default="codes")
    parser.add_argument("--scalar-index", default=None, help="e.g. INVERTED (milvus-lite 2.5.1 refuses BITMAP)")
    args = parser.parse_args()
    print(json.dumps(run(args.n, args.columns, args.scalar_index), ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
