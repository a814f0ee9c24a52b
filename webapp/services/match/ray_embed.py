"""Embedding the registry on Ray: the vector cache filled by many workers, for pools a process would take hours on.

`chainmatch index embed --ray [ADDRESS]` runs a Ray Data job: the registry is cut into id ranges (partitions of
PARTITION_ROWS firms); each Ray worker reads its ranges from the database itself (the driver never holds the texts),
skips the profiles already in the vector cache, encodes the rest with one embedder per worker (loaded from the index's
saved embedder state) and writes them into the same content-addressed vector cache the in-process embedding job
uses (matching.embedders.vector_cache: chunk files + a manifest under a file lock, safe for many writers). A killed
job loses only partitions in flight; run again, it encodes what is missing. The ordinary embedding job then finds
every profile cached and only attaches the vectors.

Without an address a local Ray is started on this machine (RAY_LOCAL_WORKERS workers, one CPU each); with one (e.g.
`ray://head:10001` or `auto`) the job runs on that cluster, whose workers need this package installed, the database
reachable at CHAINMATCH_DATABASE_URL and the instance folder (models, cache) on a shared path.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
from flask import Flask

logger = logging.getLogger("chainmatch.matchsvc")

PARTITION_ROWS = 2048  # firms per partition: one read, one cache chunk
RAY_LOCAL_WORKERS = 2
RAY_BATCH_PARTITIONS = 1  # partitions per map_batches call

Progress = Callable[[int, int], None]


def partitions(session, rows: int | None = None) -> tuple[list[tuple[int, int]], int]:
    """([lo, hi) id ranges of `rows` (default PARTITION_ROWS) firms each, covering the registry; the number of
    firms)."""
    from sqlalchemy import select

    from chains.enterprise_models import Enterprise

    ids = np.fromiter(session.scalars(select(Enterprise.id).order_by(Enterprise.id)), np.int64)
    if not len(ids):
        return [], 0
    cuts = ids[:: rows or PARTITION_ROWS]
    return [(int(lo), int(hi)) for lo, hi in zip(cuts, [*cuts[1:].tolist(), int(ids[-1]) + 1])], len(ids)


class PartitionEncoder:
    """A Ray Data callable: reads id ranges from the database, encodes uncached profiles, writes them to the cache.

    One instance per Ray worker: the embedder and the database engine are created once, in the worker."""

    def __init__(self, database_url: str, embedder_folder: str, cache_folder: str) -> None:
        from sqlalchemy import create_engine

        from matching.embedders import load_embedder
        from matching.embedders.vector_cache import VectorCache

        self.engine = create_engine(database_url)
        self.embedder = load_embedder(Path(embedder_folder))
        self.cache = VectorCache(Path(cache_folder), self.embedder.name, self.embedder.dim)

    def __call__(self, batch: dict) -> dict:
        from sqlalchemy import select
        from sqlalchemy.orm import Session

        from chains.enterprise_models import Enterprise
        from matching.embedders.vector_cache import text_keys
        from webapp.services.match.profiles import PROFILE_COLUMNS, profile_for

        encoded, rows_read = [], []
        with Session(self.engine) as session:
            for lo, hi in zip(batch["lo"], batch["hi"]):
                rows = session.execute(
                    select(*PROFILE_COLUMNS).where(Enterprise.id >= int(lo), Enterprise.id < int(hi))
                )
                texts = [profile_for(row).text for row in rows]
                keys = text_keys(texts)
                missing = np.flatnonzero(~self.cache.lookup(keys)[1])
                if len(missing):
                    todo = [texts[i] for i in missing]
                    self.cache.put(keys[missing], self.embedder.encode(todo))
                encoded.append(len(missing))
                rows_read.append(len(texts))
        return {"encoded": np.asarray(encoded, np.int64), "rows": np.asarray(rows_read, np.int64)}


def embed_on_ray(
    app: Flask,
    session,
    embedder,
    address: str | None = None,
    progress: Progress | None = None,
    workers: int = RAY_LOCAL_WORKERS,
    temp_dir: str | None = None,
    partition_rows: int | None = None,
) -> dict:
    """Fill the vector cache with the registry's profiles on Ray; returns {"partitions", "encoded", "seconds"}.
    `temp_dir`: the session folder of a local Ray (Ray's default otherwise); `partition_rows`: firms per partition
    (default PARTITION_ROWS)."""
    import shutil
    import tempfile
    import time

    import ray

    from matching.embedders import save_embedder
    from webapp.services.match.embedding import cache_for

    began = time.perf_counter()
    parts, total = partitions(session, partition_rows)
    cache = cache_for(app, embedder)  # created (and its manifest written) before the workers open it
    state_dir = Path(tempfile.mkdtemp(prefix="chainmatch-ray-embedder-", dir=app.instance_path))
    save_embedder(embedder, state_dir)  # the workers load the embedder from its saved state
    local = not address
    ray.init(
        address=address or None,
        num_cpus=workers if local else None,
        include_dashboard=False,
        log_to_driver=False,
        ignore_reinit_error=True,
        _temp_dir=temp_dir if local else None,
    )
    try:
        data = ray.data.from_items([{"lo": lo, "hi": hi} for lo, hi in parts])
        data = data.map_batches(
            PartitionEncoder,
            batch_size=RAY_BATCH_PARTITIONS,
            num_cpus=1,
            concurrency=workers if local else None,
            fn_constructor_kwargs={
                "database_url": str(app.config["SQLALCHEMY_DATABASE_URI"]),
                "embedder_folder": str(state_dir),
                "cache_folder": str(cache.folder),
            },
        )
        done = encoded = 0
        for out in data.iter_batches(batch_size=None):
            encoded += int(np.sum(out["encoded"]))
            done += int(np.sum(out["rows"]))
            if progress:
                progress(min(done, total), total)
    finally:
        if local:
            ray.shutdown()
        shutil.rmtree(state_dir, ignore_errors=True)
    return {"partitions": len(parts), "encoded": encoded, "seconds": round(time.perf_counter() - began, 1)}
