"""Match-query latency by filter kind on a saved `chainmatch bench match` engine, over repeated passes.

`chainmatch bench match` runs each of its 200 queries once on a freshly loaded engine, so its percentiles include
first-use costs (a field column coded on its first filter, pages of the engine read for the first time). This runs
the same queries and filters (same seed) on the engine that run saved: one warm-up pass, then `--passes` measured
passes, and prints the percentiles per filter kind as JSON, with a digest of the top-10 lists so that two versions of
the code can be compared on one engine. Usage (the engine folder is under the bench's `--work` folder):

    .venv/bin/python bench/steady_latency.py /work/eval/bench1m-milvus/engine-static-<digest>-milvus [--n 1000000]

To time other code on the same engine, run it from a worktree of that commit with PYTHONPATH set to the worktree.
The machine's speed drifts by a third within minutes (docs/performance-history.md), so runs made one after the other
compare poorly. `--toggle module:NAME=VALUE` (e.g. `matching.engine.ranking:LOCAL_SCAN_MAX_ROWS=0`) times two
settings of one constant in one process instead, query by query in alternating order, and reports both, with how
many top-10 lists they share.

A restart instead: `--cold` drops the engine folder's files from the page cache before loading it memory-mapped, as
a web worker does, and reports the first pass (`first_pass`) apart from the others; with `--warm-up` the engine warms
up on a thread beside that pass, as the web app starts it after a load (MatchEngine.warm_up).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.perf.machine import Stopwatch, evict_from_page_cache, percentiles_ms  # noqa: E402
from bench.perf.match_bench import SEARCH_K, saved_engine, search_filters  # noqa: E402
from bench.perf.pool import link_queries  # noqa: E402


def _toggle(spec: str) -> tuple[object, str, dict[str, object]]:
    """(module, constant name, {label: value}) of a `module:NAME=VALUE` spec: the value as set and the given one."""
    where, _, value = spec.partition("=")
    module_name, _, name = where.partition(":")
    module = importlib.import_module(module_name)
    current = getattr(module, name)
    return module, name, {f"{name}={current}": current, f"{name}={value}": type(current)(value)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("engine", type=Path)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--passes", type=int, default=2)
    ap.add_argument("--toggle", help="module:NAME=VALUE, a constant timed at its value and at VALUE in turn")
    ap.add_argument("--cold", action="store_true", help="evict the engine's files, load it mapped, time the first pass")
    ap.add_argument("--warm-up", action="store_true", help="with --cold: warm the engine up beside the first pass")
    args = ap.parse_args()
    if args.cold:
        evict_from_page_cache([path for path in args.engine.rglob("*") if path.is_file()])
    pool, engine = saved_engine(args.engine, args.n, args.seed, mmap=args.cold)
    if args.warm_up:
        engine.warm_up_in_background()
    texts = link_queries(args.queries, args.seed)
    by_fields = engine.vector_index is not None and engine.vector_index.stores_fields
    cases = search_filters(pool, len(texts), args.seed, by_fields)
    module, name, settings = _toggle(args.toggle) if args.toggle else (None, "", {"as is": None})
    times: dict[str, dict[str, list[float]]] = {label: {} for label in settings}
    first: dict[str, list[float]] = {label: [] for label in settings}
    digests = {label: hashlib.sha1() for label in settings}
    shared = 0
    for run in range(args.passes + 1):
        for q, (text, (kind, allowed, excluded, where)) in enumerate(zip(texts, cases)):
            order = list(settings) if (q + run) % 2 == 0 else list(settings)[::-1]
            tops = {}
            for label in order:
                if module is not None:
                    setattr(module, name, settings[label])
                with Stopwatch() as sw:
                    hits = engine.search(text, SEARCH_K, allowed_ids=allowed, excluded_ids=excluded, where=where)
                tops[label] = [int(h.id) for h in hits[:10]]
                if run:  # the first pass warms the engine up
                    times[label].setdefault(kind, []).append(sw.seconds)
                    times[label].setdefault("all", []).append(sw.seconds)
                elif args.cold:
                    first[label].append(sw.seconds)
            if run == min(1, args.passes):
                for label, top in tops.items():
                    digests[label].update(np.asarray(top, np.int64).tobytes())
                shared += len({tuple(top) for top in tops.values()}) == 1
    result = {
        label: {
            "by_filter": {kind: percentiles_ms(seconds) for kind, seconds in times[label].items()},
            **({"first_pass": percentiles_ms(first[label])} if args.cold else {}),
            "top10_sha1": digests[label].hexdigest(),
        }
        for label in settings
    }
    out = result["as is"] if module is None else {"settings": result, "same_top10": shared}
    print(json.dumps({"engine": str(args.engine), "passes": args.passes, **out}))


if __name__ == "__main__":
    main()
