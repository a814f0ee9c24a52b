"""Background work on a task queue (Huey), run by the task worker process beside the web server (no blueprint).

A web request records the job's state row (webapp.services.jobs) and enqueues a task naming it; `chainmatch worker` (started
by `chainmatch serve` / `chainmatch run`) runs the task with the app context. CHAINMATCH_TASK_QUEUE picks the store:
`sqlite` (default: a SQLite file of its own in the instance folder, for one machine), `redis` (CHAINMATCH_REDIS_URL,
for several machines) or `thread` (no queue: a thread of the web process, as before; tests and quick experiments).

Cancelling is a flag in the queue's key-value store, not in the database: a SQLite import holds the database's
write lock for its whole transaction, and the cancel request must not wait for it.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
import time
import uuid
from typing import Any, Callable

from flask import Flask, current_app
from huey import RedisHuey, SqliteHuey
from huey.api import Huey

from webapp.services import jobs

logger = logging.getLogger("chainmatch.tasks")

QUEUE_SQLITE, QUEUE_REDIS, QUEUE_THREAD = "sqlite", "redis", "thread"
QUEUES = (QUEUE_SQLITE, QUEUE_REDIS, QUEUE_THREAD)
QUEUE_FILE = "tasks.sqlite3"
EXTENSION = "chainmatch.huey"
TASKS_EXTENSION = "chainmatch.tasks"
FLAGS_EXTENSION = "chainmatch.cancel_flags"

# Task name → "module:function" of its runner, called as runner(app, task_id, *args). Resolved when first run or
# registered, so that this module imports no feature module (they import it).
RUNNERS: dict[str, str] = {
    "import": "webapp.imports.jobs:run_job",
    "placement": "webapp.clusters.placement_runs:run_placement",
    "embed": "webapp.services.match.embed_job:run_queued_embedding",
}

# Threads of jobs started by this process in `thread` mode (tests and shutdown wait for them).
_threads: list[threading.Thread] = []
_threads_lock = threading.Lock()


def queue_kind(app: Flask) -> str:
    """The configured queue: sqlite, redis or thread (an unknown name is refused when the queue is first used)."""
    kind = str(app.config.get("TASK_QUEUE") or QUEUE_SQLITE).strip().lower()
    if kind not in QUEUES:
        raise ValueError(f"CHAINMATCH_TASK_QUEUE must be one of {', '.join(QUEUES)}, not {kind!r}")
    return kind


def runner(name: str) -> Callable[..., Any]:
    """The function that runs task `name`."""
    module, _, function = RUNNERS[name].partition(":")
    return getattr(importlib.import_module(module), function)


def _build(app: Flask) -> Huey:
    kind = queue_kind(app)
    name = str(app.config.get("TASK_QUEUE_NAME") or "chainmatch")
    if kind == QUEUE_REDIS:
        huey: Huey = RedisHuey(name=name, url=app.config.get("REDIS_URL") or "redis://127.0.0.1:6379/0")
    else:
        huey = SqliteHuey(name=name, filename=os.path.join(app.instance_path, QUEUE_FILE))
    tasks = {}
    for task_name in RUNNERS:

        def run(task_id: str, *args, _name: str = task_name) -> None:
            runner(_name)(app, task_id, *args)

        tasks[task_name] = huey.task(name=task_name)(run)
    app.extensions[TASKS_EXTENSION] = tasks
    return huey


def huey_for(app: Flask) -> Huey | None:
    """This app's Huey (its tasks registered, bound to the app); None in `thread` mode."""
    if queue_kind(app) == QUEUE_THREAD:
        return None
    huey = app.extensions.get(EXTENSION)
    if huey is None:
        huey = app.extensions.setdefault(EXTENSION, _build(app))
    return huey


def new_task_id(app: Flask | None = None) -> str:
    """A task id for a job about to be queued (marked in `thread` mode: such a job is not durable)."""
    app = app or current_app
    prefix = jobs.IN_PROCESS_TASK_PREFIX if queue_kind(app) == QUEUE_THREAD else ""
    return prefix + uuid.uuid4().hex


def enqueue(app: Flask, name: str, task_id: str, *args) -> None:
    """Run task `name` with `args` in the task worker (or a thread of this process in `thread` mode)."""
    huey = huey_for(app)
    if huey is None:
        thread = threading.Thread(
            target=runner(name), args=(app, task_id, *args), name=f"task-{name}-{task_id[:8]}", daemon=True
        )
        with _threads_lock:
            _threads[:] = [t for t in _threads if t.is_alive()] + [thread]
        thread.start()
        return
    wrapper = app.extensions[TASKS_EXTENSION][name]
    huey.enqueue(wrapper.task_class((task_id, *args), {}, id=task_id))
    logger.info("task %s %s queued (%s)", name, task_id, queue_kind(app))


def wait_for_threads(timeout: float | None = None) -> None:
    """Wait for the jobs this process runs in threads (`thread` mode: tests and shutdown)."""
    with _threads_lock:
        threads = list(_threads)
    for thread in threads:
        thread.join(timeout)


# ----------------------------------------------------------------------------- cancel flags


def _flag(kind: str, key: str | int) -> str:
    return f"chainmatch:cancel:{kind}:{key}"


def request_cancel(app: Flask, kind: str, key: str | int, task_id: str = "") -> None:
    """Ask the running job (kind, key) to stop; a queued task is also revoked so the worker skips it."""
    huey = huey_for(app)
    if huey is None:
        app.extensions.setdefault(FLAGS_EXTENSION, set()).add(_flag(kind, key))
        return
    huey.put(_flag(kind, key), True)
    if task_id:
        huey.revoke_by_id(task_id, revoke_once=True)


def cancel_requested(app: Flask, kind: str, key: str | int) -> bool:
    """Whether job (kind, key) was asked to stop (read by the job between chunks; cheap)."""
    huey = huey_for(app)
    if huey is None:
        return _flag(kind, key) in app.extensions.get(FLAGS_EXTENSION, set())
    return bool(huey.get(_flag(kind, key), peek=True))


def clear_cancel(app: Flask, kind: str, key: str | int) -> None:
    """Forget a cancel request (before a job is queued again)."""
    huey = huey_for(app)
    if huey is None:
        app.extensions.get(FLAGS_EXTENSION, set()).discard(_flag(kind, key))
        return
    huey.delete(_flag(kind, key))


def stop_check(app: Flask, kind: str, key: str | int) -> Callable[[], bool]:
    """A `should_stop` for jobs.Heartbeat: True once job (kind, key) was asked to stop."""
    return lambda: cancel_requested(app, kind, key)


def wait_until_finished(read_status: Callable[[], str | None], timeout: float, active: tuple[str, ...]) -> None:
    """Poll `read_status` until it leaves `active` or `timeout` seconds pass (a request showing a quick job's end)."""
    deadline = time.monotonic() + timeout
    while read_status() in active and time.monotonic() < deadline:
        time.sleep(0.1)
