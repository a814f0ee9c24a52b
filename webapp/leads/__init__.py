"""招商线索: lead board, table, detail with history, stage changes, Excel export, funnel chart."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("leads", __name__, url_prefix="/leads", template_folder="templates")

# Not sorted: the board's routes and hooks first (views), then the sub-pages'.
# isort: off
from webapp.leads import views, register_views, project_views, kpi_views  # noqa: E402,F401
# isort: on
