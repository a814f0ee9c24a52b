"""Matching: ranked candidates for a cluster's chain link (with explanations), look-alike firms, feedback."""

from __future__ import annotations

from chains.enterprise_models import Enterprise
from webapp.api import bp
from webapp.api.core import api_user, operation
from webapp.api.errors import ApiError
from webapp.api.schemas_matching import (
    CandidatePageOut,
    CandidatePageQuery,
    FeedbackInput,
    FeedbackOut,
    LookAlikeQuery,
    LookAlikesOut,
)
from webapp.api.views_clusters import get_cluster
from webapp.auth.models import STAFF_ROLES
from webapp.extensions import db
from webapp.services.match import CandidateQuery, MatchError, look_alikes, record_feedback, search
from webapp.services.match.filter_fields import public_values
from webapp.web.integrations import audit

TAGS = ["招商匹配"]


def _filters(query: dict) -> dict:
    """API query names → matchsvc CandidateFilters fields (webapp.services.match.filter_fields)."""
    return public_values(query, "api")


def _cluster_link(cluster_id: str, link_key: str):
    cluster = get_cluster(cluster_id)
    from chains.chainmap_io import current_links

    for chain_id in cluster.chain_ids:
        if any(link.key == link_key for link in current_links(db.session, chain_id)):
            return cluster
    raise ApiError(404, f"环节 {link_key} 不属于该集聚区的产业链。")


@bp.get("/clusters/<cluster_id>/links/<link_key>/candidates")
@operation(
    "环节候选企业（排序与匹配理由）",
    tags=TAGS,
    roles=STAFF_ROLES,
    query=CandidatePageQuery,
    response=CandidatePageOut,
    description="语义向量与中文词法融合排序；每个候选给出命中词、匹配产品、最契合环节、最相似本地企业和中文理由。"
    "索引构建期间 state=fallback，仅按关键词匹配。默认排除集聚区已有企业和非存续企业。",
)
def get_candidates(cluster_id: str, link_key: str, query: dict):
    cluster = _cluster_link(cluster_id, link_key)
    try:
        page = search(db.session, CandidateQuery.of(cluster.id, link_key, _filters(query), query["k"], query["offset"]))
    except MatchError as exc:
        raise ApiError(404, str(exc)) from None
    return page.as_dict()


@bp.get("/enterprises/<int:enterprise_id>/look-alikes")
@operation("相似企业（以企查企）", tags=TAGS, roles=STAFF_ROLES, query=LookAlikeQuery, response=LookAlikesOut)
def get_look_alikes(enterprise_id: int, query: dict):
    if db.session.get(Enterprise, enterprise_id) is None:
        raise ApiError(404, f"企业 {enterprise_id} 不存在。")
    filters = {"exclude_cluster_firms": False, **_filters(query)}
    try:
        items = look_alikes(db.session, enterprise_id, k=query["k"], filters=filters)
    except MatchError as exc:
        raise ApiError(404, str(exc)) from None
    return {"enterprise_id": enterprise_id, "items": [c.as_dict() for c in items]}


@bp.post("/clusters/<cluster_id>/feedback")
@operation(
    "候选企业反馈（相关 / 不相关 / 已接洽），用于改进匹配",
    tags=TAGS,
    roles=STAFF_ROLES,
    body=FeedbackInput,
    response=FeedbackOut,
    status=201,
)
def post_feedback(cluster_id: str, body: dict):
    cluster = _cluster_link(cluster_id, body["link_key"])
    if db.session.get(Enterprise, body["enterprise_id"]) is None:
        raise ApiError(422, "企业不存在。", {"body": {"enterprise_id": ["企业不存在"]}})
    try:
        row = record_feedback(
            db.session, cluster.id, body["link_key"], body["enterprise_id"], body["label"], api_user()
        )
    except ValueError as exc:
        db.session.rollback()
        raise ApiError(422, str(exc)) from None
    audit(
        "candidate.feedback",
        "enterprise",
        body["enterprise_id"],
        cluster_id=cluster.id,
        link_key=body["link_key"],
        label=body["label"],
    )
    db.session.commit()
    return row
