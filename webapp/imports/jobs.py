"""Background import jobs: each runs in its own thread with its own app context and database session.

Progress lives in this process's memory (the import's single transaction keeps its rows invisible until the
end, and SQLite allows one writer); the job row records queued/running/done/failed and the final counts.
"""
from __future__ import annotations

import logging
import threading
from datetime import datetime, timezone

from flask import Flask

from chains.enterprise_models import ImportJob
from chains.enterprises.importer import import_file
from chains.enterprises.readers import TableReadError
from webapp.extensions import db

logger = logging.getLogger("chainmatch.imports")

STATUS_QUEUED, STATUS_RUNNING, STATUS_DONE, STATUS_FAILED = "queued", "running", "done", "failed"
FINISHED = (STATUS_DONE, STATUS_FAILED)
GENERIC_FAILURE = "导入失败：系统内部错误，数据库未作任何修改。请检查文件后重试，或联系管理员。"

_progress: dict[int, tuple[int, int]] = {}
_lock = threading.Lock()


def progress_of(job_id: int) -> tuple[int, int] | None:
    """(rows written, rows to write) of a job running in this process, if known."""
    with _lock:
        return _progress.get(job_id)


def _set_progress(job_id: int, done: int, total: int) -> None:
    with _lock:
        _progress[job_id] = (done, total)


def run_job(app: Flask, job_id: int) -> None:
    """Run one import job to completion (called in the worker thread)."""
    with app.app_context():
        session = db.session
        try:
            job = session.get(ImportJob, job_id)
            if job is None:
                return
            job.status = STATUS_RUNNING
            session.commit()
            path, report_path, filename = job.stored_path, job.report_path, job.filename
            try:
                result = import_file(session, path, report_path=report_path, source_name=filename, job_id=job_id,
                                     progress=lambda done, total: _set_progress(job_id, done, total), commit=False)
                # The job's outcome is committed in the same transaction as the imported rows.
                job = session.get(ImportJob, job_id)
                job.status = STATUS_DONE
                job.counts = result.counts()
                job.total_rows = result.total_rows
                job.processed_rows = result.total_rows
                job.finished_at = datetime.now(timezone.utc)
                session.commit()
            except TableReadError as exc:
                session.rollback()
                _fail(session, job_id, f"无法读取文件：{exc}")
            except Exception:
                session.rollback()
                logger.exception("import job %s failed", job_id)
                _fail(session, job_id, GENERIC_FAILURE)
        finally:
            with _lock:
                _progress.pop(job_id, None)
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
