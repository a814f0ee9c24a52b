"""Background import jobs: each runs in a thread of the worker process that took the upload, with its own app
context and database session.

The ImportJob row records queued/running/done/failed and the final counts; the outcome is committed in the same
transaction as the imported rows. Progress and the heartbeat live in the job's `background_jobs` row
(webapp.jobs), written on a connection of their own, so a status poll answered by any worker process sees them;
a job whose worker died is marked failed once its heartbeat is older than CHAINMATCH_JOB_STALE_SECONDS.
"""
from __future__ import annotations

import logging
import threading
from datetime import datetime, timezone

from flask import Flask
from sqlalchemy import update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from chains.enterprise_models import ImportJob
from chains.enterprises.importer import import_file
from chains.enterprises.readers import TableReadError
from webapp import jobs
from webapp.extensions import db

logger = logging.getLogger("chainmatch.imports")

STATUS_QUEUED, STATUS_RUNNING, STATUS_DONE, STATUS_FAILED = "queued", "running", "done", "failed"
FINISHED = (STATUS_DONE, STATUS_FAILED)
GENERIC_FAILURE = "导入失败：系统内部错误，数据库未作任何修改。请检查文件后重试，或联系管理员。"
STALE_FAILURE = ("导入中断：处理该文件的服务进程已停止（超过 {seconds} 秒没有心跳），数据库未作任何修改。"
                 "请重新上传文件。")


def create_job_state(session: Session, job: ImportJob, user_id: int | None) -> None:
    """The queued job's shared state row (added to the session; committed with the ImportJob)."""
    jobs.create(session, jobs.KIND_IMPORT, job.id, user_id)


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
        conn.execute(update(ImportJob).where(ImportJob.id == job.id, ImportJob.status.in_(jobs.ACTIVE))
                     .values(status=STATUS_FAILED, error=message, finished_at=now))

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


def run_job(app: Flask, job_id: int) -> None:
    """Run one import job to completion (called in the worker thread)."""
    with app.app_context():
        session = db.session
        try:
            job = session.get(ImportJob, job_id)
            if job is None:
                return
            state = jobs.claim(session, jobs.KIND_IMPORT, job_id)
            if state is None:
                logger.warning("import job %s is already run by another process", job_id)
                return
            job = session.get(ImportJob, job_id)
            job.status = STATUS_RUNNING
            session.commit()
            path, report_path, filename = job.stored_path, job.report_path, job.filename
            outcome, message = STATUS_FAILED, GENERIC_FAILURE
            with jobs.Heartbeat(app, state.id) as beat:
                try:
                    result = import_file(session, path, report_path=report_path, source_name=filename, job_id=job_id,
                                         progress=beat.progress, commit=False)
                    # The job's outcome is committed in the same transaction as the imported rows.
                    job = session.get(ImportJob, job_id)
                    job.status = STATUS_DONE
                    job.counts = result.counts()
                    job.total_rows = result.total_rows
                    job.processed_rows = result.total_rows
                    job.finished_at = datetime.now(timezone.utc)
                    session.commit()
                    outcome, message = STATUS_DONE, ""
                except TableReadError as exc:
                    session.rollback()
                    message = f"无法读取文件：{exc}"
                    _fail(session, job_id, message)
                except Exception:
                    session.rollback()
                    logger.exception("import job %s failed", job_id)
                    _fail(session, job_id, GENERIC_FAILURE)
            jobs.finish(session, state.id, outcome, message)
        finally:
            db.session.remove()


def _fail(session, job_id: int, message: str) -> None:
    job = session.get(ImportJob, job_id)
    job.status = STATUS_FAILED
    job.error = message
    job.finished_at = datetime.now(timezone.utc)
    session.commit()


def start_job(app: Flask, job_id: int) -> threading.Thread:
    thread = threading.Thread(target=run_job, args=(app, job_id), name=f"import-job-{job_id}", daemon=True)
    thread.start()
    return thread
