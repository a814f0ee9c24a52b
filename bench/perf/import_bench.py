"""Enterprise import throughput: N synthetic rows into a fresh SQLite file and into PostgreSQL (fresh schema).

Each backend gets a first import (all rows new) and a second, idempotent pass over the same file (all unchanged).
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from pathlib import Path

from bench.perf.machine import machine_facts


def _run(url: str, csv_path: Path, n: int, backend: str, schema: str | None = None) -> dict:
    from sqlalchemy import create_engine, text
    from sqlalchemy.orm import Session

    import chains.models  # noqa: F401  (registers the chains tables)
    import webapp.auth.models  # noqa: F401  (users, referenced by foreign keys)
    from chains.db import Base
    from chains.enterprises.importer import import_file

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
        return {
            "backend": backend,
            "rows": n,
            "seconds": round(first_s, 2),
            "rows_per_s": round(n / first_s),
            "cpu_seconds": round(first_cpu, 2),
            "rows_per_cpu_s": round(n / first_cpu),
            "counts": counts,
            "reimport_seconds": round(second_s, 2),
            "reimport_rows_per_s": round(n / second_s),
            "reimport_counts": counts2,
            "load_average_1m": round(os.getloadavg()[0], 2),
        }
    finally:
        if schema:
            engine.dispose()
            admin = create_engine(url)
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
        engine.dispose()


def run(n: int, seed: int = 1, postgres_url: str = "", log=lambda m: None) -> dict:
    """Import figures per backend; PostgreSQL only when a URL is given."""
    from chains.enterprises import synth

    results = []
    with tempfile.TemporaryDirectory(prefix="chainmatch-bench-import-") as tmp:
        csv_path = Path(tmp) / "synthetic.csv"
        log(f"generating {n} synthetic rows")
        synth.write_csv(synth.generate(n, seed), csv_path)
        log("importing into SQLite")
        results.append(_run(f"sqlite:///{Path(tmp) / 'bench.sqlite3'}", csv_path, n, "sqlite"))
        if postgres_url:
            log("importing into PostgreSQL")
            results.append(_run(postgres_url, csv_path, n, "postgresql", f"bench_{uuid.uuid4().hex[:8]}"))
    return {"bench": "import", "n": n, "results": results, "machine": machine_facts()}
