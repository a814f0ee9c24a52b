"""The audit log page: admins read it at /audit (entries are written by webapp.services.audit.record)."""

from __future__ import annotations

from flask import Blueprint, render_template, request
from sqlalchemy import func, select

from webapp.auth.roles import ROLE_ADMIN, role_required
from webapp.extensions import db
from webapp.services.audit.models import AuditEntry
from webapp.web.nav import register as register_nav

bp = Blueprint("audit", __name__, url_prefix="/audit", template_folder="templates")
register_nav("audit.index", "审计日志", ROLE_ADMIN)
PAGE_SIZE = 50


@bp.route("/")
@role_required(ROLE_ADMIN)
def index():
    page = max(1, request.args.get("page", 1, type=int))
    action = request.args.get("action", "").strip()
    username = request.args.get("user", "").strip()
    cluster = request.args.get("cluster", "").strip()
    query = select(AuditEntry)
    if action:
        query = query.where(AuditEntry.action.startswith(action))
    if username:
        query = query.where(AuditEntry.username == username)
    if cluster:
        query = query.where(AuditEntry.cluster_id == cluster)
    total = db.session.scalar(select(func.count()).select_from(query.subquery())) or 0
    entries = db.session.scalars(
        query.order_by(AuditEntry.id.desc()).offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)
    ).all()
    return render_template(
        "audit/index.html",
        entries=entries,
        page=page,
        total=total,
        action=action,
        user=username,
        cluster=cluster,
        pages=max(1, (total + PAGE_SIZE - 1) // PAGE_SIZE),
    )
