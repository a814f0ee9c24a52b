"""Home page and the navigation shared by every page."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("main", __name__, template_folder="templates")

from webapp.main import views  # noqa: E402,F401
