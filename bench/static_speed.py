"""Encoding speed of a trained static embedder on real business scopes (default: the SW3 dev split's firms).

Prints one JSON line: profiles per wall second and per CPU second (3 repeats over all texts, one process) and the
p50/p95 of encoding one short query. Usage:

    .venv/bin/python bench/static_speed.py MODEL_FOLDER [--firms ../shared/benchmarks/sw3/firms.csv]

MODEL_FOLDER is a trained model, `CHAINMATCH_MODEL_DIR/static/<digest>` (`chainmatch embedder train-static`, or
`bench/ablation_matching.py --static`).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from matching.embedders.static import StaticEmbedder  # noqa: E402

DEFAULT_FIRMS = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "sw3" / "firms.csv"
REPEATS = 3
QUERY_CHARS = 30  # a link query is a short phrase
QUERIES = 200


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("--firms", type=Path, default=DEFAULT_FIRMS)
    args = ap.parse_args()
    with open(args.firms, encoding="utf-8") as fh:
        texts = [row["business_scope"] for row in csv.DictReader(fh)]
    model = StaticEmbedder(args.model)
    model.encode(texts[:10])
    model.encode_queries(["锂电池正极材料"])
    wall, cpu = [], []
    for _ in range(REPEATS):
        t0, c0 = time.perf_counter(), time.process_time()
        model.encode(texts)
        wall.append(round(len(texts) / (time.perf_counter() - t0)))
        cpu.append(round(len(texts) / (time.process_time() - c0)))
    seconds = []
    for text in texts[:QUERIES]:
        t0 = time.perf_counter()
        model.encode_queries([text[:QUERY_CHARS]])
        seconds.append(time.perf_counter() - t0)
    seconds.sort()
    print(
        json.dumps(
            {
                "texts": len(texts),
                "mean_chars": round(sum(map(len, texts)) / len(texts)),
                "profiles_per_wall_s": wall,
                "profiles_per_cpu_s": cpu,
                "query_ms_p50": round(seconds[len(seconds) // 2] * 1000, 3),
                "query_ms_p95": round(seconds[int(len(seconds) * 0.95)] * 1000, 3),
                "vocabulary": len(model.vocab),
                "dim": model.dim,
                "model": model.name,
                "load_average_1m": round(os.getloadavg()[0], 2),
            }
        )
    )


if __name__ == "__main__":
    main()
