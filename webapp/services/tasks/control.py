"""Queue and cancel a job whose state row is in `background_jobs` (webapp.services.jobs), whatever its kind."""

from __future__ import annotations

from flask import Flask
from sqlalchemy.orm import Session

from webapp.services import jobs, tasks
from webapp.services.jobs.models import BackgroundJob

CANCELLED = "cancelled"  # a queued job: marked cancelled at once
STOPPING = "stopping"  # a running job: asked to stop, it records itself cancelled after its current chunk


def submit(app: Flask, kind: str, key: str | int, name: str, task_id: str, *args) -> None:
    """Enqueue task `name` for job (kind, key), whose row is queued for `task_id` and committed."""
    tasks.clear_cancel(app, kind, key)
    tasks.enqueue(app, name, task_id, *args)


def cancel(app: Flask, session: Session, row: BackgroundJob | None, message: str) -> str:
    """Cancel a queued or running job: CANCELLED, STOPPING, or "" when it was no longer active."""
    if row is None or row.status not in jobs.ACTIVE:
        return ""
    tasks.request_cancel(app, row.kind, row.key, row.task_id)
    if row.status == jobs.STATUS_QUEUED and jobs.cancel_queued(session, row, message):
        return CANCELLED
    return STOPPING


def stopping(app: Flask, row: BackgroundJob | None) -> bool:
    """Whether an active job was asked to stop (the page shows 正在取消)."""
    return row is not None and row.status in jobs.ACTIVE and tasks.cancel_requested(app, row.kind, row.key)
