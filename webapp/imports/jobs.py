"""Background import jobs: each runs as a task of the task worker (webapp.services.tasks), with its own app context and
database session; it can be cancelled between chunks (the transaction is rolled back) and retried.

The ImportJob row records queued/running/done/failed and the final counts; the outcome is committed in the same
transaction as the imported rows. Progress and the heartbeat live in the job's `background_jobs` row
(webapp.services.jobs), written on a connection of their own, so a status poll answered by any worker process sees them;
a job whose worker died is marked failed once its heartbeat is older than CHAINMATCH_JOB_STALE_SECONDS.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime, timezone

from flask import Flask
from sqlalchemy import update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from chains.enterprise_models import ImportJob
from chains.enterprises.importer import import_file
from chains.enterprises.readers import TableReadError
from webapp.extensions import db
from webapp.services import jobs, tasks
from webapp.services.tasks import control

logger = logging.getLogger("chainmatch.imports")

STATUS_QUEUED, STATUS_RUNNING, STATUS_DONE, STATUS_FAILED = "queued", "running", "done", "failed"
STATUS_CANCELLED = jobs.STATUS_CANCELLED
FINISHED = (STATUS_DONE, STATUS_FAILED, STATUS_CANCELLED)
TASK = "import"
GENERIC_FAILURE = "导入失败：系统内部错误，数据库未作任何修改。请检查文件后重试，或联系管理员。"
STALE_FAILURE = (
    "导入中断：处理该文件的服务进程已停止（超过 {seconds} 秒没有心跳），数据库未作任何修改。请重新上传文件。"
)
CANCELLED_MESSAGE = "导入已取消，数据库未作任何修改。"


def create_job_state(session: Session, job: ImportJob, user_id: int | None) -> str:
    """The queued job's shared state row (added to the session; committed with the ImportJob); its task id."""
    task_id = tasks.new_task_id()
    jobs.create(session, jobs.KIND_IMPORT, job.id, user_id).task_id = task_id
    return task_id


def start_job(app: Flask, job: ImportJob, task_id: str) -> None:
    """Queue the committed job's import in the task worker."""
    control.submit(app, jobs.KIND_IMPORT, job.id, TASK, task_id, job.id)


def progress_of(session: Session, job: ImportJob) -> tuple[int, int]:
    """(rows written, rows to write) of a job, as recorded by whichever process runs it."""
    if job.status in FINISHED:
        return job.processed_rows, job.total_rows
    state = jobs.get(session, jobs.KIND_IMPORT, job.id)
    if state is not None and state.total:
        return state.done, state.total
    return job.processed_rows, job.total_rows


def _stale_message(timeout: float) -> str:
    return STALE_FAILURE.format(seconds=int(timeout))


def expire_if_stale(session: Session, job: ImportJob) -> bool:
    """Mark a queued/running import whose worker is gone as failed; True when it was (the job is refreshed)."""
    if job.status in FINISHED:
        return False
    timeout = jobs.stale_seconds()
    state = jobs.get(session, jobs.KIND_IMPORT, job.id)
    message = _stale_message(timeout)
    now = datetime.now(timezone.utc)

    def fail_import(conn) -> None:
        conn.execute(
            update(ImportJob)
            .where(ImportJob.id == job.id, ImportJob.status.in_(jobs.ACTIVE))
            .values(status=STATUS_FAILED, error=message, finished_at=now)
        )

    if state is None:
        # A job without shared state (created before it existed): judged by its age alone.
        created = jobs.aware(job.created_at)
        if created is None or (now - created).total_seconds() <= timeout:
            return False
        try:
            with jobs.quick_connection(db.engine) as conn:
                fail_import(conn)
                conn.commit()
        except OperationalError:  # database busy: the next poll tries again
            return False
        marked = True
    else:
        if not jobs.is_stale(state, timeout, now):
            return False
        marked = jobs.expire(db.engine, state, message, extra=fail_import)
    session.refresh(job)
    return marked and job.status == STATUS_FAILED


def run_job(app: Flask, task_id: str, job_id: int) -> None:
    """Run one queued import job to completion (a task of the task worker, or a thread in `thread` mode)."""
    with app.app_context():
        session = db.session
        try:
            job = session.get(ImportJob, job_id)
            if job is None:
                return
            state = jobs.start_queued(session, jobs.KIND_IMPORT, job_id, task_id)
            if state is None:
                logger.info("import job %s: task %s skipped (cancelled or taken)", job_id, task_id)
                return
            job = session.get(ImportJob, job_id)
            job.status = STATUS_RUNNING
            session.commit()
            path, report_path, filename = job.stored_path, job.report_path, job.filename
            outcome, message = STATUS_FAILED, GENERIC_FAILURE
            with jobs.Heartbeat(app, state.id, tasks.stop_check(app, jobs.KIND_IMPORT, job_id)) as beat:
                try:
                    result = import_file(
                        session,
                        path,
                        report_path=report_path,
                        source_name=filename,
                        job_id=job_id,
                        progress=beat.progress,
                        commit=False,
                    )
                    beat.check(force=True)  # a cancel asked for meanwhile still wins: nothing is committed
                    # The job's outcome is committed in the same transaction as the imported rows.
                    job = session.get(ImportJob, job_id)
                    job.status = STATUS_DONE
                    job.counts = result.counts()
                    job.total_rows = result.total_rows
                    job.processed_rows = result.total_rows
                    job.finished_at = datetime.now(timezone.utc)
                    session.commit()
                    outcome, message = STATUS_DONE, ""
                except jobs.JobCancelled:
                    session.rollback()
                    logger.info("import job %s cancelled", job_id)
                    outcome, message = STATUS_CANCELLED, CANCELLED_MESSAGE
                    _end(session, job_id, STATUS_CANCELLED, message)
                except TableReadError as exc:
                    session.rollback()
                    message = f"无法读取文件：{exc}"
                    _end(session, job_id, STATUS_FAILED, message)
                except Exception:
                    session.rollback()
                    logger.exception("import job %s failed", job_id)
                    _end(session, job_id, STATUS_FAILED, GENERIC_FAILURE)
            jobs.finish(session, state.id, outcome, message)
        finally:
            db.session.remove()


def _end(session, job_id: int, status: str, message: str) -> None:
    job = session.get(ImportJob, job_id)
    job.status = status
    job.error = message
    job.finished_at = datetime.now(timezone.utc)
    session.commit()


def cancel_job(app: Flask, session: Session, job: ImportJob) -> str:
    """Cancel a queued or running import: control.CANCELLED, control.STOPPING or "" (it had finished)."""
    if job.status in FINISHED:
        return ""
    outcome = control.cancel(app, session, jobs.get(session, jobs.KIND_IMPORT, job.id), CANCELLED_MESSAGE)
    if outcome == control.CANCELLED:
        session.execute(
            update(ImportJob)
            .where(ImportJob.id == job.id, ImportJob.status == STATUS_QUEUED)
            .values(status=STATUS_CANCELLED, error=CANCELLED_MESSAGE, finished_at=datetime.now(timezone.utc))
        )
        session.commit()
    session.refresh(job)
    return outcome


def can_retry(job: ImportJob) -> bool:
    """A failed or cancelled import whose uploaded file is still kept can run again."""
    return job.status in (STATUS_FAILED, STATUS_CANCELLED) and bool(job.stored_path) and os.path.exists(job.stored_path)


def retry_job(app: Flask, session: Session, job: ImportJob, user_id: int | None) -> bool:
    """Queue a failed or cancelled import of the same file again; False when it cannot be retried."""
    if not can_retry(job):
        return False
    state = jobs.get(session, jobs.KIND_IMPORT, job.id)
    if state is None:  # a job from before the shared state existed
        state = jobs.create(session, jobs.KIND_IMPORT, job.id, user_id)
        state.status = STATUS_FAILED
        session.commit()
    task_id = tasks.new_task_id()
    if jobs.requeue(session, state, task_id, user_id) is None:
        return False
    # The import row is queued before the task is sent: the task marks it running.
    job.status, job.error, job.finished_at, job.processed_rows = STATUS_QUEUED, "", None, 0
    session.commit()
    control.submit(app, jobs.KIND_IMPORT, job.id, TASK, task_id, job.id)
    return True
