"""产业链维护: chain maps edited in the browser, their versions, diffs, restore, YAML upload and download."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("chainmaps", __name__, url_prefix="/chains", template_folder="templates")

from webapp.chainmaps import versions, views  # noqa: E402,F401
