"""Audit log: `record(...)` from any view; admins read it at /audit."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, has_request_context, render_template, request
from flask_login import current_user
from sqlalchemy import func, select

from webapp.audit.models import AuditEntry
from webapp.auth.roles import ROLE_ADMIN, role_required
from webapp.extensions import db
from webapp.web.nav import register as register_nav

bp = Blueprint("audit", __name__, url_prefix="/audit", template_folder="templates")
register_nav("audit.index", "审计日志", ROLE_ADMIN)
PAGE_SIZE = 50


MAX_USERNAME = 64


def record(action: str, object_type: str = "", object_id: Any = "", cluster_id: str | None = None, *,
           actor: str | None = None, **detail: Any) -> AuditEntry:
    """Add an audit entry to the current session (committed with the change it describes).

    `actor` names who acted when nobody is logged in (a login attempt: the name as typed, existing or not).
    """
    user = current_user if has_request_context() and current_user.is_authenticated else None
    if actor is not None:
        username = actor[:MAX_USERNAME]
    else:
        username = user.username if user else "cli"
    entry = AuditEntry(
        user_id=user.id if user else None,
        username=username,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        cluster_id=cluster_id,
        detail={k: (v if isinstance(v, (str, int, float, bool, type(None), list, dict)) else str(v)) for k, v in detail.items()},
    )
    db.session.add(entry)
    return entry


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
    entries = db.session.scalars(query.order_by(AuditEntry.id.desc()).offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)).all()
    return render_template("audit/index.html", entries=entries, page=page, total=total, action=action,
                           user=username, cluster=cluster,
                           pages=max(1, (total + PAGE_SIZE - 1) // PAGE_SIZE))
