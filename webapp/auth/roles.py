"""Roles and the role checks used by every view: `role_required(...)` and `require_cluster_access(cluster_id)`."""

from __future__ import annotations

from webapp.auth.models import ROLE_ADMIN, ROLE_FIRM, ROLE_MANAGER, ROLE_STAFF, STAFF_ROLES  # noqa: F401
from webapp.web.common import require_cluster_access, role_required  # noqa: F401
