"""Role checks used by every view: `role_required(...)` and `require_cluster_access(cluster_id)`."""
from __future__ import annotations

from functools import wraps
from typing import Callable

from flask import abort
from flask_login import current_user, login_required

from webapp.auth.models import ROLE_ADMIN, ROLE_FIRM, ROLE_MANAGER, ROLE_STAFF  # noqa: F401


def role_required(*roles: str) -> Callable:
    """Login required, and the user's role must be one of `roles` (403 otherwise)."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        @login_required
        def wrapped(*args, **kwargs):
            if current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        wrapped.allowed_roles = tuple(roles)  # type: ignore[attr-defined]
        return wrapped

    return decorator


def require_cluster_access(cluster_id: str) -> None:
    """403 unless the current user may see this cluster's data."""
    if not current_user.is_authenticated or not current_user.can_access_cluster(cluster_id):
        abort(403)
