"""Look-alike search latency on an engine `chainmatch bench match` saved (docs/performance.md, look-alikes at 1M).

Usage:
    .venv/bin/python bench/lookalike_latency.py ENGINE_FOLDER [--n 1000000] [--firms 200]

ENGINE_FOLDER is the engine a `bench match --n N --work W` run saved (e.g. W/engine-static-<digest>, faiss or
milvus). The pool is regenerated as that run made it (same n, seed 1) for its provinces; the fusion weights are the
"all_channels" ones (dense channel at the pool rule's weight). For FIRMS firms spread over the pool, times
`MatchEngine.similar(firm, 10)` (a firm's own profile as the query, as the web app's 相似企业 page asks it) without a
filter and restricted to the firm's own province (an id list, as the web app resolves it for faiss; on an engine whose
vector index stores fields, also as a field filter, as the web app gives it to Milvus, counting the top-10 lists
equal to the id list's); then the candidates
page's "most similar local firm" (`best_look_alikes`: a page of PAGE candidates against a roster of ROSTER firms,
ROUNDS times, each checked against `similar(k=1)` over the roster). Prints p50/p95/p99 per kind as one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.perf.machine import Stopwatch, machine_facts, percentiles_ms  # noqa: E402
from matching.vectors import FieldFilter, condition  # noqa: E402

LOOKALIKES_K = 10
PAGE, ROSTER, ROUNDS = 20, 50, 10


def main() -> None:
    from bench.perf.match_bench import saved_engine

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("engine", type=Path)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--firms", type=int, default=200)
    args = parser.parse_args()
    pool, engine = saved_engine(args.engine, args.n)
    ids = np.arange(len(pool), dtype=np.int64)
    by_province = {str(p): ids[pool.provinces == p] for p in np.unique(pool.provinces)}
    firms = np.linspace(0, len(pool) - 1, args.firms + 1).astype(np.int64)
    engine.similar(int(firms[-1]), LOOKALIKES_K)  # warm-up
    by_fields = engine.vector_index is not None and engine.vector_index.stores_fields
    kinds = ("none", "own_province") + (("own_province_fields",) if by_fields else ())
    times: dict[str, list[float]] = {label: [] for label in kinds}
    found = dict.fromkeys(kinds, 0)
    same_as_ids = 0
    for firm in firms[:-1]:
        province = str(pool.provinces[firm])
        tops = {}
        for label in kinds:
            kwargs: dict = {}
            if label == "own_province":
                kwargs = {"allowed_ids": by_province[province]}
            elif label == "own_province_fields":
                kwargs = {"where": FieldFilter(((condition("province", "in", [province]),),))}
            with Stopwatch() as sw:
                hits = engine.similar(int(firm), LOOKALIKES_K, **kwargs)
            times[label].append(sw.seconds)
            found[label] += len(hits)
            tops[label] = [h.id for h in hits]
        same_as_ids += by_fields and tops["own_province_fields"] == tops["own_province"]
    rng = np.random.default_rng(1)
    best_times, best_agree = [], 0
    for _ in range(ROUNDS):
        page = rng.choice(len(pool), PAGE, replace=False).tolist()
        roster = rng.choice(len(pool), ROSTER, replace=False).tolist()
        with Stopwatch() as sw:
            tops = engine.best_look_alikes(page, roster)
        best_times.append(sw.seconds)
        for firm, top in zip(page, tops):
            single = engine.similar(firm, 1, allowed_ids=roster)
            best_agree += top is not None and bool(single) and top.id == single[0].id
    result = {
        "bench": "lookalike_latency",
        "n": len(pool),
        "backend": engine.vector_index.backend if engine.vector_index is not None else None,
        "firms": len(firms) - 1,
        "by_filter": {label: {**percentiles_ms(t), "mean_hits": found[label] / len(t)} for label, t in times.items()},
        "province_allowed_mean": round(float(np.mean([len(v) for v in by_province.values()])), 1),
        "fields_top10_equal_to_ids": f"{same_as_ids}/{len(firms) - 1}" if by_fields else None,
        "best_look_alikes_page": {**percentiles_ms(best_times), "page": PAGE, "roster": ROSTER},
        "best_agrees_with_similar": f"{best_agree}/{PAGE * ROUNDS}",
        "load_average_1m": round(os.getloadavg()[0], 2),
        "machine": machine_facts(),
    }
    print(json.dumps(result, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
