"""Project facts on a signed lead: save facts, add 到位资金, the projects page with waiting states and ages."""

from __future__ import annotations

import logging
from datetime import date

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from webapp.auth.models import ROLE_ADMIN
from webapp.auth.roles import STAFF_ROLES, role_required
from webapp.extensions import db
from webapp.leads import bp, projects
from webapp.leads.models import Lead, LeadProject
from webapp.leads.service import LeadError
from webapp.leads.views import _get_lead, _render_detail
from webapp.web import nav
from webapp.web.common import wants_fragment
from webapp.web.integrations import audit

logger = logging.getLogger("chainmatch.leads")

nav.register("leads.projects_page", "签约项目", *STAFF_ROLES)


def _done(lead: Lead, message: str):
    """After a change: redirect with a flash, or the lead fragment for htmx."""
    if not wants_fragment():
        flash(message, "success")
        return redirect(url_for("leads.detail", lead_id=lead.id))
    return _render_detail(lead)


@bp.route("/<int:lead_id>/project", methods=["POST"])
@role_required(*STAFF_ROLES)
def save_project(lead_id: int):
    """Create or update the project facts of a signed lead."""
    lead = _get_lead(lead_id)
    fields = tuple(projects.NUMBER_FIELDS) + tuple(projects.DATE_FIELDS) + ("eia_class",)
    try:
        projects.save_project(
            db.session, lead, {k: request.form[k] for k in fields if k in request.form}, current_user.id
        )
    except LeadError as exc:
        db.session.rollback()
        return _render_detail(lead, str(exc), 400)
    audit("lead.project", "lead", lead.id, cluster_id=lead.cluster_id)
    db.session.commit()
    return _done(lead, "项目信息已保存")


@bp.route("/<int:lead_id>/project/funds", methods=["POST"])
@role_required(*STAFF_ROLES)
def add_funds(lead_id: int):
    """Record a 到位资金 entry."""
    lead = _get_lead(lead_id)
    form = request.form
    try:
        projects.add_funding(
            db.session,
            lead,
            form.get("amount_wan", ""),
            form.get("received_on", ""),
            form.get("note", ""),
            current_user.id,
        )
    except LeadError as exc:
        db.session.rollback()
        return _render_detail(lead, str(exc), 400)
    audit("lead.project_funds", "lead", lead.id, cluster_id=lead.cluster_id)
    db.session.commit()
    return _done(lead, "到位资金已记录")


@bp.route("/projects")
@role_required(*STAFF_ROLES)
def projects_page():
    """Every signed project of the user's clusters with its state (签约未开工, 开工未到资…) and its age."""
    query = select(LeadProject).join(Lead)
    if current_user.role != ROLE_ADMIN:
        query = query.where(Lead.cluster_id.in_(current_user.cluster_ids() or {""}))
    state = request.args.get("state", "")
    today = date.today()
    rows = [(p, projects.project_state(p, today)) for p in db.session.scalars(query.order_by(LeadProject.signed_on))]
    if state:
        rows = [(p, s) for p, s in rows if s is not None and s.name == state]
    states = (
        projects.STATE_SIGNED_NOT_STARTED,
        projects.STATE_STARTED_NO_MONEY,
        projects.STATE_BUILDING,
        projects.STATE_PRODUCING,
    )
    template = "leads/_projects.html" if wants_fragment() else "leads/projects.html"
    return render_template(template, rows=rows, states=states, state=state)
