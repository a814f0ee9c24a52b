"""Selective filters with the whole pool's dense hits vs the nearest allowed firms, on an engine `chainmatch bench
match` saved (docs/performance.md).

Usage:
    .venv/bin/python bench/direct_vs_maxscore.py ENGINE_FOLDER [--n 1000000] [--queries 200]

ENGINE_FOLDER is the engine a `bench match --n N --work W` run saved (e.g. W/engine-static-<digest>). The pool,
link queries and filters are regenerated as that run made them (same n, seed 1); the fusion weights are the
"all_channels" ones (dense channel at the pool rule's weight). Each query is searched twice in a row: with the
whole pool's dense hits for every filter (SELECTIVE_FILTER_SHARE = 0) and as the product searches (the nearest
allowed firms for a selective filter); prints p50/p95 per filter kind and path, and how many top-100 lists differ
(ids or order). (The figures in ranking.py's comment also timed a third path since removed: every allowed firm
scored directly.)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.perf.machine import Stopwatch, percentiles_ms  # noqa: E402

SEARCH_K = 100


def main() -> None:
    import matching.engine.ranking as ranking
    from bench.perf.match_bench import saved_engine
    from bench.perf.pool import filter_cases, link_queries

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("engine", type=Path)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    pool, engine = saved_engine(args.engine, args.n)
    texts = link_queries(args.queries, 1)
    filters = filter_cases(pool, len(texts), 1)
    engine.search(texts[0], SEARCH_K)  # warm-up
    share = ranking.SELECTIVE_FILTER_SHARE
    times: dict[str, dict[str, list[float]]] = {}
    differ, largest_score_gap, allowed_sizes = 0, 0.0, []
    try:
        for query, (label, allowed, excluded) in zip(texts, filters):
            hits = {}
            for path, value in (("whole_pool_hits", 0.0), ("product", share)):
                ranking.SELECTIVE_FILTER_SHARE = value
                with Stopwatch() as sw:
                    hits[path] = engine.search(query, SEARCH_K, allowed_ids=allowed, excluded_ids=excluded)
                times.setdefault(label, {}).setdefault(path, []).append(sw.seconds)
            if allowed is not None:
                allowed_sizes.append(len(allowed))
            a, b = hits["whole_pool_hits"], hits["product"]
            if [h.id for h in a] != [h.id for h in b]:
                differ += 1
            elif a:
                largest_score_gap = max(
                    largest_score_gap,
                    float(np.max(np.abs(np.array([h.score for h in a]) - np.array([h.score for h in b])))),
                )
    finally:
        ranking.SELECTIVE_FILTER_SHARE = share
    print(
        json.dumps(
            {
                "by_filter": {
                    label: {path: percentiles_ms(v) for path, v in paths.items()} for label, paths in times.items()
                },
                "queries": len(texts),
                "top100_lists_differing": differ,
                "largest_score_gap": largest_score_gap,
                "allowed_ids_min_median_max": [min(allowed_sizes), int(np.median(allowed_sizes)), max(allowed_sizes)]
                if allowed_sizes
                else None,
                "load_average": os.getloadavg(),
            }
        )
    )


if __name__ == "__main__":
    main()
