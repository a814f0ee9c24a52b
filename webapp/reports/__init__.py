"""招商分析报告: a Word document per cluster and chain, downloaded from the cluster page or made by the CLI."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("reports", __name__, url_prefix="/reports", template_folder="templates")

from webapp.reports import views  # noqa: E402,F401
