"""企业归位 runs as tasks of the task worker (webapp.services.tasks): queue, run, cancel, and the run the page shows."""

from __future__ import annotations

import logging

from flask import Flask, current_app

from webapp.extensions import db
from webapp.services import jobs, tasks
from webapp.services.jobs.models import BackgroundJob
from webapp.services.tasks import control
from webapp.web.integrations import optional_function

logger = logging.getLogger("chainmatch.clusters")

TASK = "placement"
DONE_MESSAGE = "匹配完成，生成 {count} 条归位建议。"
FAILED_MESSAGE = "自动归位失败（匹配索引可能尚未构建），请稍后重试或联系管理员。"
STALE_MESSAGE = "自动归位中断：执行该任务的服务进程已停止，未生成新的归位建议，请重新运行。"
CANCELLED_MESSAGE = "自动归位已取消，未生成新的归位建议。"


def run_placement(app: Flask, task_id: str, cluster_id: str, user_id: int | None) -> None:
    """Run a queued placement run of `cluster_id` (a task of the task worker, or a thread in `thread` mode)."""
    place = optional_function("webapp.services.match", "place_roster")
    with app.app_context():
        try:
            row = jobs.start_queued(db.session, jobs.KIND_PLACEMENT, cluster_id, task_id)
            if row is None:
                logger.info("placement of %s: task %s skipped (cancelled or taken)", cluster_id, task_id)
                return
            status, message = jobs.STATUS_FAILED, FAILED_MESSAGE
            with jobs.Heartbeat(app, row.id, tasks.stop_check(app, jobs.KIND_PLACEMENT, cluster_id)) as beat:
                try:
                    result = place(db.session, cluster_id, user_id=user_id, checkpoint=beat.check)
                    beat.check(force=True)  # a cancel asked for meanwhile still wins: nothing is committed
                    db.session.commit()
                    count = len(result) if hasattr(result, "__len__") else result
                    message = DONE_MESSAGE.format(count=count) if isinstance(count, int) else "匹配完成。"
                    status = jobs.STATUS_DONE
                except jobs.JobCancelled:
                    db.session.rollback()
                    logger.info("placement run of %s cancelled", cluster_id)
                    status, message = jobs.STATUS_CANCELLED, CANCELLED_MESSAGE
                except Exception:  # reported to the user in Chinese; details in the log
                    db.session.rollback()
                    logger.exception("placement run failed for %s", cluster_id)
            jobs.finish(db.session, row.id, status, message)
        finally:
            db.session.remove()


def start_run(cluster_id: str, user_id: int | None) -> BackgroundJob | None:
    """Queue a placement run (commits its job row); the row, or None while another run is queued or running."""
    current_job(cluster_id)  # a run whose worker died no longer blocks a new one
    task_id = tasks.new_task_id()
    row = jobs.claim(db.session, jobs.KIND_PLACEMENT, cluster_id, user_id, task_id=task_id)
    if row is None:
        return None
    control.submit(
        current_app._get_current_object(), jobs.KIND_PLACEMENT, cluster_id, TASK, task_id, cluster_id, user_id
    )
    return row


def cancel_run(cluster_id: str) -> str:
    """Cancel the cluster's queued or running run: control.CANCELLED, control.STOPPING or "" (none active)."""
    return control.cancel(current_app._get_current_object(), db.session, current_job(cluster_id), CANCELLED_MESSAGE)


def wait_for_runs(timeout: float | None = None) -> None:
    """Wait for the placement runs (and other jobs) this process runs in threads (tests, shutdown)."""
    tasks.wait_for_threads(timeout)


def current_job(cluster_id: str) -> BackgroundJob | None:
    """The cluster's latest placement run (any worker's); a run whose worker died is marked failed first."""
    job = jobs.get(db.session, jobs.KIND_PLACEMENT, cluster_id)
    if job is not None and jobs.is_stale(job, jobs.stale_seconds()):
        jobs.expire(db.engine, job, STALE_MESSAGE)
        job = jobs.get(db.session, jobs.KIND_PLACEMENT, cluster_id)
    return job
