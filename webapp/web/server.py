"""How the production web server runs: gunicorn's worker class and command line, the number of worker processes.

Below both `chainmatch serve` (webapp/cli/serve.py) and the web benchmark (bench/perf/web_bench.py)."""

from __future__ import annotations

import os
import sys

SERVER_KIND = "gunicorn"
WORKER_CLASS = "gthread"


def default_workers(configured: int | None) -> int:
    """CHAINMATCH_WEB_WORKERS, or one worker process per CPU core when it is 0/unset."""
    if configured and configured > 0:
        return int(configured)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def gunicorn_argv(host: str, port: int, workers: int, threads: int) -> list[str]:
    """The gunicorn command line serving `webapp.wsgi:app` (settings and hooks in webapp/gunicorn_config.py)."""
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--config",
        "python:webapp.gunicorn_config",
        "--bind",
        f"{host}:{port}",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "webapp.wsgi:app",
    ]
