"""招商线索 views: board, table, detail, create, stage change, edit, feedback, export."""

from __future__ import annotations

import io
import logging
from datetime import date

from flask import abort, flash, redirect, render_template, request, send_file, url_for
from flask_login import current_user
from sqlalchemy import or_, select
from sqlalchemy.orm import selectinload

from chains.chain_models import Chain
from chains.chainmap_io import current_links
from chains.cluster_models import Cluster
from chains.excel import XLSX_MIMETYPE, xlsx_bytes
from webapp.auth.models import ROLE_ADMIN, ROLE_MANAGER, ROLE_STAFF, User, user_clusters
from webapp.auth.roles import STAFF_ROLES, require_cluster_access, role_required
from webapp.extensions import db
from webapp.leads import bp, claims, deadlines, projects
from webapp.leads.attention import attention_items
from webapp.leads.models import (
    CLAIM_FIRST,
    CLAIM_SECOND,
    CLOSED_STAGES,
    EIA_CLASSES,
    FEEDBACK_NOT_RELEVANT,
    FEEDBACK_RELEVANT,
    STAGE_ABANDONED,
    STAGES,
    Lead,
)
from webapp.leads.service import (
    FIELD_LABELS,
    LeadError,
    after_stage_change,
    change_stage,
    create_lead,
    funnel_counts,
    needs_admin_assignment,
    parse_amount,
    parse_date,
    set_feedback,
    update_fields,
)
from webapp.web import nav
from webapp.web.common import vary_on_htmx, wants_fragment
from webapp.web.contacts import tel_href
from webapp.web.integrations import audit, optional_function

logger = logging.getLogger("chainmatch.leads")

EXPORT_HEADERS = (
    "线索编号",
    "企业名称",
    "集聚区",
    "产业链",
    "环节",
    "法定代表人",
    "电话",
    "邮箱",
    "阶段",
    "放弃原因",
    "负责人",
    "下一步",
    "下一步日期",
    "逾期事项",
    "备注",
    "创建时间",
    "更新时间",
)
FEEDBACK_LABELS = {FEEDBACK_RELEVANT: "相关", FEEDBACK_NOT_RELEVANT: "不相关", "": "未标注"}

nav.register("leads.board", "招商线索", *STAFF_ROLES)


bp.after_request(vary_on_htmx)  # the same URL returns a fragment or a full page
bp.add_app_template_global(deadlines.overdue_labels, "overdue_labels")
bp.add_app_template_filter(tel_href, "tel_href")


MAX_ID = 2**31 - 1  # larger numbers cannot be row ids (and PostgreSQL would reject them)


def _id(value: str | None) -> int | None:
    """A row id from a form or query value, or None."""
    value = (value or "").strip()
    return int(value) if value.isdigit() and int(value) <= MAX_ID else None


def _visible_clusters() -> list[Cluster]:
    if current_user.role == ROLE_ADMIN:
        return list(db.session.scalars(select(Cluster).order_by(Cluster.name)))
    return sorted(current_user.clusters, key=lambda c: c.name)


def _get_lead(lead_id: int) -> Lead:
    lead = db.session.get(Lead, lead_id)
    if lead is None:
        abort(404)
    require_cluster_access(lead.cluster_id)
    return lead


def _owner_choices(cluster_id: str) -> list[User]:
    """Accounts that may own a lead of this cluster: admins and the cluster's staff and managers."""
    assigned = select(user_clusters.c.user_id).where(user_clusters.c.cluster_id == cluster_id)
    query = select(User).where(
        User.active.is_(True),
        or_(User.role == ROLE_ADMIN, (User.role.in_((ROLE_STAFF, ROLE_MANAGER)) & User.id.in_(assigned))),
    )
    return list(db.session.scalars(query.order_by(User.username)))


def _filters() -> dict:
    """Filters from the query string, checked against what the user may see."""
    cluster_id = request.args.get("cluster", "").strip()
    if cluster_id:
        require_cluster_access(cluster_id)
    stage = request.args.get("stage", "").strip()
    if stage not in STAGES:
        stage = ""
    owner_id = _id(request.args.get("owner"))
    return {"cluster": cluster_id, "stage": stage, "owner": owner_id, "overdue": request.args.get("overdue") == "1"}


def _query_leads(filters: dict) -> list[Lead]:
    query = select(Lead)
    if current_user.role != ROLE_ADMIN:
        query = query.where(Lead.cluster_id.in_(current_user.cluster_ids() or {""}))
    if filters["cluster"]:
        query = query.where(Lead.cluster_id == filters["cluster"])
    if filters["stage"]:
        query = query.where(Lead.stage == filters["stage"])
    if filters["owner"]:
        query = query.where(Lead.owner_id == filters["owner"])
    if filters["overdue"]:
        query = query.where(Lead.stage.not_in(CLOSED_STAGES))
    # Events feed the funnel (furthest stage reached) and the stage clocks; load them in one query.
    query = query.options(selectinload(Lead.events)).order_by(Lead.updated_at.desc(), Lead.id.desc())
    leads = list(db.session.scalars(query))
    if filters["overdue"]:
        today = date.today()
        leads = [lead for lead in leads if deadlines.overdue_labels(lead, today)]
    return leads


def _owners_in_view(clusters: list[Cluster]) -> list[User]:
    seen: dict[int, User] = {}
    for cluster in clusters:
        for user in _owner_choices(cluster.id):
            seen[user.id] = user
    return sorted(seen.values(), key=lambda u: u.username)


def _link_names(leads: list[Lead]) -> dict[str, str]:
    """Names of the links the leads point at, from each chain's current version."""
    from chains.chain_models import ChainLink

    keys = {lead.link_key for lead in leads if lead.link_key}
    if not keys:
        return {}
    rows = db.session.execute(
        select(ChainLink.key, ChainLink.name)
        .join(Chain, Chain.current_version_id == ChainLink.version_id)
        .where(ChainLink.key.in_(keys))
    )
    return {key: name for key, name in rows}


def _chain_names() -> dict[str, str]:
    return {cid: name for cid, name in db.session.execute(select(Chain.id, Chain.name))}


def _list_context(filters: dict) -> dict:
    leads = _query_leads(filters)
    clusters = _visible_clusters()
    return {
        "leads": leads,
        "filters": filters,
        "clusters": clusters,
        "owners": _owners_in_view(clusters),
        "stages": STAGES,
        "today": date.today(),
        "link_names": _link_names(leads),
        "chain_names": _chain_names(),
    }


@bp.route("/")
@role_required(*STAFF_ROLES)
def board():
    context = _list_context(_filters())
    by_stage = {stage: [] for stage in STAGES}
    for lead in context["leads"]:
        by_stage.setdefault(lead.stage, []).append(lead)
    funnel = funnel_counts(context["leads"])
    chart = {
        "type": "bar",
        "horizontal": True,
        "integer": True,  # lead counts: whole-number ticks
        "labels": [row["stage"] for row in funnel],
        "datasets": [
            {"label": "到达该阶段的线索数", "data": [row["reached"] for row in funnel], "color": "#0b5cad"},
            {"label": "当前处于该阶段", "data": [row["current"] for row in funnel], "color": "#9fb3c8"},
        ],
    }
    return render_template("leads/board.html", by_stage=by_stage, funnel=funnel, chart=chart, **context)


@bp.route("/table")
@role_required(*STAFF_ROLES)
def table():
    context = _list_context(_filters())
    if wants_fragment():
        return render_template("leads/_table.html", **context)
    return render_template("leads/table.html", **context)


@bp.route("/export.xlsx")
@role_required(*STAFF_ROLES)
def export():
    filters = _filters()
    leads = _query_leads(filters)
    link_names = _link_names(leads)
    chain_names = _chain_names()
    today = date.today()
    rows = []
    for lead in leads:
        owner = lead.owner.display_name or lead.owner.username if lead.owner else ""
        row = [
            lead.id,
            lead.enterprise.name,
            lead.cluster.name,
            chain_names.get(lead.chain_id or "", lead.chain_id or ""),
            link_names.get(lead.link_key or "", lead.link_key or ""),
            lead.enterprise.legal_representative,
            lead.enterprise.phone,
            lead.enterprise.email,
            lead.stage,
            lead.abandon_reason,
            owner,
            lead.next_step,
            lead.next_step_date.isoformat() if lead.next_step_date else "",
            "、".join(deadlines.overdue_labels(lead, today)),
            lead.notes,
            lead.created_at.strftime("%Y-%m-%d %H:%M") if lead.created_at else "",
            lead.updated_at.strftime("%Y-%m-%d %H:%M") if lead.updated_at else "",
        ]
        rows.append(row)
    buffer = io.BytesIO(xlsx_bytes([("招商线索", EXPORT_HEADERS, rows)]))  # cells formula-escaped by safe_cell
    audit(
        "lead.export",
        "lead",
        "",
        cluster_id=filters["cluster"] or None,
        rows=len(leads),
        format="xlsx",
        filters={k: v for k, v in filters.items() if isinstance(v, (str, int, list)) and v},
    )
    db.session.commit()  # an export writes nothing but its audit entry
    logger.info("user %s exported %d leads", current_user.id, len(leads))
    return send_file(
        buffer,
        mimetype=XLSX_MIMETYPE,
        as_attachment=True,
        download_name=f"招商线索_{today.isoformat()}.xlsx",
    )


def _fit_on_link(lead: Lead):
    """Why the firm is a candidate of the lead's link (score, evidence, reasons), or None; never breaks the page."""
    if not lead.link_key:
        return None
    from webapp.services.match import firm_on_link

    try:
        return firm_on_link(db.session, lead.cluster_id, lead.link_key, lead.enterprise_id)
    except Exception:  # noqa: BLE001 - the lead page works without the match explanation
        db.session.rollback()
        logger.exception("match explanation failed for lead %s", lead.id)
        return None


def _detail_context(lead: Lead, error: str | None = None) -> dict:
    link_names = _link_names([lead])
    holder = db.session.get(Lead, lead.claim_of_id) if lead.claim == CLAIM_SECOND and lead.claim_of_id else None
    return {
        "holder": claims.public_view(holder) if holder is not None else None,
        "holder_protected": holder is not None and claims.is_protected(holder),
        "competitors": [claims.public_view(c) for c in claims.conflicts_of(db.session, lead)],
        "protected_until": claims.protection_ends(lead) if lead.claim == CLAIM_FIRST else None,
        "pending_request": claims.pending_request(db.session, lead),
        "needs_assignment": needs_admin_assignment(lead),
        "clocks": deadlines.lead_clocks(lead),
        "project_stage": lead.stage in projects.PROJECT_STAGES,
        "project_state": projects.project_state(lead.project, date.today()),
        "number_fields": projects.NUMBER_FIELDS,
        "date_fields": projects.DATE_FIELDS,
        "eia_classes": EIA_CLASSES,
        "what_if": projects.what_if(db.session, lead),
        "lead": lead,
        "stages": STAGES,
        "abandoned": STAGE_ABANDONED,
        "owners": _owner_choices(lead.cluster_id),
        "today": date.today(),
        "field_labels": FIELD_LABELS,
        "feedback_labels": FEEDBACK_LABELS,
        "link_name": link_names.get(lead.link_key or "", lead.link_key or ""),
        "chain_name": _chain_names().get(lead.chain_id or "", ""),
        "error": error,
        "link_attention": _link_attention(lead),
    }


def _link_attention(lead: Lead) -> str:
    """已删除 / 已移动 when a chain map edit took the lead's link away or moved it since the lead was made."""
    if not lead.chain_id or not lead.link_key:
        return ""
    return next(
        (
            item.reason
            for item in attention_items(db.session, lead.chain_id, [lead.cluster_id])
            if item.kind == "招商线索" and item.object_id == lead.id
        ),
        "",
    )


def _render_detail(lead: Lead, error: str | None = None, status: int = 200):
    context = _detail_context(lead, error)
    if wants_fragment():  # the htmx forms replace the lead's main part, not the heading with the match reasons
        return render_template("leads/_main.html", **context), status
    return render_template("leads/detail.html", fit=_fit_on_link(lead), **context), status


@bp.route("/<int:lead_id>")
@role_required(*STAFF_ROLES)
def detail(lead_id: int):
    return _render_detail(_get_lead(lead_id))


@bp.route("/create", methods=["POST"])
@role_required(*STAFF_ROLES)
def create():
    cluster_id = request.form.get("cluster_id", "").strip()
    if not cluster_id:
        abort(400)
    require_cluster_access(cluster_id)
    enterprise = _id(request.form.get("enterprise_id"))
    if enterprise is None:
        abort(400)
    chain_id = request.form.get("chain_id", "").strip() or None
    link_key = request.form.get("link_key", "").strip() or None
    cluster = db.session.get(Cluster, cluster_id)
    if cluster is None:
        abort(404)
    if chain_id and chain_id not in cluster.chain_ids:
        return _create_error("该产业链不属于此集聚区")
    if link_key and (not chain_id or link_key not in {link.key for link in current_links(db.session, chain_id)}):
        return _create_error("该环节不属于所选产业链")
    try:
        lead, created = create_lead(db.session, cluster_id, enterprise, current_user.id, chain_id, link_key)
    except LeadError as exc:
        db.session.rollback()
        return _create_error(str(exc))
    add_target = optional_function("chains.lists", "add_target")
    if created and chain_id and add_target is not None:
        # A lead is also an entry of the cluster's 招商目标企业清单.
        add_target(db.session, cluster_id, chain_id, enterprise, current_user, link_key=link_key, commit=False)
    if created:
        audit("lead.create", "lead", lead.id, cluster_id=cluster_id, enterprise_id=enterprise, link_key=link_key)
    db.session.commit()
    if created:
        logger.info("user %s created lead %s (cluster %s, firm %s)", current_user.id, lead.id, cluster_id, enterprise)
    message = "已加入招商线索" if created else "该企业已有进行中的招商线索"
    holder = db.session.get(Lead, lead.claim_of_id) if lead.claim == CLAIM_SECOND and lead.claim_of_id else None
    if created and holder is not None:
        view = claims.public_view(holder)
        message = (
            f"该企业已由{view['cluster_name']}于 {view['since']:%Y-%m-%d} 首报（当前阶段：{view['stage']}），"
            "本线索登记为第二报；如需协调，请在线索页提出协调申请"
        )
    if wants_fragment():
        return render_template(
            "leads/_created.html", lead=lead, created=created, message=message
        ), 201 if created else 200
    flash(message, "success" if created and holder is None else "warning")
    return redirect(url_for("leads.detail", lead_id=lead.id))


def _create_error(message: str):
    if wants_fragment():
        return render_template("leads/_created.html", lead=None, created=False, message=message, error=True), 400
    return render_template("errors/page.html", code=400, title="无法创建线索", message=message), 400


@bp.route("/<int:lead_id>/stage", methods=["POST"])
@role_required(*STAFF_ROLES)
def stage(lead_id: int):
    lead = _get_lead(lead_id)
    try:
        changed = change_stage(
            db.session,
            lead,
            request.form.get("stage", ""),
            current_user.id,
            request.form.get("abandon_reason", ""),
            is_admin=current_user.role == ROLE_ADMIN,
        )
    except LeadError as exc:
        db.session.rollback()
        return _render_detail(lead, str(exc), 400)
    if changed:
        after_stage_change(db.session, lead, current_user)
    db.session.commit()
    if not wants_fragment():
        flash(f"阶段已更新为“{lead.stage}”" if changed else "阶段未变化", "success")
        return redirect(url_for("leads.detail", lead_id=lead.id))
    return _render_detail(lead)


@bp.route("/<int:lead_id>/edit", methods=["POST"])
@role_required(*STAFF_ROLES)
def edit(lead_id: int):
    lead = _get_lead(lead_id)
    form = request.form
    try:
        changes: dict = {}
        if "owner_id" in form:
            owner = form.get("owner_id", "").strip()
            owner_id = _id(owner)
            if owner and owner_id not in {u.id for u in _owner_choices(lead.cluster_id)}:
                raise LeadError("负责人必须是有权访问该集聚区的账号")
            changes["owner"] = owner_id
        if "next_step" in form:
            changes["next_step"] = form.get("next_step", "").strip()
        if "next_step_date" in form:
            changes["next_step_date"] = parse_date(form.get("next_step_date", ""))
        if "notes" in form:
            changes["notes"] = form.get("notes", "").strip()
        if "planned_investment_wan" in form:
            changes["planned_investment_wan"] = parse_amount(form.get("planned_investment_wan", ""))
        changed = update_fields(db.session, lead, changes, current_user.id, is_admin=current_user.role == ROLE_ADMIN)
    except LeadError as exc:
        db.session.rollback()
        return _render_detail(lead, str(exc), 400)
    if changed:
        audit("lead.edit", "lead", lead.id, cluster_id=lead.cluster_id, fields=changed)
    db.session.commit()
    if not wants_fragment():
        flash("已保存" if changed else "没有需要保存的修改", "success")
        return redirect(url_for("leads.detail", lead_id=lead.id))
    return _render_detail(lead)


@bp.route("/<int:lead_id>/feedback", methods=["POST"])
@role_required(*STAFF_ROLES)
def feedback(lead_id: int):
    """Mark the lead's firm relevant or not for its link; feeds the matcher's learning when available."""
    lead = _get_lead(lead_id)
    value = request.form.get("value", "")
    if value not in (FEEDBACK_RELEVANT, FEEDBACK_NOT_RELEVANT):
        return _render_detail(lead, "无效的反馈值", 400)
    changed = set_feedback(db.session, lead, value, current_user.id)
    record = optional_function("webapp.services.match", "record_feedback")
    if changed and record is not None and lead.link_key:
        record(db.session, lead.cluster_id, lead.link_key, lead.enterprise_id, value, current_user)
    if changed:
        audit("lead.feedback", "lead", lead.id, cluster_id=lead.cluster_id, value=value)
    db.session.commit()
    if not wants_fragment():
        flash(f"已标注为“{FEEDBACK_LABELS[value]}”", "success")
        return redirect(url_for("leads.detail", lead_id=lead.id))
    return _render_detail(lead)
