"""Query-time cost of the lexical channels + fusion at a pool size the full engine cannot be built for here.

Usage: .venv/bin/python benchmarks/lexical_scale.py [--base 100000] [--copies 10] [--queries 100]
Builds the engine's two BM25 channels (matching.lexical.BM25Channel, word and char12) on a synthetic pool of
--base firms, stacks their document × term matrices --copies times (a pool of base × copies rows with the same
postings distribution), then times what the engine does per query with its default weights: both channels'
scores over the pool, the filter mask, z-score fusion (matching.fusion.fuse) and the top 100. Prints JSON.
This measures the query path at 1M rows; it does not build a 1M engine (see docs/scaling.md for why).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from matching.fusion import FusionWeights, fuse  # noqa: E402
from matching.lexical import BM25Channel  # noqa: E402
from matching.text import char_ngrams, tokenize  # noqa: E402
from webapp.perf.machine import machine_facts, percentiles_ms, rss_mb  # noqa: E402
from webapp.perf.pool import filter_cases, link_queries, synthetic_pool  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=int, default=100_000)
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--queries", type=int, default=100)
    args = parser.parse_args()
    pool = synthetic_pool(args.base, 1)
    t0 = time.perf_counter()
    word, char = BM25Channel("word"), BM25Channel("char12")
    word.build(pool.texts, [tokenize(t) for t in pool.texts])
    char.build(pool.texts, [char_ngrams(t, 1, 2) for t in pool.texts])
    build_s = time.perf_counter() - t0
    n = args.base * args.copies
    before = rss_mb()
    for channel in (word, char):
        channel.matrix = sp.vstack([channel.matrix] * args.copies).tocsr()
        channel._columns()  # the column-major copy queries read
    matrices_mb = rss_mb() - before
    weights = FusionWeights()
    queries = link_queries(args.queries, 1)
    big = type(pool)(pool.texts * args.copies, pool.names * args.copies, pool.products * args.copies,
                     np.tile(pool.provinces, args.copies), np.tile(pool.cities, args.copies),
                     np.tile(pool.active, args.copies))
    cases = filter_cases(big, len(queries), 1)
    times, by_filter, parts = [], {}, {"channels": [], "fusion_and_top": []}
    for q, (label, allowed, excluded) in zip(queries, cases):
        t0 = time.perf_counter()
        scores = {"bm25": word.scores(q, tokenize(q)), "char": char.scores(q, char_ngrams(q, 1, 2))}
        t1 = time.perf_counter()
        mask = np.ones(n, bool)
        if allowed is not None:
            mask[:] = False
            mask[allowed] = True
        mask[excluded] = False
        pool_rows = np.flatnonzero(mask)
        fused = fuse({k: v[pool_rows] for k, v in scores.items()}, weights)
        top = np.argpartition(-fused, 99)[:100]
        top = pool_rows[top[np.argsort(-fused[top], kind="stable")]]
        t2 = time.perf_counter()
        times.append(t2 - t0)
        by_filter.setdefault(label, []).append(t2 - t0)
        parts["channels"].append(t1 - t0)
        parts["fusion_and_top"].append(t2 - t1)
    print(json.dumps({
        "bench": "lexical_scale", "rows": n, "base_pool": args.base, "copies": args.copies,
        "build_seconds_base": round(build_s, 1), "matrices_mb_incl_column_copy": round(matrices_mb, 1),
        "nnz": {"word": int(word.matrix.nnz), "char": int(char.matrix.nnz)},
        "query_top100": percentiles_ms(times), "by_filter": {k: percentiles_ms(v) for k, v in by_filter.items()},
        "parts": {k: percentiles_ms(v) for k, v in parts.items()}, "machine": machine_facts(),
    }, ensure_ascii=False))


if __name__ == "__main__":
    main()
