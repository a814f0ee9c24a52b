"""Clusters (产业集聚区): list and read, gap analysis, policy evaluation, N lists (N张清单)."""

from __future__ import annotations

from sqlalchemy import select

from chains.cluster_io import cluster_summaries
from chains.cluster_models import Cluster, RosterEntry
from chains.evaluation import evaluate_cluster
from chains.gaps import analyze_cluster, chain_gap_dict
from chains.list_models import ListEntry
from chains.lists import LIST_TYPES, get_list, refresh_lists
from webapp.api import bp
from webapp.api.core import api_user, operation, require_cluster
from webapp.api.errors import ApiError
from webapp.api.schemas_clusters import (
    ClusterDetail,
    ClusterSummary,
    EvaluationOut,
    GapQuery,
    GapsOut,
    ListsOut,
    ListsQuery,
)
from webapp.auth.models import STAFF_ROLES
from webapp.extensions import db
from webapp.web.integrations import audit

TAGS = ["集聚区"]


def get_cluster(cluster_id: str) -> Cluster:
    """The cluster, after the access check (403 before 404 so ids of other clusters do not leak)."""
    require_cluster(cluster_id)
    cluster = db.session.get(Cluster, cluster_id)
    if cluster is None:
        raise ApiError(404, f"集聚区 {cluster_id} 不存在。")
    return cluster


@bp.get("/clusters")
@operation("集聚区列表（仅限有权访问的集聚区）", tags=TAGS, roles=STAFF_ROLES, response=ClusterSummary, many=True)
def list_clusters():
    user = api_user()
    return [c for c in cluster_summaries(db.session) if user.can_access_cluster(c["id"])]


@bp.get("/clusters/<cluster_id>")
@operation("集聚区详情（指标与本地企业名单）", tags=TAGS, roles=STAFF_ROLES, response=ClusterDetail)
def get_cluster_detail(cluster_id: str):
    cluster = get_cluster(cluster_id)
    roster = db.session.scalars(
        select(RosterEntry).where(RosterEntry.cluster_id == cluster.id).order_by(RosterEntry.id)
    ).all()
    return {
        "id": cluster.id,
        "name": cluster.name,
        "province": cluster.province,
        "city": cluster.city,
        "district": cluster.district,
        "cluster_type": cluster.cluster_type,
        "chains": cluster.chain_ids,
        "firms": len(roster),
        "leading_industry": cluster.leading_industry,
        "area_mu": cluster.area_mu,
        "area_km2": cluster.area_km2,
        "description": cluster.description,
        "data_note": cluster.data_note,
        "is_demo": bool(cluster.is_demo),
        "indicators": cluster.indicators,
        "roster": roster,
    }


@bp.get("/clusters/<cluster_id>/gaps")
@operation(
    "缺口分析（各环节 空白/薄弱/一般/优势 与本地配套率）",
    tags=TAGS,
    roles=STAFF_ROLES,
    query=GapQuery,
    response=GapsOut,
)
def get_gaps(cluster_id: str, query: dict):
    cluster = get_cluster(cluster_id)
    chain_id = query.get("chain")
    if chain_id and chain_id not in cluster.chain_ids:
        raise ApiError(404, f"产业链 {chain_id} 不属于该集聚区。")
    gaps = analyze_cluster(db.session, cluster.id, chain_id)
    return {"cluster_id": cluster.id, "chains": [chain_gap_dict(g) for g in gaps]}


@bp.get("/clusters/<cluster_id>/evaluation")
@operation(
    "集聚区政策评价（主导产业集聚度、投资强度、亩均税收等）", tags=TAGS, roles=STAFF_ROLES, response=EvaluationOut
)
def get_evaluation(cluster_id: str):
    cluster = get_cluster(cluster_id)
    result = evaluate_cluster(db.session, cluster.id)
    return {
        "cluster_id": result.cluster_id,
        "cluster_name": result.cluster_name,
        "year": result.year,
        "passed": result.passed,
        "rules": [r.as_dict() for r in result.rules],
    }


def _lists(cluster_id: str, chain_id: str, types: list[str] | None, refresh: bool) -> dict:
    """The lists of a cluster's chain; a requested refresh is left for the caller to commit with its audit entry."""
    cluster = get_cluster(cluster_id)
    if chain_id not in cluster.chain_ids:
        raise ApiError(404, f"产业链 {chain_id} 不属于该集聚区。")
    types = types or list(LIST_TYPES)
    unknown = [t for t in types if t not in LIST_TYPES]
    if unknown:
        raise ApiError(422, "未知的清单类型。", {"query": {"list": unknown}})
    never_built = (
        db.session.scalar(
            select(ListEntry.id).where(ListEntry.cluster_id == cluster.id, ListEntry.chain_id == chain_id).limit(1)
        )
        is None
    )
    if refresh or never_built:
        refresh_lists(db.session, cluster.id, chain_id, commit=not refresh)
    lists = []
    for list_type in types:
        entries = get_list(db.session, cluster.id, chain_id, list_type)
        lists.append({"list_type": list_type, "title": LIST_TYPES[list_type], "entries": entries})
    return {"cluster_id": cluster.id, "chain_id": chain_id, "lists": lists}


@bp.get("/clusters/<cluster_id>/chains/<chain_id>/lists")
@operation(
    "N张清单",
    tags=TAGS,
    roles=STAFF_ROLES,
    query=ListsQuery,
    response=ListsOut,
    description="首次读取时按当前数据生成派生清单；之后返回已保存的清单（含置顶、移除和备注的整理结果）。",
)
def get_lists(cluster_id: str, chain_id: str, query: dict):
    return _lists(cluster_id, chain_id, query.get("list_type"), refresh=False)


@bp.post("/clusters/<cluster_id>/chains/<chain_id>/lists/refresh")
@operation("按当前数据刷新派生清单（保留整理结果）", tags=TAGS, roles=STAFF_ROLES, response=ListsOut)
def refresh_cluster_lists(cluster_id: str, chain_id: str):
    result = _lists(cluster_id, chain_id, None, refresh=True)
    audit("list.refresh", "chain", chain_id, cluster_id=cluster_id)
    db.session.commit()
    return result
