"""供需对接 operations shared by the web UI and the JSON API: who sees which request, filing a request, changing
its status. Every change is written to MatchmakingEvent and the audit log; the callers commit.

Refusals raise MatchmakingError; each caller renders it its own way (Chinese error page or htmx fragment in the UI,
the `{"error": {code, message, details}}` body in the API).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from chains.enterprise_models import Enterprise
from webapp.auth.models import ROLE_FIRM
from webapp.suppliers.access import firm_clusters, need_links, staff_visible_clusters
from webapp.suppliers.models import (
    OPEN_STATUSES,
    REQUEST_STATUSES,
    STATUS_PENDING,
    MatchmakingEvent,
    MatchmakingRequest,
)
from webapp.web.integrations import audit

MAX_NEED_TEXT = 500  # free-text need
MAX_NOTE = 2000

INVALID = "invalid"  # the input is refused (UI 400, API 422)
FORBIDDEN = "forbidden"  # the user may not act on this cluster (403)
NOT_FOUND = "not_found"  # no such request, or another firm's (404: no leak)


class MatchmakingError(ValueError):
    """A refused matchmaking operation: `message` for the user (Chinese), the `kind` of refusal, and the `field`
    of the input at fault (when one is)."""

    def __init__(self, message: str, field: str | None = None, kind: str = INVALID):
        super().__init__(message)
        self.message = message
        self.field = field
        self.kind = kind


def visible_requests(user) -> Select:
    """Requests the user may see: a firm user its own enterprise's, staff and managers their clusters', admins all."""
    query = select(MatchmakingRequest)
    if user.role == ROLE_FIRM:
        return query.where(MatchmakingRequest.requester_id == (user.enterprise_id or -1))
    visible = staff_visible_clusters(user)
    if visible is not None:
        query = query.where(MatchmakingRequest.cluster_id.in_(visible or {""}))
    return query


def find_request(session: Session, user, request_id: int) -> MatchmakingRequest:
    """A request the user may see; another firm's request is NOT_FOUND (no leak), another cluster's FORBIDDEN."""
    req = session.get(MatchmakingRequest, request_id)
    not_found = MatchmakingError(f"对接申请 {request_id} 不存在。", kind=NOT_FOUND)
    if req is None:
        raise not_found
    if user.role == ROLE_FIRM:
        if not user.enterprise_id or req.requester_id != user.enterprise_id:
            raise not_found
        return req
    visible = staff_visible_clusters(user)
    if visible is not None and req.cluster_id not in visible:
        raise MatchmakingError("无权访问该集聚区的数据。", kind=FORBIDDEN)
    return req


def _log(session: Session, req: MatchmakingRequest, user_id: int | None, field: str, old: Any, new: Any) -> None:
    session.add(MatchmakingEvent(request=req, user_id=user_id, field=field, old=old, new=new))


def create_request(
    session: Session,
    user,
    supplier_id: int | None,
    cluster_id: str,
    link_key: str | None = None,
    need_text: str = "",
    note: str = "",
) -> tuple[MatchmakingRequest, bool]:
    """申请对接 by a firm user: connect its enterprise with a supplier for a need (an upstream link of one of its
    clusters, or free text). While the same request is open it is returned instead; returns (request, created)."""
    requester = session.get(Enterprise, user.enterprise_id) if user.enterprise_id else None
    if requester is None:
        raise MatchmakingError("您的账号尚未关联企业，无法申请对接。")
    if supplier_id is None or session.get(Enterprise, supplier_id) is None or supplier_id == requester.id:
        raise MatchmakingError("供应商不存在。", field="supplier_id")
    clusters = {c.id: c for c in firm_clusters(session, user)}
    if cluster_id not in clusters:
        raise MatchmakingError("您的企业不在该集聚区。", field="cluster_id", kind=FORBIDDEN)
    link_key = (link_key or "").strip() or None
    chain_id = None
    if link_key:
        options = {o.link.key: o for o in need_links(session, [clusters[cluster_id]], with_status=False)}
        if link_key not in options:
            raise MatchmakingError("所选环节不属于该集聚区的产业链。", field="link_key")
        chain_id = options[link_key].chain.id
        need_text = f"{options[link_key].chain.name} · {options[link_key].link.name}"
    else:
        need_text = (need_text or "").strip()[:MAX_NEED_TEXT]
        if not need_text:
            raise MatchmakingError("请填写对接需求。", field="need_text")
    existing = session.scalar(
        select(MatchmakingRequest).where(
            MatchmakingRequest.requester_id == requester.id,
            MatchmakingRequest.supplier_id == supplier_id,
            MatchmakingRequest.cluster_id == cluster_id,
            MatchmakingRequest.status.in_(OPEN_STATUSES),
            MatchmakingRequest.link_key.is_(None) if link_key is None else MatchmakingRequest.link_key == link_key,
            *([MatchmakingRequest.need_text == need_text] if link_key is None else []),
        )
    )
    if existing is not None:
        return existing, False
    req = MatchmakingRequest(
        requester_id=requester.id,
        supplier_id=supplier_id,
        cluster_id=cluster_id,
        chain_id=chain_id,
        link_key=link_key,
        need_text=need_text,
        status=STATUS_PENDING,
        note=(note or "").strip()[:MAX_NOTE],
        created_by_id=user.id,
    )
    session.add(req)
    _log(session, req, user.id, "created", None, STATUS_PENDING)
    session.flush()
    audit("matchmaking.create", "matchmaking_request", req.id, cluster_id=cluster_id, supplier_id=supplier_id)
    return req, True


def change_status(
    session: Session, req: MatchmakingRequest, status: str, user_id: int | None, note: str | None = None
) -> bool:
    """Set the status (any of REQUEST_STATUSES) and, when `note` is given, the handling note.
    Returns False when nothing changed (then nothing is logged or audited)."""
    if status not in REQUEST_STATUSES:
        raise MatchmakingError("未知的状态", field="status")
    changed = False
    if status != req.status:
        _log(session, req, user_id, "status", req.status, status)
        req.status = status
        changed = True
    if note is not None:
        note = note.strip()[:MAX_NOTE]
        if note != (req.note or ""):
            _log(session, req, user_id, "note", req.note or None, note or None)
            req.note = note
            changed = True
    if changed:
        audit("matchmaking.status", "matchmaking_request", req.id, cluster_id=req.cluster_id, status=req.status)
    return changed
