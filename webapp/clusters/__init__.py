"""集聚区: cluster list and dashboard, chain map (图谱) with link panel, N lists curation, placement review."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("clusters", __name__, url_prefix="/clusters", template_folder="templates")

# Not sorted: the page's own routes and hooks first (views), then the sub-pages'.
# isort: off
from webapp.clusters import views, edit_views, lists_views, placement_views  # noqa: E402,F401
# isort: on
