"""考核 page with charts and its Excel export."""

from __future__ import annotations

import io
import logging
from datetime import date

from flask import render_template, request, send_file
from flask_login import current_user

from chains.excel import XLSX_MIMETYPE, xlsx_bytes
from webapp.auth.roles import STAFF_ROLES, require_cluster_access, role_required
from webapp.extensions import db
from webapp.leads import bp, kpi
from webapp.leads.views import _visible_clusters
from webapp.web import nav
from webapp.web.common import wants_fragment

logger = logging.getLogger("chainmatch.leads")

nav.register("leads.kpi_page", "考核", *STAFF_ROLES)


def _selection() -> tuple[str, kpi.Period | None, str | None, list]:
    """The cluster (checked), the period (default this quarter) and an error message from the query string."""
    clusters = _visible_clusters()
    cluster_id = request.args.get("cluster", "").strip() or (clusters[0].id if clusters else "")
    if cluster_id:
        require_cluster_access(cluster_id)
    text = request.args.get("period", "").strip() or kpi.current_quarter(date.today())
    try:
        return cluster_id, kpi.parse_period(text), None, clusters
    except kpi.PeriodError as exc:
        return cluster_id, None, str(exc), clusters


CHARTED_METRICS = ("created", "visits", "signed", "landed")  # the staff comparison's bars


def _charts(result: dict) -> dict | None:
    """Chart specs (ui-charts.js) of the staff comparison and the stage conversion; None for a period with nothing
    to plot (empty axes would read as a chart of zeros)."""
    if not any(result["totals"][k] for k in CHARTED_METRICS) and not any(c["base"] for c in result["conversion"]):
        return None
    staff = result["staff"]
    return {
        "staff": {
            "type": "bar",
            "integer": True,
            "labels": [s["name"] for s in staff],
            "datasets": [
                {"label": kpi.METRICS[k], "data": [s[k] for s in staff], "color": color}
                for k, color in zip(CHARTED_METRICS, ("#0b5cad", "#2e8540", "#d97706", "#7c3aed"))
            ],
        },
        "conversion": {
            "type": "bar",
            "horizontal": True,
            "max": 100,  # a percentage: the axis ends at 100 % whatever the rates
            "labels": [f"{c['from']}→{c['to']}" for c in result["conversion"]],
            "datasets": [
                {
                    "label": "转化率（%）",
                    "color": "#0b5cad",
                    "data": [round(c["rate"] * 100, 1) if c["rate"] is not None else 0 for c in result["conversion"]],
                }
            ],
        },
    }


@bp.route("/kpi")
@role_required(*STAFF_ROLES)
def kpi_page():
    """The 考核 page of one cluster and period, with charts."""
    cluster_id, period, error, clusters = _selection()
    result = kpi.cluster_kpi(db.session, cluster_id, period) if cluster_id and period else None
    context = {
        "result": result,
        "error": error,
        "clusters": clusters,
        "cluster_id": cluster_id,
        "period": period.label if period else request.args.get("period", ""),
        "metrics": kpi.METRICS,
        "charts": _charts(result) if result else None,
    }
    template = "leads/_kpi.html" if wants_fragment() else "leads/kpi.html"
    return render_template(template, **context), 400 if error else 200


@bp.route("/kpi.xlsx")
@role_required(*STAFF_ROLES)
def kpi_export():
    """The 考核 figures as an Excel workbook."""
    cluster_id, period, error, _ = _selection()
    if error or not cluster_id:
        return render_template("errors/page.html", code=400, title="无法导出", message=error or "请选择集聚区"), 400
    result = kpi.cluster_kpi(db.session, cluster_id, period)
    logger.info("user %s exported KPI of cluster %s for %s", current_user.id, cluster_id, period.label)
    return send_file(
        io.BytesIO(xlsx_bytes(kpi.kpi_sheets(result))),
        as_attachment=True,
        mimetype=XLSX_MIMETYPE,
        download_name=f"考核_{result['cluster_name']}_{period.label}.xlsx",
    )
