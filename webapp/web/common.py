"""View helpers shared by the blueprints: role guards, htmx fragments, the cluster lookup with its access check.

The guards need only the logged-in user (flask-login); the role names and `STAFF_ROLES` live in `webapp.auth`.
"""

from __future__ import annotations

from functools import wraps
from typing import Callable

from flask import Response, abort
from flask_login import current_user, login_required

from chains.cluster_models import Cluster
from webapp.extensions import db, htmx


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


def wants_fragment() -> bool:
    """An htmx request that swaps part of a page (a history restore needs the full page)."""
    return bool(htmx) and not htmx.history_restore_request


def vary_on_htmx(response: Response) -> Response:
    """After-request hook: the same URL returns a fragment or a full page depending on HX-Request."""
    response.headers.add("Vary", "HX-Request")
    return response


def get_cluster(cluster_id: str) -> Cluster:
    """The cluster of a page, after the access check (403 before 404 so ids of other clusters do not leak)."""
    require_cluster_access(cluster_id)
    cluster = db.session.get(Cluster, cluster_id)
    if cluster is None:
        abort(404)
    return cluster
