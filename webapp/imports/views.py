"""Upload page, job page with a polled status fragment, report download."""

from __future__ import annotations

import csv
import io
import os
import uuid
from pathlib import Path

from flask import abort, current_app, flash, redirect, render_template, request, send_file, url_for
from flask_login import current_user
from sqlalchemy import select

from chains.enterprise_models import ImportJob
from chains.enterprises.import_report import OUTCOME_LABELS
from chains.enterprises.import_template import write_import_template
from chains.excel import XLSX_MIMETYPE
from webapp.auth.roles import ROLE_ADMIN, ROLE_STAFF, role_required
from webapp.extensions import db
from webapp.imports import bp
from webapp.imports.jobs import (
    FINISHED,
    STATUS_QUEUED,
    can_retry,
    cancel_job,
    create_job_state,
    expire_if_stale,
    progress_of,
    retry_job,
    start_job,
)
from webapp.imports.retention import purge_old_uploads
from webapp.services import jobs as job_state
from webapp.services.tasks import control

ALLOWED_EXTENSIONS = (".csv", ".xlsx")
RECENT_JOBS = 20
REPORT_PREVIEW_ROWS = 300
MAX_FILENAME = 200
# Rows worth a look come first in the preview.
OUTCOME_ORDER = {"rejected": 0, "merged": 1, "updated": 2, "inserted": 3, "unchanged": 4}


def _job_or_404(job_id: int) -> ImportJob:
    job = db.session.get(ImportJob, job_id)
    if job is None:
        abort(404)
    return job


@bp.route("/", methods=["GET"])
@role_required(ROLE_ADMIN, ROLE_STAFF)
def index():
    jobs = db.session.scalars(select(ImportJob).order_by(ImportJob.id.desc()).limit(RECENT_JOBS)).all()
    for job in jobs:
        expire_if_stale(db.session, job)
    return render_template("imports/index.html", jobs=jobs, max_mb=current_app.config["MAX_UPLOAD_MB"])


@bp.route("/template.xlsx")
@role_required(ROLE_ADMIN, ROLE_STAFF)
def template():
    """The import template: the columns to fill in, and a sheet that says what each takes."""
    buffer = io.BytesIO()
    write_import_template(buffer)
    buffer.seek(0)
    return send_file(buffer, mimetype=XLSX_MIMETYPE, as_attachment=True, download_name="企业导入模板.xlsx")


@bp.route("/", methods=["POST"])
@role_required(ROLE_ADMIN, ROLE_STAFF)
def upload():
    file = request.files.get("file")
    if file is None or not file.filename:
        flash("请选择要上传的 CSV 或 XLSX 文件。", "error")
        return redirect(url_for("imports.index"))
    original = os.path.basename(file.filename.replace("\\", "/"))[:MAX_FILENAME]
    extension = Path(original).suffix.lower()
    if extension not in ALLOWED_EXTENSIONS:
        flash(f"不支持的文件类型“{extension or '无扩展名'}”：仅支持 .csv 和 .xlsx。", "error")
        return redirect(url_for("imports.index"))
    upload_dir = Path(current_app.config["UPLOAD_DIR"])
    upload_dir.mkdir(parents=True, exist_ok=True)
    purge_old_uploads(db.session, upload_dir, float(current_app.config["UPLOAD_RETENTION_DAYS"]))
    token = uuid.uuid4().hex
    stored = upload_dir / f"import-{token}{extension}"
    file.save(stored)
    if stored.stat().st_size == 0:
        stored.unlink()
        flash("上传的文件是空的。", "error")
        return redirect(url_for("imports.index"))
    job = ImportJob(
        filename=original,
        stored_path=str(stored),
        status=STATUS_QUEUED,
        report_path=str(upload_dir / f"import-{token}-report.csv"),
        created_by_id=current_user.id,
    )
    db.session.add(job)
    db.session.flush()
    task_id = create_job_state(db.session, job, current_user.id)
    from webapp.services.audit import record

    record("enterprise.import", "import_job", job.id, filename=original)
    db.session.commit()
    start_job(current_app._get_current_object(), job, task_id)
    flash(f"已开始导入“{original}”。", "success")
    return redirect(url_for("imports.detail", job_id=job.id), code=303)


def _status_context(job: ImportJob) -> dict:
    expire_if_stale(db.session, job)
    done, total = progress_of(db.session, job)
    state = job_state.get(db.session, job_state.KIND_IMPORT, job.id)
    return {
        "job": job,
        "done": done,
        "total": total,
        "finished": job.status in FINISHED,
        "has_report": job.status == "done" and bool(job.report_path) and os.path.exists(job.report_path),
        "stopping": control.stopping(current_app, state),
        "can_retry": can_retry(job),
    }


def _report_preview(job: ImportJob) -> tuple[list[dict], int]:
    if job.status != "done" or not job.report_path or not os.path.exists(job.report_path):
        return [], 0
    with open(job.report_path, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    rows.sort(key=lambda r: (OUTCOME_ORDER.get(r.get("结果", ""), 9), int(r.get("行号") or 0)))
    for row in rows:
        name = row.get("企业名称", "")
        # The report escapes formula-like names for spreadsheets; show the original on the page.
        row["企业名称"] = name[1:] if name.startswith("'") else name
        row["label"] = OUTCOME_LABELS.get(row.get("结果", ""), row.get("结果", ""))
    return rows[:REPORT_PREVIEW_ROWS], len(rows)


@bp.route("/<int:job_id>")
@role_required(ROLE_ADMIN, ROLE_STAFF)
def detail(job_id: int):
    job = _job_or_404(job_id)
    rows, total_rows = _report_preview(job)
    return render_template(
        "imports/detail.html",
        rows=rows,
        report_total=total_rows,
        preview_limit=REPORT_PREVIEW_ROWS,
        **_status_context(job),
    )


@bp.route("/<int:job_id>/status")
@role_required(ROLE_ADMIN, ROLE_STAFF)
def status(job_id: int):
    return render_template("imports/_status.html", **_status_context(_job_or_404(job_id)))


@bp.route("/<int:job_id>/report.csv")
@role_required(ROLE_ADMIN, ROLE_STAFF)
def report(job_id: int):
    job = _job_or_404(job_id)
    if job.status != "done" or not job.report_path or not os.path.exists(job.report_path):
        abort(404)
    from webapp.services.audit import record

    record("import.report", "import_job", job.id, filename=job.filename)
    db.session.commit()  # a download changes nothing but the audit log
    return send_file(
        job.report_path, mimetype="text/csv", as_attachment=True, download_name=f"import-report-{job.id}.csv"
    )


def _after_action(job: ImportJob, message: str, category: str):
    """The status fragment (htmx) or the job page, after a cancel or retry."""
    if request.headers.get("HX-Request"):
        return render_template("imports/_status.html", notice=message, category=category, **_status_context(job))
    flash(message, category)
    return redirect(url_for("imports.detail", job_id=job.id), code=303)


@bp.route("/<int:job_id>/cancel", methods=["POST"])
@role_required(ROLE_ADMIN, ROLE_STAFF)
def cancel(job_id: int):
    from webapp.services.audit import record

    job = _job_or_404(job_id)
    # The cancel flag first: a running import holds SQLite's write lock until it stops, so the audit entry (a
    # write) can only be flushed once the import has seen the flag and rolled back.
    outcome = cancel_job(current_app._get_current_object(), db.session, job)
    if not outcome:
        db.session.rollback()
        return _after_action(job, "该导入已结束，无需取消。", "warning")
    record("import.cancel", "import_job", job.id, filename=job.filename)  # committed with the cancel
    db.session.commit()
    if outcome == control.CANCELLED:
        return _after_action(job, "导入已取消。", "success")
    return _after_action(job, "正在取消导入：当前批次处理完后停止，数据库不作任何修改。", "success")


@bp.route("/<int:job_id>/retry", methods=["POST"])
@role_required(ROLE_ADMIN, ROLE_STAFF)
def retry(job_id: int):
    from webapp.services.audit import record

    job = _job_or_404(job_id)
    record("import.retry", "import_job", job.id, filename=job.filename)  # committed with the re-queued job
    if not retry_job(current_app._get_current_object(), db.session, job, current_user.id):
        db.session.rollback()
        return _after_action(job, "该导入无法重试（仅失败或已取消、且上传文件仍保留的导入可以重试）。", "warning")
    return _after_action(job, f"已重新开始导入“{job.filename}”。", "success")
