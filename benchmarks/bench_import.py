"""Benchmark the enterprise import: N synthetic rows into a fresh SQLite file (and PostgreSQL if a URL is given).

Usage: .venv/bin/python benchmarks/bench_import.py [--n 50000] [--seed 1] [--postgres-url URL]
Prints one JSON object per backend: rows, seconds, rows_per_s, and a second, idempotent pass.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

import chains.models  # noqa: E402,F401  (registers the chains tables)
import webapp.auth.models  # noqa: E402,F401  (users, referenced by foreign keys)
from chains.db import Base  # noqa: E402
from chains.enterprises import synth  # noqa: E402
from chains.enterprises.importer import import_file  # noqa: E402


def _run(url: str, csv_path: Path, n: int, backend: str, schema: str | None = None) -> dict:
    engine = create_engine(url)
    if schema:
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        engine.dispose()
        engine = create_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    try:
        Base.metadata.create_all(engine)
        timings = {}
        for label in ("first", "second"):
            with Session(engine) as session:
                start, cpu_start = time.perf_counter(), time.process_time()
                result = import_file(session, csv_path)
                timings[label] = (time.perf_counter() - start, time.process_time() - cpu_start, result.counts())
        first_s, first_cpu, counts = timings["first"]
        second_s, second_cpu, counts2 = timings["second"]
        # Wall-clock rates depend on other load on the machine (load average printed alongside); the CPU-time
        # rate of this process is the figure to compare on a shared machine (SQLite work runs in-process).
        return {"backend": backend, "rows": n, "seconds": round(first_s, 2), "rows_per_s": round(n / first_s),
                "cpu_seconds": round(first_cpu, 2), "rows_per_cpu_s": round(n / first_cpu), "counts": counts,
                "reimport_seconds": round(second_s, 2), "reimport_rows_per_s": round(n / second_s),
                "reimport_rows_per_cpu_s": round(n / second_cpu), "reimport_counts": counts2,
                "load_average_1m": round(os.getloadavg()[0], 2)}
    finally:
        if schema:
            engine.dispose()
            admin = create_engine(url)
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--postgres-url", default="", help="e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = Path(tmp) / "synthetic.csv"
        synth.write_csv(synth.generate(args.n, args.seed), csv_path)
        print(json.dumps(_run(f"sqlite:///{Path(tmp) / 'bench.sqlite3'}", csv_path, args.n, "sqlite"), ensure_ascii=False))
        if args.postgres_url:
            schema = f"bench_{uuid.uuid4().hex[:8]}"
            print(json.dumps(_run(args.postgres_url, csv_path, args.n, "postgresql", schema), ensure_ascii=False))


if __name__ == "__main__":
    main()
