"""供需对接 matchmaking requests: firms file and read their own; cluster staff list them and change status."""

from __future__ import annotations

import logging

from sqlalchemy import func, select

from webapp.api import bp
from webapp.api.core import api_user, operation, paginate, require_cluster
from webapp.api.errors import ApiError
from webapp.api.schemas import MeOut
from webapp.api.schemas_requests import (
    RequestCreateInput,
    RequestDetailOut,
    RequestOut,
    RequestQuery,
    RequestStatusInput,
)
from webapp.auth.models import ROLE_ADMIN, ROLE_FIRM, ROLE_MANAGER, ROLE_STAFF, STAFF_ROLES
from webapp.extensions import db
from webapp.suppliers.models import REQUEST_STATUSES, MatchmakingRequest
from webapp.suppliers.service import (
    FORBIDDEN,
    NOT_FOUND,
    MatchmakingError,
    change_status,
    create_request,
    find_request,
    visible_requests,
)

logger = logging.getLogger("chainmatch.api")

ALL_ROLES = (ROLE_ADMIN, ROLE_STAFF, ROLE_MANAGER, ROLE_FIRM)
TAGS = ["供需对接"]
STATUS_HINT = f"可选：{'、'.join(REQUEST_STATUSES)}"
# API wording of refused input, by field: message and the `details` hint.
FIELD_ERRORS = {
    "supplier_id": ("供应商不存在。", "供应商不存在"),
    "link_key": ("所选环节不属于该集聚区的产业链。", "无效的环节"),
    "need_text": ("请填写对接需求（need_text）或选择需求环节（link_key）。", "必填"),
    "status": ("未知的状态。", STATUS_HINT),
}


@bp.get("/me")
@operation("当前令牌对应的账号", tags=["账号"], roles=ALL_ROLES, response=MeOut)
def get_me():
    return api_user()


def _api_error(exc: MatchmakingError) -> ApiError:
    """The API's rendering of a refused matchmaking operation (messages and details name the JSON fields)."""
    if exc.kind == NOT_FOUND:
        return ApiError(404, exc.message)
    if exc.kind == FORBIDDEN:
        return ApiError(403, exc.message)
    message, hint = FIELD_ERRORS.get(exc.field, (exc.message, None))
    return ApiError(422, message, {"body": {exc.field: [hint]}} if hint else None)


def _request(request_id: int) -> MatchmakingRequest:
    """A request the user may see; another firm's request is a 404 (no leak), another cluster's a 403."""
    try:
        return find_request(db.session, api_user(), request_id)
    except MatchmakingError as exc:
        raise _api_error(exc) from None


@bp.get("/requests")
@operation(
    "对接申请列表（企业用户仅本企业的申请；工作人员仅其集聚区的申请）",
    tags=TAGS,
    roles=ALL_ROLES,
    query=RequestQuery,
    response=RequestOut,
    paginated=True,
)
def list_requests(query: dict):
    stmt = visible_requests(api_user())
    if query.get("status"):
        if query["status"] not in REQUEST_STATUSES:
            raise ApiError(422, "未知的状态。", {"query": {"status": [STATUS_HINT]}})
        stmt = stmt.where(MatchmakingRequest.status == query["status"])
    if query.get("cluster"):
        if api_user().role != ROLE_FIRM:
            require_cluster(query["cluster"])
        stmt = stmt.where(MatchmakingRequest.cluster_id == query["cluster"])
    total = db.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    page, limit = query["page"], query["limit"]
    rows = (
        db.session.scalars(stmt.order_by(MatchmakingRequest.id.desc()).offset((page - 1) * limit).limit(limit))
        .unique()
        .all()
    )
    return paginate(total, page, limit, list(rows))


@bp.get("/requests/<int:request_id>")
@operation("对接申请详情（含处理历史）", tags=TAGS, roles=ALL_ROLES, response=RequestDetailOut)
def get_request(request_id: int):
    return _request(request_id)


@bp.post("/requests")
@operation(
    "申请对接（链主企业用户；进行中的相同申请直接返回，状态 200）",
    tags=TAGS,
    roles=(ROLE_FIRM,),
    body=RequestCreateInput,
    response=RequestDetailOut,
    status=201,
    errors=(400, 401, 403, 415, 422, 429),
)
def post_request(body: dict):
    user = api_user()
    try:
        req, created = create_request(
            db.session,
            user,
            body["supplier_id"],
            body["cluster_id"],
            body.get("link_key"),
            body.get("need_text") or "",
            body.get("note", ""),
        )
    except MatchmakingError as exc:
        raise _api_error(exc) from None
    if not created:
        return RequestDetailOut().dump(req), 200
    db.session.commit()
    logger.info("firm user %s filed matchmaking request %s via API", user.id, req.id)
    return RequestDetailOut().dump(req), 201


@bp.post("/requests/<int:request_id>/status")
@operation(
    "处理对接申请（变更状态、处理备注；记入历史）",
    tags=TAGS,
    roles=STAFF_ROLES,
    body=RequestStatusInput,
    response=RequestDetailOut,
)
def post_request_status(request_id: int, body: dict):
    req = _request(request_id)
    try:
        change_status(db.session, req, body["status"], api_user().id, body.get("note"))
    except MatchmakingError as exc:
        raise _api_error(exc) from None
    db.session.commit()
    return req
