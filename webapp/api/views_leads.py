"""招商线索 (leads): list, create, read with history, edit, change stage, delete (admins)."""

from __future__ import annotations

import logging

from sqlalchemy import func, or_, select

from chains.cluster_models import Cluster
from webapp.api import bp
from webapp.api.core import api_user, operation, paginate, require_cluster
from webapp.api.errors import ApiError
from webapp.api.schemas_leads import LeadCreateInput, LeadDetailOut, LeadOut, LeadQuery, LeadStageInput, LeadUpdateInput
from webapp.auth.models import ROLE_ADMIN, ROLE_MANAGER, ROLE_STAFF, STAFF_ROLES, User, user_clusters
from webapp.extensions import db
from webapp.leads.models import STAGES, Lead
from webapp.leads.service import LeadError, after_stage_change, change_stage, create_lead, update_fields
from webapp.web.integrations import audit, optional_function

logger = logging.getLogger("chainmatch.api")

TAGS = ["招商线索"]


def _lead(lead_id: int) -> Lead:
    lead = db.session.get(Lead, lead_id)
    if lead is None:
        raise ApiError(404, f"线索 {lead_id} 不存在。")
    require_cluster(lead.cluster_id)
    return lead


@bp.get("/leads")
@operation(
    "线索列表（仅限有权访问的集聚区）", tags=TAGS, roles=STAFF_ROLES, query=LeadQuery, response=LeadOut, paginated=True
)
def list_leads(query: dict):
    user = api_user()
    conds = []
    if user.role != ROLE_ADMIN:
        conds.append(Lead.cluster_id.in_(user.cluster_ids() or {""}))
    if query.get("cluster"):
        require_cluster(query["cluster"])
        conds.append(Lead.cluster_id == query["cluster"])
    if query.get("stage"):
        if query["stage"] not in STAGES:
            raise ApiError(422, "未知的阶段。", {"query": {"stage": [f"可选：{'、'.join(STAGES)}"]}})
        conds.append(Lead.stage == query["stage"])
    if query.get("owner") is not None:
        conds.append(Lead.owner_id == query["owner"])
    if query.get("enterprise_id") is not None:
        conds.append(Lead.enterprise_id == query["enterprise_id"])
    total = db.session.scalar(select(func.count(Lead.id)).where(*conds)) or 0
    page, limit = query["page"], query["limit"]
    rows = (
        db.session.scalars(select(Lead).where(*conds).order_by(Lead.id.desc()).offset((page - 1) * limit).limit(limit))
        .unique()
        .all()
    )
    return paginate(total, page, limit, list(rows))


@bp.post("/leads")
@operation(
    "创建线索（同一企业同一环节已有进行中的线索时返回该线索，状态 200）",
    tags=TAGS,
    roles=STAFF_ROLES,
    body=LeadCreateInput,
    response=LeadDetailOut,
    status=201,
    errors=(400, 401, 403, 404, 415, 422, 429),
)
def post_lead(body: dict):
    user = api_user()
    cluster_id = body["cluster_id"]
    require_cluster(cluster_id)
    cluster = db.session.get(Cluster, cluster_id)
    if cluster is None:
        raise ApiError(404, f"集聚区 {cluster_id} 不存在。")
    chain_id = body.get("chain_id") or None
    link_key = body.get("link_key") or None
    if chain_id and chain_id not in cluster.chain_ids:
        raise ApiError(422, "该产业链不属于此集聚区。", {"body": {"chain_id": ["不属于该集聚区"]}})
    if link_key and not chain_id:
        chain_id = _chain_of_link(cluster, link_key)
    elif link_key and not _link_in_chain(chain_id, link_key):
        raise ApiError(422, "该环节不属于此产业链。", {"body": {"link_key": ["不属于该产业链"]}})
    try:
        lead, created = create_lead(db.session, cluster_id, body["enterprise_id"], user.id, chain_id, link_key)
    except LeadError as exc:
        db.session.rollback()
        raise ApiError(422, str(exc)) from None
    add_target = optional_function("chains.lists", "add_target")
    if created and chain_id and add_target is not None:
        add_target(db.session, cluster_id, chain_id, body["enterprise_id"], user, link_key=link_key, commit=False)
    if created:
        audit(
            "lead.create",
            "lead",
            lead.id,
            cluster_id=cluster_id,
            enterprise_id=body["enterprise_id"],
            link_key=link_key,
        )
    db.session.commit()
    response = LeadDetailOut().dump(lead)
    return response, (201 if created else 200)


def _link_in_chain(chain_id: str, link_key: str) -> bool:
    """Whether the chain's current version has this link."""
    from chains.chainmap_io import current_links

    return any(link.key == link_key for link in current_links(db.session, chain_id))


def _chain_of_link(cluster: Cluster, link_key: str) -> str:
    from chains.chainmap_io import current_links

    for chain_id in cluster.chain_ids:
        if any(link.key == link_key for link in current_links(db.session, chain_id)):
            return chain_id
    raise ApiError(422, "环节不属于该集聚区的产业链。", {"body": {"link_key": ["不属于该集聚区"]}})


@bp.get("/leads/<int:lead_id>")
@operation("线索详情（含变更历史）", tags=TAGS, roles=STAFF_ROLES, response=LeadDetailOut)
def get_lead(lead_id: int):
    return _lead(lead_id)


@bp.patch("/leads/<int:lead_id>")
@operation(
    "修改线索（负责人、下一步、下一步日期、备注）",
    tags=TAGS,
    roles=STAFF_ROLES,
    body=LeadUpdateInput,
    response=LeadDetailOut,
)
def patch_lead(lead_id: int, body: dict):
    lead = _lead(lead_id)
    changes: dict = {}
    if "owner_id" in body:
        owner = body["owner_id"]
        if owner is not None and owner not in _owner_ids(lead.cluster_id):
            raise ApiError(422, "负责人必须是有权访问该集聚区的账号。", {"body": {"owner_id": ["无效的负责人"]}})
        changes["owner"] = owner
    for name in ("next_step", "next_step_date", "notes", "planned_investment_wan"):
        if name in body:
            value = body[name]
            changes[name] = value.strip() if isinstance(value, str) else value
    try:
        changed = update_fields(db.session, lead, changes, api_user().id, is_admin=api_user().role == ROLE_ADMIN)
    except LeadError as exc:
        db.session.rollback()
        raise ApiError(422, str(exc)) from None
    if changed:
        audit("lead.edit", "lead", lead.id, cluster_id=lead.cluster_id, fields=changed)
    db.session.commit()
    return lead


def _owner_ids(cluster_id: str) -> set[int]:
    """Accounts that may own a lead of this cluster: admins and the cluster's staff and managers."""
    assigned = select(user_clusters.c.user_id).where(user_clusters.c.cluster_id == cluster_id)
    return set(
        db.session.scalars(
            select(User.id).where(
                User.active.is_(True),
                or_(User.role == ROLE_ADMIN, (User.role.in_((ROLE_STAFF, ROLE_MANAGER)) & User.id.in_(assigned))),
            )
        )
    )


@bp.post("/leads/<int:lead_id>/stage")
@operation(
    "变更线索阶段（记入历史；放弃需填写原因）",
    tags=TAGS,
    roles=STAFF_ROLES,
    body=LeadStageInput,
    response=LeadDetailOut,
)
def post_lead_stage(lead_id: int, body: dict):
    lead = _lead(lead_id)
    user = api_user()
    try:
        changed = change_stage(
            db.session, lead, body["stage"], user.id, body.get("reason", ""), is_admin=user.role == ROLE_ADMIN
        )
    except LeadError as exc:
        db.session.rollback()
        raise ApiError(422, str(exc), {"body": {"stage": [str(exc)]}}) from None
    if changed:
        after_stage_change(db.session, lead, user)
    db.session.commit()
    return lead


@bp.delete("/leads/<int:lead_id>")
@operation("删除线索（仅管理员）", tags=TAGS, roles=(ROLE_ADMIN,), status=204)
def delete_lead(lead_id: int):
    from flask import Response

    lead = _lead(lead_id)
    audit("lead.delete", "lead", lead.id, cluster_id=lead.cluster_id, enterprise_id=lead.enterprise_id)
    db.session.delete(lead)
    db.session.commit()
    return Response(status=204)
