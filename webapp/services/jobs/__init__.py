"""Background job state in the database, so that every process sees it (no blueprint).

A job (an enterprise import, a cluster's placement run, the index's embedding) is queued by a web request and run
by the task worker (webapp.services.tasks); its row in `background_jobs` holds the status, the progress, the queued task's
id and a heartbeat that a thread of the running process refreshes every few seconds. Status polls may reach any
web worker: they read the row.

A running job is *stale* when its heartbeat is older than CHAINMATCH_JOB_STALE_SECONDS and its owner process is
gone (a process on this machine is checked by pid; one on another machine is judged by the heartbeat alone). A
job queued on the task queue waits in the queue's durable store, not in a process, so it never goes stale (one
queued for a thread of the web process, in `thread` mode, does when that process is gone). SQLite
lets one writer at a time, so a heartbeat cannot be written while an import holds the write lock; the owner check
keeps such a job alive as long as its process is. Stale jobs are marked failed by whoever looks at them next,
with a Chinese message for the page.

A job is cancelled through a flag the running job reads between chunks (`Heartbeat(should_stop=...)` raises
JobCancelled from `progress`/`check`); the job then rolls back and records itself cancelled.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Callable, Iterator

from flask import Flask, current_app
from sqlalchemy import and_, or_, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from chains.db import utcnow
from webapp.services.jobs.models import BackgroundJob

logger = logging.getLogger("chainmatch.jobs")

KIND_IMPORT = "import"
KIND_PLACEMENT = "placement"
STATUS_QUEUED, STATUS_RUNNING, STATUS_DONE, STATUS_FAILED = "queued", "running", "done", "failed"
STATUS_CANCELLED = "cancelled"
ACTIVE = (STATUS_QUEUED, STATUS_RUNNING)
RETRYABLE = (STATUS_FAILED, STATUS_CANCELLED)
IN_PROCESS_TASK_PREFIX = "thread-"  # the task id of a job run by a thread of the web process (no durable queue)
CANCEL_CHECK_SECONDS = 0.5  # how often a running job asks for its cancel flag (between chunks, at most)
DEFAULT_STALE_SECONDS = 60.0
SQLITE_BUSY_MS = 15000  # the app's usual busy timeout (webapp/__init__.py)
SQLITE_QUICK_BUSY_MS = 250  # marking a job stale never waits long for SQLite's write lock


# ----------------------------------------------------------------------------- owner processes


def _process_start(pid: int) -> str:
    """The start time of process `pid` in clock ticks since boot ("" when unknown): tells a reused pid apart."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def owner_id() -> str:
    """This process as a job owner: host:pid:start."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_process_start(pid)}"


def owner_alive(owner: str) -> bool | None:
    """Whether the owner process still runs: True/False for a process on this machine, None for another machine."""
    host, _, rest = owner.partition(":")
    pid_text, _, start = rest.partition(":")
    if not host or not pid_text.isdigit():
        return None
    if host != socket.gethostname():
        return None
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return not start or _process_start(pid) in ("", start)


# ----------------------------------------------------------------------------- staleness


def stale_seconds(app: Flask | None = None) -> float:
    app = app or current_app
    return float(app.config.get("JOB_STALE_SECONDS") or DEFAULT_STALE_SECONDS)


def heartbeat_seconds(app: Flask | None = None) -> float:
    """How often a running job's heartbeat is written: a quarter of the stale timeout, at most 5 s."""
    return max(0.2, min(5.0, stale_seconds(app) / 4))


def aware(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes for timezone-aware columns: they are UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


def is_stale(job: BackgroundJob | None, timeout: float, now: datetime | None = None) -> bool:
    """A queued/running job whose heartbeat stopped more than `timeout` s ago and whose owner process is gone."""
    if job is None or job.status not in ACTIVE:
        return False
    if job.status == STATUS_QUEUED and job.task_id and not job.task_id.startswith(IN_PROCESS_TASK_PREFIX):
        return False  # waits in the task queue's store, which outlives any process
    now = now or utcnow()
    beat = aware(job.heartbeat_at) or aware(job.started_at)
    if beat is not None and (now - beat).total_seconds() <= timeout:
        return False
    return owner_alive(job.owner or "") is not True


# ----------------------------------------------------------------------------- rows


def get(session: Session, kind: str, key: str | int) -> BackgroundJob | None:
    """The job row as the database has it now (not a copy cached in the session)."""
    return session.scalar(
        select(BackgroundJob)
        .where(BackgroundJob.kind == kind, BackgroundJob.key == str(key))
        .execution_options(populate_existing=True)
    )


def create(session: Session, kind: str, key: str | int, user_id: int | None = None) -> BackgroundJob:
    """A queued job owned by this process (added to the session; the caller commits)."""
    now = utcnow()
    job = BackgroundJob(
        kind=kind,
        key=str(key),
        status=STATUS_QUEUED,
        owner=owner_id(),
        user_id=user_id,
        started_at=now,
        heartbeat_at=now,
    )
    session.add(job)
    return job


def claim(
    session: Session,
    kind: str,
    key: str | int,
    user_id: int | None = None,
    timeout: float | None = None,
    task_id: str = "",
) -> BackgroundJob | None:
    """Mark job (kind, key) running for this process and commit, unless a live run holds it (then None).

    With `task_id` the job is marked queued for that task instead (the task worker starts it: `start_queued`).
    Safe across processes: the row is taken over with an UPDATE conditional on what was read, or inserted
    (the unique (kind, key) constraint refuses a concurrent insert).
    """
    timeout = stale_seconds() if timeout is None else timeout
    key = str(key)
    now = utcnow()
    values = dict(
        status=STATUS_QUEUED if task_id else STATUS_RUNNING,
        owner=owner_id(),
        started_at=now,
        heartbeat_at=now,
        finished_at=None,
        done=0,
        total=0,
        message="",
        task_id=task_id,
    )
    if user_id is not None:
        values["user_id"] = user_id
    row = get(session, kind, key)
    if row is None:
        try:
            with session.begin_nested():
                session.add(BackgroundJob(kind=kind, key=key, **values))
            session.commit()
        except IntegrityError:
            session.rollback()
            return None
        return get(session, kind, key)
    if row.status == STATUS_RUNNING and not is_stale(row, timeout, now):
        return None
    if (
        row.status == STATUS_QUEUED
        and (row.owner != values["owner"] or row.task_id)
        and not is_stale(row, timeout, now)
    ):
        return None
    taken = session.execute(
        update(BackgroundJob)
        .where(
            BackgroundJob.id == row.id,
            BackgroundJob.status == row.status,
            BackgroundJob.owner == row.owner,
            BackgroundJob.heartbeat_at == row.heartbeat_at,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.commit()
    if taken != 1:
        return None
    session.refresh(row)
    return row


def _move(session: Session, job_id: int, of_task: str, from_status: tuple[str, ...], **values) -> BackgroundJob | None:
    """Change job `job_id` if it is still in one of `from_status` for task `of_task` (commits); the row or None."""
    where = [BackgroundJob.id == job_id, BackgroundJob.status.in_(from_status)]
    if of_task:
        where.append(BackgroundJob.task_id == of_task)
    changed = session.execute(
        update(BackgroundJob).where(*where).values(**values).execution_options(synchronize_session=False)
    ).rowcount
    session.commit()
    return (
        session.scalar(
            select(BackgroundJob).where(BackgroundJob.id == job_id).execution_options(populate_existing=True)
        )
        if changed == 1
        else None
    )


def start_queued(session: Session, kind: str, key: str | int, task_id: str) -> BackgroundJob | None:
    """Mark the job queued for task `task_id` running in this process (commits); None when it was cancelled,
    re-queued for another task or taken meanwhile (the task then does nothing)."""
    row = get(session, kind, key)
    if row is None:
        return None
    now = utcnow()
    return _move(
        session,
        row.id,
        task_id,
        (STATUS_QUEUED,),
        status=STATUS_RUNNING,
        owner=owner_id(),
        started_at=now,
        heartbeat_at=now,
        finished_at=None,
        done=0,
        total=0,
        message="",
    )


def requeue(session: Session, job: BackgroundJob, task_id: str, user_id: int | None = None) -> BackgroundJob | None:
    """Queue a failed or cancelled job again for task `task_id` (retry; commits); None when it is not retryable."""
    now = utcnow()
    values = dict(
        status=STATUS_QUEUED,
        owner=owner_id(),
        task_id=task_id,
        started_at=now,
        heartbeat_at=now,
        finished_at=None,
        done=0,
        total=0,
        message="",
    )
    if user_id is not None:
        values["user_id"] = user_id
    return _move(session, job.id, "", RETRYABLE, **values)


def cancel_queued(session: Session, job: BackgroundJob, message: str) -> bool:
    """Mark a job that is still queued (no worker started it) cancelled (commits); False when it started."""
    return (
        _move(
            session,
            job.id,
            job.task_id,
            (STATUS_QUEUED,),
            status=STATUS_CANCELLED,
            message=message,
            finished_at=utcnow(),
        )
        is not None
    )


def finish(session: Session, job_id: int, status: str, message: str = "") -> None:
    """Record the end of a job run by this process (commits)."""
    session.execute(
        update(BackgroundJob)
        .where(BackgroundJob.id == job_id)
        .values(status=status, message=message, finished_at=utcnow(), heartbeat_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    session.commit()


@contextmanager
def quick_connection(engine: Engine) -> Iterator[Connection]:
    """A connection of its own whose writes give up quickly on SQLite's write lock (OperationalError)."""
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            conn.exec_driver_sql(f"PRAGMA busy_timeout={SQLITE_QUICK_BUSY_MS}")
        try:
            yield conn
        finally:
            if sqlite:
                conn.rollback()
                conn.exec_driver_sql(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
                conn.commit()


def expire(engine: Engine, job: BackgroundJob, message: str, extra=None) -> bool:
    """Mark a stale job failed (with `extra(conn)` run in the same transaction); False when it changed meanwhile
    or the database was busy. The caller re-reads its rows."""
    try:
        with quick_connection(engine) as conn:
            changed = conn.execute(
                update(BackgroundJob)
                .where(
                    BackgroundJob.id == job.id,
                    BackgroundJob.status.in_(ACTIVE),
                    BackgroundJob.owner == job.owner,
                    or_(BackgroundJob.heartbeat_at.is_(None), BackgroundJob.heartbeat_at == job.heartbeat_at),
                )
                .values(status=STATUS_FAILED, message=message, finished_at=utcnow())
            ).rowcount
            if changed == 1 and extra is not None:
                extra(conn)
            conn.commit()
    except OperationalError:
        logger.info("stale job %s/%s not marked yet: database busy", job.kind, job.key)
        return False
    if changed == 1:
        logger.warning("job %s/%s marked failed: its worker stopped (owner %s)", job.kind, job.key, job.owner)
    return changed == 1


# ----------------------------------------------------------------------------- heartbeat


class JobCancelled(Exception):
    """The user cancelled the running job: raised between chunks, the job rolls back what it wrote."""


class Heartbeat:
    """Refreshes a running job's heartbeat and progress from a thread of its own, on a connection of its own.

    `progress(done, total)` only records the figures (it is called from the job's thread, which may hold
    SQLite's write lock in its own transaction); the heartbeat thread writes them with the next beat. With
    `should_stop`, `progress` and `check` raise JobCancelled once it answers True (asked every
    CANCEL_CHECK_SECONDS at most: it reads the task queue's store).
    """

    def __init__(self, app: Flask, job_id: int, should_stop: Callable[[], bool] | None = None) -> None:
        from webapp.extensions import db

        with app.app_context():
            self._engine = db.engine
        self.job_id = job_id
        self._should_stop = should_stop
        self._asked_at = 0.0
        self.owner = owner_id()
        self.interval = heartbeat_seconds(app)
        self._figures: tuple[int, int] | None = None
        self._written: tuple[int, int] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"job-heartbeat-{job_id}", daemon=True)

    def progress(self, done: int, total: int) -> None:
        self._figures = (int(done), int(total))
        self.check()

    def check(self, force: bool = False) -> None:
        """Raise JobCancelled when the job was asked to stop (called between chunks; `force`: ask now, before the
        job commits, even if it asked less than CANCEL_CHECK_SECONDS ago)."""
        if self._should_stop is None or (not force and time.monotonic() - self._asked_at < CANCEL_CHECK_SECONDS):
            return
        self._asked_at = time.monotonic()
        if self._should_stop():
            raise JobCancelled(f"job {self.job_id} cancelled")

    def _beat(self) -> None:
        values: dict = {"heartbeat_at": utcnow()}
        figures = self._figures
        if figures is not None and figures != self._written:
            values["done"], values["total"] = figures
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    update(BackgroundJob)
                    .where(
                        and_(
                            BackgroundJob.id == self.job_id,
                            BackgroundJob.status == STATUS_RUNNING,
                            BackgroundJob.owner == self.owner,
                        )
                    )
                    .values(**values)
                )
            self._written = figures
        except OperationalError as exc:  # SQLite busy while the job itself writes: the next beat tries again
            logger.debug("heartbeat of job %s deferred: %s", self.job_id, exc)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._beat()

    def start(self) -> "Heartbeat":
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop beating; the last figures are written (a job shorter than one interval still shows them)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        if self._figures is not None and self._figures != self._written:
            self._beat()

    def __enter__(self) -> "Heartbeat":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
