"""The shared target register page, coordination requests (协调申请) with the admin's decision, progress entries."""

from __future__ import annotations

import logging

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import or_, select

from chains.db import utcnow
from webapp.auth.models import ROLE_ADMIN
from webapp.auth.roles import STAFF_ROLES, require_cluster_access, role_required
from webapp.extensions import db
from webapp.leads import bp, claims
from webapp.leads.models import COORD_LABELS, COORD_PENDING, CoordinationRequest, Lead
from webapp.leads.service import LeadError, add_progress
from webapp.leads.views import _get_lead, _render_detail, _visible_clusters
from webapp.web import nav
from webapp.web.common import wants_fragment
from webapp.web.integrations import audit

logger = logging.getLogger("chainmatch.leads")

nav.register("leads.register", "首报登记", *STAFF_ROLES)


@bp.route("/register")
@role_required(*STAFF_ROLES)
def register():
    """Every claimed firm: holder cluster, owner, stage, age, protection and competing claims — never notes."""
    cluster_id = request.args.get("cluster", "").strip()
    conflicts_only = request.args.get("conflicts") == "1"
    rows = claims.register_rows(db.session, cluster_id or None, conflicts_only)
    context = {
        "rows": rows,
        "clusters": _visible_clusters(),
        "filters": {"cluster": cluster_id, "conflicts": conflicts_only},
        "readable": readable_clusters(),
        "today": utcnow().date(),
    }
    template = "leads/_register.html" if wants_fragment() else "leads/register.html"
    return render_template(template, **context)


def readable_clusters() -> set[str] | None:
    """Clusters whose leads the user may open (None: all, for admins)."""
    return None if current_user.role == ROLE_ADMIN else set(current_user.cluster_ids())


@bp.route("/coordination")
@role_required(*STAFF_ROLES)
def coordination():
    """协调申请: admins see all and decide; others see those of their clusters' leads."""
    query = select(CoordinationRequest).order_by(
        CoordinationRequest.status != COORD_PENDING, CoordinationRequest.id.desc()
    )
    if current_user.role != ROLE_ADMIN:
        mine = select(Lead.id).where(Lead.cluster_id.in_(current_user.cluster_ids() or {""}))
        query = query.where(or_(CoordinationRequest.lead_id.in_(mine), CoordinationRequest.holder_lead_id.in_(mine)))
    requests = list(db.session.scalars(query))
    context = {"requests": requests, "labels": COORD_LABELS, "readable": readable_clusters(), "pending": COORD_PENDING}
    template = "leads/_coordination.html" if wants_fragment() else "leads/coordination.html"
    return render_template(template, **context)


@bp.route("/<int:lead_id>/coordination", methods=["POST"])
@role_required(*STAFF_ROLES)
def request_coordination(lead_id: int):
    """File a 协调申请 for a second claim."""
    lead = _get_lead(lead_id)
    try:
        filed = claims.request_coordination(db.session, lead, current_user.id, request.form.get("reason", ""))
    except claims.ClaimError as exc:
        db.session.rollback()
        return _render_detail(lead, str(exc), 400)
    audit("lead.coordination", "lead", lead.id, cluster_id=lead.cluster_id, request_id=filed.id)
    db.session.commit()
    logger.info("user %s filed coordination request %s for lead %s", current_user.id, filed.id, lead.id)
    if not wants_fragment():
        flash("协调申请已提交，等待管理员裁定", "success")
        return redirect(url_for("leads.detail", lead_id=lead.id))
    return _render_detail(lead)


@bp.route("/coordination/<int:request_id>/decide", methods=["POST"])
@role_required(ROLE_ADMIN)
def decide_coordination(request_id: int):
    """An administrator approves or rejects a 协调申请."""
    filed = db.session.get(CoordinationRequest, request_id)
    if filed is None:
        abort(404)
    decision = request.form.get("decision", "")
    if decision not in ("approve", "reject"):
        return _decision_error("请选择批准或驳回")
    try:
        claims.decide(db.session, filed, decision == "approve", current_user.id, request.form.get("note", ""))
    except claims.ClaimError as exc:
        db.session.rollback()
        return _decision_error(str(exc))
    audit(
        "lead.coordination_decision",
        "lead",
        filed.lead_id,
        cluster_id=filed.lead.cluster_id,
        request_id=filed.id,
        decision=decision,
    )
    db.session.commit()
    logger.info("admin %s decided coordination request %s: %s", current_user.id, filed.id, decision)
    if wants_fragment():
        return coordination()
    flash(f"已裁定：{filed.status_label}", "success")
    return redirect(url_for("leads.coordination"))


def _decision_error(message: str):
    """A refused decision: the message as a fragment or an error page (400)."""
    if wants_fragment():
        return render_template("leads/_flash_error.html", message=message), 400
    return render_template("errors/page.html", code=400, title="无法裁定", message=message), 400


@bp.route("/<int:lead_id>/progress", methods=["POST"])
@role_required(*STAFF_ROLES)
def progress(lead_id: int):
    """Record a progress entry (进展记录)."""
    lead = _get_lead(lead_id)
    require_cluster_access(lead.cluster_id)
    try:
        add_progress(db.session, lead, request.form.get("text", ""), current_user.id)
    except LeadError as exc:
        db.session.rollback()
        return _render_detail(lead, str(exc), 400)
    audit("lead.progress", "lead", lead.id, cluster_id=lead.cluster_id)
    db.session.commit()
    if not wants_fragment():
        flash("进展已记录", "success")
        return redirect(url_for("leads.detail", lead_id=lead.id))
    return _render_detail(lead)
