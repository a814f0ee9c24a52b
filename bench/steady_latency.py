"""Match-query latency by filter kind on a saved `chainmatch bench match` engine, over repeated passes.

`chainmatch bench match` runs each of its 200 queries once on a freshly loaded engine, so its percentiles include
first-use costs (a field column coded on its first filter, pages of the engine read for the first time). This runs
the same queries and filters (same seed) on the engine that run saved: one warm-up pass, then `--passes` measured
passes, and prints the percentiles per filter kind as JSON, with a digest of the top-10 lists so that two versions of
the code can be compared on one engine. Usage (the engine folder is under the bench's `--work` folder):

    .venv/bin/python bench/steady_latency.py /work/eval/bench1m-milvus/engine-static-<digest>-milvus [--n 1000000]

To time other code on the same engine, run it from a worktree of that commit with PYTHONPATH set to the worktree.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.perf.machine import Stopwatch, percentiles_ms  # noqa: E402
from bench.perf.match_bench import SEARCH_K, saved_engine, search_filters  # noqa: E402
from bench.perf.pool import link_queries  # noqa: E402


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
    by_fields = engine.vector_index is not None and engine.vector_index.stores_fields
    cases = search_filters(pool, len(texts), args.seed, by_fields)
    times: dict[str, list[float]] = {}
    digest = hashlib.sha1()
    for run in range(args.passes + 1):
        for text, (label, allowed, excluded, where) in zip(texts, cases):
            with Stopwatch() as sw:
                hits = engine.search(text, SEARCH_K, allowed_ids=allowed, excluded_ids=excluded, where=where)
            if run:  # the first pass warms the engine up
                times.setdefault(label, []).append(sw.seconds)
                times.setdefault("all", []).append(sw.seconds)
            if run == 1:
                digest.update(np.asarray([int(h.id) for h in hits[:10]], np.int64).tobytes())
    figures = {label: percentiles_ms(seconds) for label, seconds in times.items()}
    result = {"engine": str(args.engine), "passes": args.passes, "by_filter": figures, "top10_sha1": digest.hexdigest()}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
