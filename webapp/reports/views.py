"""Download the 招商分析报告 (.docx) of a cluster's chain."""

from __future__ import annotations

import io
import logging

from flask import abort, render_template, request, send_file
from flask_login import current_user

from webapp.auth.roles import STAFF_ROLES, require_cluster_access, role_required
from webapp.extensions import db
from webapp.leads import kpi
from webapp.reports import bp
from webapp.reports.docx_report import build_report
from webapp.web.integrations import audit

logger = logging.getLogger("chainmatch.reports")

DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


@bp.route("/<cluster_id>/<chain_id>.docx")
@role_required(*STAFF_ROLES)
def cluster_report(cluster_id: str, chain_id: str):
    """The 招商分析报告 of a cluster's chain as a .docx download."""
    require_cluster_access(cluster_id)
    period = None
    if request.args.get("period"):
        try:
            period = kpi.parse_period(request.args["period"])
        except kpi.PeriodError as exc:
            return render_template("errors/page.html", code=400, title="无法生成报告", message=str(exc)), 400
    try:
        data = build_report(db.session, cluster_id, chain_id, period)
    except KeyError:
        abort(404)
    audit("report.download", "cluster", cluster_id, cluster_id=cluster_id, chain_id=chain_id)
    db.session.commit()
    logger.info("user %s downloaded the report of %s/%s", current_user.id, cluster_id, chain_id)
    return send_file(
        io.BytesIO(data),
        mimetype=DOCX_MIME,
        as_attachment=True,
        download_name=f"招商分析报告_{cluster_id}_{chain_id}.docx",
    )
