"""Login, logout and role checks."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("auth", __name__, url_prefix="/auth", template_folder="templates")

# Not sorted: the order the routes and menu entries are registered in.
# isort: off
from webapp.auth import views  # noqa: E402,F401
from webapp.auth import admin_views  # noqa: E402,F401
from webapp.auth import password_views  # noqa: E402,F401
# isort: on
