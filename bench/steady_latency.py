"""Match-query latency by filter kind on a saved `chainmatch bench match` engine, over repeated passes.

`chainmatch bench match` runs each of its 200 queries once on a freshly loaded engine, so its percentiles include
first-use costs (a field column coded on its first filter, pages of the engine read for the first time). This runs
the same queries and filters (same seed) on the engine that run saved: one warm-up pass, then `--passes` measured
passes, and prints p50 / p95 per filter kind as JSON, with a digest of the top-10 lists so that two versions of the
code can be compared on one engine. Usage (the engine folder is under the bench's `--work` folder):

    .venv/bin/python bench/steady_latency.py /work/eval/bench1m-milvus/engine-static-<digest>-milvus [--n 1000000]

To time other code on the same engine, run it from a worktree of that commit with PYTHONPATH set to the worktree.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.perf.match_bench import SEARCH_K, saved_engine  # noqa: E402
from bench.perf.pool import field_filter_cases, filter_cases, link_queries  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("engine", type=Path)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--passes", type=int, default=2)
    args = ap.parse_args()
    pool, engine = saved_engine(args.engine, args.n, args.seed)
    texts = link_queries(args.queries, args.seed)
    if engine.vector_index is not None and engine.vector_index.stores_fields:
        cases = [
            (label, None, excluded, where) for label, where, excluded in field_filter_cases(pool, len(texts), args.seed)
        ]
    else:
        cases = [
            (label, allowed, excluded, None) for label, allowed, excluded in filter_cases(pool, len(texts), args.seed)
        ]
    times: dict[str, list[float]] = {}
    digest = hashlib.sha1()
    for run in range(args.passes + 1):
        for text, (label, allowed, excluded, where) in zip(texts, cases):
            start = time.perf_counter()
            hits = engine.search(text, SEARCH_K, allowed_ids=allowed, excluded_ids=excluded, where=where)
            ms = (time.perf_counter() - start) * 1000
            if run:  # the first pass warms the engine up
                times.setdefault(label, []).append(ms)
                times.setdefault("all", []).append(ms)
            if run == 1:
                digest.update(np.asarray([int(h.id) for h in hits[:10]], np.int64).tobytes())
    figures = {
        label: {"p50_ms": round(float(np.percentile(v, 50)), 1), "p95_ms": round(float(np.percentile(v, 95)), 1)}
        for label, v in times.items()
    }
    print(
        json.dumps(
            {"engine": str(args.engine), "passes": args.passes, "by_filter": figures, "top10_sha1": digest.hexdigest()}
        )
    )


if __name__ == "__main__":
    main()
