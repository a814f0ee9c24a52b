"""供需对接 matchmaking requests: firms file and read their own; cluster staff list them and change status."""
from __future__ import annotations

import logging

from sqlalchemy import func, select

from chains.enterprise_models import Enterprise
from webapp.api import bp
from webapp.api.core import api_user, operation, paginate, require_cluster
from webapp.api.errors import ApiError
from webapp.api.schemas import (
    MeOut,
    RequestCreateInput,
    RequestDetailOut,
    RequestOut,
    RequestQuery,
    RequestStatusInput,
)
from webapp.auth.models import ROLE_ADMIN, ROLE_FIRM, ROLE_MANAGER, ROLE_STAFF
from webapp.clusters.integrations import audit
from webapp.extensions import db
from webapp.suppliers.access import firm_clusters, need_links, staff_visible_clusters
from webapp.suppliers.models import (
    OPEN_STATUSES,
    REQUEST_STATUSES,
    STATUS_PENDING,
    MatchmakingEvent,
    MatchmakingRequest,
)

logger = logging.getLogger("chainmatch.api")

STAFF_ROLES = (ROLE_ADMIN, ROLE_STAFF, ROLE_MANAGER)
ALL_ROLES = (ROLE_ADMIN, ROLE_STAFF, ROLE_MANAGER, ROLE_FIRM)
TAGS = ["供需对接"]


@bp.get("/me")
@operation("当前令牌对应的账号", tags=["账号"], roles=ALL_ROLES, response=MeOut)
def get_me():
    return api_user()


def _visible_query():
    user = api_user()
    query = select(MatchmakingRequest)
    if user.role == ROLE_FIRM:
        return query.where(MatchmakingRequest.requester_id == (user.enterprise_id or -1))
    visible = staff_visible_clusters(user)
    if visible is not None:
        query = query.where(MatchmakingRequest.cluster_id.in_(visible or {""}))
    return query


def _request(request_id: int) -> MatchmakingRequest:
    """A request the user may see; another firm's request is a 404 (no leak), another cluster's a 403."""
    user = api_user()
    req = db.session.get(MatchmakingRequest, request_id)
    if req is None:
        raise ApiError(404, f"对接申请 {request_id} 不存在。")
    if user.role == ROLE_FIRM:
        if not user.enterprise_id or req.requester_id != user.enterprise_id:
            raise ApiError(404, f"对接申请 {request_id} 不存在。")
        return req
    require_cluster(req.cluster_id)
    return req


@bp.get("/requests")
@operation("对接申请列表（企业用户仅本企业的申请；工作人员仅其集聚区的申请）", tags=TAGS, roles=ALL_ROLES,
           query=RequestQuery, response=RequestOut, paginated=True)
def list_requests(query: dict):
    stmt = _visible_query()
    if query.get("status"):
        if query["status"] not in REQUEST_STATUSES:
            raise ApiError(422, "未知的状态。", {"query": {"status": [f"可选：{'、'.join(REQUEST_STATUSES)}"]}})
        stmt = stmt.where(MatchmakingRequest.status == query["status"])
    if query.get("cluster"):
        if api_user().role != ROLE_FIRM:
            require_cluster(query["cluster"])
        stmt = stmt.where(MatchmakingRequest.cluster_id == query["cluster"])
    total = db.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    page, limit = query["page"], query["limit"]
    rows = db.session.scalars(stmt.order_by(MatchmakingRequest.id.desc()).offset((page - 1) * limit)
                              .limit(limit)).unique().all()
    return paginate(total, page, limit, list(rows))


@bp.get("/requests/<int:request_id>")
@operation("对接申请详情（含处理历史）", tags=TAGS, roles=ALL_ROLES, response=RequestDetailOut)
def get_request(request_id: int):
    return _request(request_id)


def _log(req: MatchmakingRequest, field: str, old, new) -> None:
    db.session.add(MatchmakingEvent(request=req, user_id=api_user().id, field=field, old=old, new=new))


@bp.post("/requests")
@operation("申请对接（链主企业用户；进行中的相同申请直接返回，状态 200）", tags=TAGS, roles=(ROLE_FIRM,),
           body=RequestCreateInput, response=RequestDetailOut, status=201,
           errors=(400, 401, 403, 415, 422, 429))
def post_request(body: dict):
    user = api_user()
    requester = db.session.get(Enterprise, user.enterprise_id) if user.enterprise_id else None
    if requester is None:
        raise ApiError(422, "您的账号尚未关联企业，无法申请对接。")
    supplier_id = body["supplier_id"]
    if db.session.get(Enterprise, supplier_id) is None or supplier_id == requester.id:
        raise ApiError(422, "供应商不存在。", {"body": {"supplier_id": ["供应商不存在"]}})
    clusters = {c.id: c for c in firm_clusters(db.session, user)}
    cluster_id = body["cluster_id"]
    if cluster_id not in clusters:
        raise ApiError(403, "您的企业不在该集聚区。")
    link_key = (body.get("link_key") or "").strip() or None
    chain_id = None
    if link_key:
        options = {o.link.key: o for o in need_links(db.session, [clusters[cluster_id]])}
        if link_key not in options:
            raise ApiError(422, "所选环节不属于该集聚区的产业链。", {"body": {"link_key": ["无效的环节"]}})
        chain_id = options[link_key].chain.id
        need_text = f"{options[link_key].chain.name} · {options[link_key].link.name}"
    else:
        need_text = (body.get("need_text") or "").strip()
        if not need_text:
            raise ApiError(422, "请填写对接需求（need_text）或选择需求环节（link_key）。",
                           {"body": {"need_text": ["必填"]}})
    existing = db.session.scalar(select(MatchmakingRequest).where(
        MatchmakingRequest.requester_id == requester.id, MatchmakingRequest.supplier_id == supplier_id,
        MatchmakingRequest.cluster_id == cluster_id, MatchmakingRequest.status.in_(OPEN_STATUSES),
        MatchmakingRequest.link_key.is_(None) if link_key is None else MatchmakingRequest.link_key == link_key,
        *([MatchmakingRequest.need_text == need_text] if link_key is None else [])))
    if existing is not None:
        return RequestDetailOut().dump(existing), 200
    req = MatchmakingRequest(requester_id=requester.id, supplier_id=supplier_id, cluster_id=cluster_id,
                             chain_id=chain_id, link_key=link_key, need_text=need_text, status=STATUS_PENDING,
                             note=body.get("note", "").strip(), created_by_id=user.id)
    db.session.add(req)
    _log(req, "created", None, STATUS_PENDING)
    db.session.flush()
    audit("matchmaking.create", "matchmaking_request", req.id, cluster_id=cluster_id, supplier_id=supplier_id)
    db.session.commit()
    logger.info("firm user %s filed matchmaking request %s via API", user.id, req.id)
    return RequestDetailOut().dump(req), 201


@bp.post("/requests/<int:request_id>/status")
@operation("处理对接申请（变更状态、处理备注；记入历史）", tags=TAGS, roles=STAFF_ROLES, body=RequestStatusInput,
           response=RequestDetailOut)
def post_request_status(request_id: int, body: dict):
    req = _request(request_id)
    if body["status"] not in REQUEST_STATUSES:
        raise ApiError(422, "未知的状态。", {"body": {"status": [f"可选：{'、'.join(REQUEST_STATUSES)}"]}})
    changed = False
    if body["status"] != req.status:
        _log(req, "status", req.status, body["status"])
        req.status = body["status"]
        changed = True
    if "note" in body and body["note"].strip() != (req.note or ""):
        _log(req, "note", req.note or None, body["note"].strip() or None)
        req.note = body["note"].strip()
        changed = True
    if changed:
        audit("matchmaking.status", "matchmaking_request", req.id, cluster_id=req.cluster_id, status=req.status)
    db.session.commit()
    return req
