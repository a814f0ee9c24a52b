"""The audit log service: `record(...)` adds an entry for any state change (the page is the `audit` blueprint)."""

from __future__ import annotations

from typing import Any

from flask import has_request_context
from flask_login import current_user

from webapp.extensions import db
from webapp.services.audit.models import AuditEntry

MAX_USERNAME = 64


def record(
    action: str,
    object_type: str = "",
    object_id: Any = "",
    cluster_id: str | None = None,
    *,
    actor: str | None = None,
    **detail: Any,
) -> AuditEntry:
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
        detail={
            k: (v if isinstance(v, (str, int, float, bool, type(None), list, dict)) else str(v))
            for k, v in detail.items()
        },
    )
    db.session.add(entry)
    return entry
