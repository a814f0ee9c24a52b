"""The task worker process: Huey's consumer over this app's queue, and how a web server starts and stops it."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time

from flask import Flask
from huey.consumer import Consumer

from webapp.services import tasks

logger = logging.getLogger("chainmatch.tasks")

PARENT_CHECK_SECONDS = 2.0
POLL_MAX_SECONDS = 1.0  # an idle SQLite queue is polled at least this often: a new job starts within a second
STOP_TIMEOUT_SECONDS = 10.0
PR_SET_PDEATHSIG = 1


def consumer_for(app: Flask, workers: int | None = None) -> Consumer:
    """Huey's consumer of this app's queue: `workers` threads (default CHAINMATCH_TASK_WORKERS)."""
    huey = tasks.huey_for(app)
    if huey is None:
        raise RuntimeError("CHAINMATCH_TASK_QUEUE=thread: jobs run in the web process, there is no queue to consume")
    workers = workers or int(app.config.get("TASK_WORKERS") or 2)
    return huey.create_consumer(
        workers=workers,
        worker_type="thread",
        periodic=False,
        check_worker_health=True,
        initial_delay=0.1,
        backoff=1.15,
        max_delay=POLL_MAX_SECONDS,
    )


def start_in_thread(app: Flask, workers: int | None = 1) -> Consumer:
    """A consumer running in threads of this process (tests, an embedded server); stop it with
    `consumer.stop(graceful=True)`."""
    consumer = consumer_for(app, workers)
    consumer._set_signal_handlers = lambda: None  # only a main thread may set them, and the caller stops it
    consumer.start()
    return consumer


def run_consumer(app: Flask, workers: int | None = None, parent_pid: int | None = None) -> None:
    """Run the consumer until SIGINT/SIGTERM (or until `parent_pid`, the web server, is gone). Blocks."""
    consumer = consumer_for(app, workers)
    workers = consumer.workers
    if parent_pid:
        _stop_with_parent(parent_pid)
    logger.info("task worker %s: %s queue, %d thread(s)", os.getpid(), tasks.queue_kind(app), workers)
    consumer.run()


def _stop_with_parent(parent_pid: int) -> None:
    """End this worker (SIGTERM to itself) once the server that started it has gone, however it ended."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_CHECK_SECONDS)
        logger.warning("task worker %s: its server %s has gone; stopping", os.getpid(), parent_pid)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="task-worker-parent-watch", daemon=True).start()


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the kernel sends SIGTERM to the worker when its parent process ends (even on SIGKILL)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def worker_argv() -> list[str]:
    """The command line of the task worker started beside a web server."""
    return [sys.executable, "-m", "webapp.cli.main", "worker", "--parent", str(os.getpid())]


def start_beside_server(app: Flask | None = None) -> subprocess.Popen | None:
    """Start `chainmatch worker` as a child process (None in `thread` mode: jobs run in the web process)."""
    if app is not None and tasks.queue_kind(app) == tasks.QUEUE_THREAD:
        return None
    preexec = _die_with_parent if sys.platform.startswith("linux") else None
    process = subprocess.Popen(worker_argv(), preexec_fn=preexec)  # noqa: PLW1509 - prctl only, no locks taken
    logger.info("task worker started: pid %s", process.pid)
    return process


def stop(process: subprocess.Popen | None) -> None:
    """Stop the task worker: SIGINT lets running jobs end (Huey's graceful stop), then SIGTERM, then SIGKILL."""
    if process is None or process.poll() is not None:
        return
    for sig in (signal.SIGINT, signal.SIGTERM):
        process.send_signal(sig)
        try:
            process.wait(STOP_TIMEOUT_SECONDS)
            return
        except subprocess.TimeoutExpired:
            continue
    process.kill()
    process.wait()
