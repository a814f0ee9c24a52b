"""首报登记 (shared target register), 协调申请 with the administrator's decision, and progress entries."""

from __future__ import annotations

import logging

from sqlalchemy import or_, select

from webapp.api import bp
from webapp.api.core import api_user, operation, require_cluster
from webapp.api.errors import ApiError
from webapp.api.schemas_leads import LeadDetailOut
from webapp.api.schemas_register import (
    CoordinationInput,
    CoordinationOut,
    DecisionInput,
    ProgressInput,
    RegisterQuery,
    RegisterRowOut,
)
from webapp.api.views_leads import _lead
from webapp.auth.models import ROLE_ADMIN, STAFF_ROLES
from webapp.extensions import db
from webapp.leads import claims
from webapp.leads.models import CoordinationRequest, Lead
from webapp.leads.service import LeadError, add_progress
from webapp.web.integrations import audit

logger = logging.getLogger("chainmatch.api")

TAGS = ["首报登记"]


@bp.get("/register")
@operation(
    "首报登记：所有首报企业、首报集聚区、阶段、时长、保护期与冲突（不含任何集聚区的备注）",
    tags=TAGS,
    roles=STAFF_ROLES,
    query=RegisterQuery,
    response=RegisterRowOut,
    many=True,
)
def get_register(query: dict):
    return claims.register_rows(db.session, query.get("cluster") or None, query["conflicts"])


def _dump_requests(requests: list[CoordinationRequest]) -> list[dict]:
    user = api_user()
    mine = None if user.role == ROLE_ADMIN else set(user.cluster_ids())
    out = CoordinationOut().dump(requests, many=True)
    for row, filed in zip(out, requests):
        if mine is not None and filed.lead.cluster_id not in mine:
            row["reason"] = None  # the requester's reason is for the administrator
    return out


@bp.get("/coordination")
@operation(
    "协调申请列表（管理员：全部；其他角色：涉及本集聚区线索的申请）",
    tags=TAGS,
    roles=STAFF_ROLES,
    response=CoordinationOut,
    many=True,
)
def list_coordination():
    from flask import jsonify

    user = api_user()
    query = select(CoordinationRequest).order_by(CoordinationRequest.id.desc())
    if user.role != ROLE_ADMIN:
        own = select(Lead.id).where(Lead.cluster_id.in_(user.cluster_ids() or {""}))
        query = query.where(or_(CoordinationRequest.lead_id.in_(own), CoordinationRequest.holder_lead_id.in_(own)))
    return jsonify(_dump_requests(list(db.session.scalars(query))))


@bp.post("/leads/<int:lead_id>/coordination")
@operation(
    "为第二报线索提出协调申请（由管理员裁定）",
    tags=TAGS,
    roles=STAFF_ROLES,
    body=CoordinationInput,
    response=CoordinationOut,
    status=201,
)
def post_coordination(lead_id: int, body: dict):
    lead = _lead(lead_id)
    try:
        filed = claims.request_coordination(db.session, lead, api_user().id, body["reason"])
    except claims.ClaimError as exc:
        db.session.rollback()
        raise ApiError(422, str(exc)) from None
    audit("lead.coordination", "lead", lead.id, cluster_id=lead.cluster_id, request_id=filed.id)
    db.session.commit()
    return filed


@bp.post("/coordination/<int:request_id>/decision")
@operation(
    "裁定协调申请（仅管理员）：approve 首报转至申请方，reject 维持原首报",
    tags=TAGS,
    roles=(ROLE_ADMIN,),
    body=DecisionInput,
    response=CoordinationOut,
)
def post_decision(request_id: int, body: dict):
    filed = db.session.get(CoordinationRequest, request_id)
    if filed is None:
        raise ApiError(404, f"协调申请 {request_id} 不存在。")
    try:
        claims.decide(db.session, filed, body["decision"] == "approve", api_user().id, body["note"])
    except claims.ClaimError as exc:
        db.session.rollback()
        raise ApiError(422, str(exc)) from None
    audit(
        "lead.coordination_decision",
        "lead",
        filed.lead_id,
        cluster_id=filed.lead.cluster_id,
        request_id=filed.id,
        decision=body["decision"],
    )
    db.session.commit()
    logger.info("admin %s decided coordination request %s via the API", api_user().id, filed.id)
    return filed


@bp.post("/leads/<int:lead_id>/progress")
@operation(
    "记录线索进展（计入办理时限与首谈保护）",
    tags=["招商线索"],
    roles=STAFF_ROLES,
    body=ProgressInput,
    response=LeadDetailOut,
    status=201,
)
def post_progress(lead_id: int, body: dict):
    lead = _lead(lead_id)
    require_cluster(lead.cluster_id)
    try:
        add_progress(db.session, lead, body["text"], api_user().id)
    except LeadError as exc:
        db.session.rollback()
        raise ApiError(422, str(exc)) from None
    audit("lead.progress", "lead", lead.id, cluster_id=lead.cluster_id)
    db.session.commit()
    return lead
