"""Enterprise import from the browser: upload CSV/XLSX, run in the background, poll progress, download the report."""

from __future__ import annotations

from flask import Blueprint

from webapp.web import nav

bp = Blueprint("imports", __name__, url_prefix="/imports", template_folder="templates")
nav.register("imports.index", "企业导入", "admin", "staff")

from webapp.imports import views  # noqa: E402,F401
