"""Embedding a registry in process vs on a local Ray (webapp.services.match.ray_embed), with the configured embedder.

N synthetic firms are imported into a fresh SQLite instance; the in-process embedding job (`run_embedding`: vector
cache, attach) and the Ray Data job (`embed_on_ray`: partitions read by the workers, each with its own embedder) each
encode every profile into an empty vector cache. Figures are texts/s and texts/s per core used; the load average is
recorded because other work on the machine changes them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from bench.perf.machine import machine_facts

PARTITIONS_PER_WORKER = 4  # a small bench pool is cut finer than the product's partitions, so every worker has work


def _app(folder: Path, models_dir: Path | None, model: str, backend: str):
    from webapp import create_app
    from webapp.extensions import db

    config = {
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder / 'bench.sqlite3'}",
        "INSTANCE_PATH": str(folder),
        "INDEX_DIR": str(folder / "indexes"),
        "UPLOAD_DIR": str(folder / "uploads"),
        "RATELIMIT_STORAGE_URI": "memory://",
        "SECRET_KEY": "bench",
        "EMBEDDING_MODEL": model,
        "EMBEDDING_BACKEND": backend,
        "EMBEDDER": "transformer",
    }
    if models_dir:
        config["MODEL_DIR"] = str(models_dir)
    app = create_app(config)
    with app.app_context():
        db.create_all()
    return app


def run(
    n: int = 2000,
    seed: int = 1,
    models_dir: str | None = None,
    model: str = "",
    backend: str = "auto",
    workers: int = 2,
    log=lambda m: None,
) -> dict:
    """Texts/s of the embedding job in process and on a local Ray of `workers` workers, on `n` synthetic firms."""
    from chains.enterprises import synth
    from chains.enterprises.importer import import_file
    from webapp.extensions import db
    from webapp.services import match as matchsvc
    from webapp.services.match import embedding, ray_embed

    with tempfile.TemporaryDirectory(prefix="chainmatch-bench-ray-") as tmp:
        folder = Path(tmp)
        app = _app(folder, Path(models_dir) if models_dir else None, model, backend)
        csv_path = folder / "synthetic.csv"
        log(f"importing {n} synthetic firms")
        synth.write_csv(synth.generate(n, seed), csv_path)
        with app.app_context():
            import_file(db.session, csv_path)
            matchsvc.sync(db.session, app)
            embedder = embedding.embedder_for(app)
        cache = Path(app.instance_path) / embedding.CACHE_FOLDER
        results = {}
        log("in process")
        load = os.getloadavg()[0]
        began = time.perf_counter()
        matchsvc.run_embedding(app)
        seconds = time.perf_counter() - began
        results["in_process"] = {
            "seconds": round(seconds, 1),
            "texts_per_s": round(n / seconds, 1),
            "cores": os.cpu_count(),
            "texts_per_s_per_core": round(n / seconds / os.cpu_count(), 1),
            "load_average_1m_before": round(load, 2),
        }
        shutil.rmtree(cache, ignore_errors=True)
        log(f"local Ray, {workers} workers")
        ray_dir = tempfile.mkdtemp(prefix="cmray-")  # short: Ray's socket paths must fit in 107 bytes
        try:
            load = os.getloadavg()[0]
            with app.app_context():
                figures = ray_embed.embed_on_ray(
                    app,
                    db.session,
                    embedder,
                    workers=workers,
                    temp_dir=ray_dir,
                    partition_rows=max(1, min(ray_embed.PARTITION_ROWS, n // (workers * PARTITIONS_PER_WORKER))),
                )
        finally:
            shutil.rmtree(ray_dir, ignore_errors=True)
        results["ray_local"] = {
            **figures,
            "workers": workers,
            "texts_per_s": round(n / figures["seconds"], 1),
            "texts_per_s_per_core": round(n / figures["seconds"] / workers, 1),
            "load_average_1m_before": round(load, 2),
            "note": "includes starting the local Ray and a model load per worker",
        }
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    return {"bench": "ray-embedding", "n": n, "embedder": embedder.name, "results": results, "machine": machine_facts()}
