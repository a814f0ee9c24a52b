"""Each role's home page as its workbench: overdue items, what waits for it, its clusters' biggest gaps."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import func, select

from chains.cluster_models import Cluster, LinkAssignment, RosterEntry
from webapp.auth.models import ROLE_ADMIN, ROLE_FIRM, ROLE_MANAGER, User
from webapp.extensions import db

GAP_CLUSTERS = 5  # clusters whose gaps the workbench analyses (the user's first ones by name)
GAPS_PER_CLUSTER = 3  # biggest gaps shown per cluster
ITEMS_SHOWN = 20  # rows per workbench list


def biggest_gaps(cluster: Cluster) -> list[dict]:
    """The cluster's emptiest leaf links (空白 before 薄弱, 卡脖子 first) across its chains."""
    from chains.gaps import STATUS_BLANK, STATUS_WEAK, analyze_cluster

    gaps = []
    for chain_gap in analyze_cluster(db.session, cluster.id):
        for link in chain_gap.links:
            if link.is_leaf and link.status in (STATUS_BLANK, STATUS_WEAK):
                gaps.append(
                    {
                        "link_key": link.link_id,
                        "name": link.name,
                        "stage": link.stage,
                        "status": link.status,
                        "key_tech": link.key_tech,
                        "firms": link.firm_count,
                        "chain": chain_gap.chain_name,
                    }
                )
    gaps.sort(key=lambda g: (g["status"] != STATUS_BLANK, not g["key_tech"], g["firms"], g["name"]))
    return gaps[:GAPS_PER_CLUSTER]


def staff_context(user: User, today: date) -> dict[str, Any]:
    """Overdue leads (own for staff, the clusters' for managers and admins) and the queues waiting for the user."""
    from webapp.leads.deadlines import open_leads, overdue_items
    from webapp.leads.models import COORD_PENDING, CoordinationRequest, Lead
    from webapp.suppliers.models import STATUS_PENDING, MatchmakingRequest

    clusters = user.working_clusters()
    cluster_ids = None if user.role == ROLE_ADMIN else {c.id for c in clusters}
    owner = None if user.role in (ROLE_ADMIN, ROLE_MANAGER) else user.id
    overdue = overdue_items(open_leads(db.session, cluster_ids, owner), today)
    requests = select(MatchmakingRequest).where(MatchmakingRequest.status == STATUS_PENDING)
    coordination = select(CoordinationRequest).where(CoordinationRequest.status == COORD_PENDING)
    unplaced = (
        select(RosterEntry.cluster_id, func.count())
        .where(
            ~select(LinkAssignment.id)
            .where(
                LinkAssignment.cluster_id == RosterEntry.cluster_id,
                LinkAssignment.enterprise_id == RosterEntry.enterprise_id,
            )
            .exists()
        )
        .group_by(RosterEntry.cluster_id)
    )
    if cluster_ids is not None:
        ids = cluster_ids or {""}
        requests = requests.where(MatchmakingRequest.cluster_id.in_(ids))
        own_leads = select(Lead.id).where(Lead.cluster_id.in_(ids))
        coordination = coordination.where(CoordinationRequest.lead_id.in_(own_leads))
        unplaced = unplaced.where(RosterEntry.cluster_id.in_(ids))
    names = {c.id: c for c in clusters}
    return {
        "overdue": overdue[:ITEMS_SHOWN],
        "overdue_total": len(overdue),
        "requests": list(db.session.scalars(requests.order_by(MatchmakingRequest.id.desc()).limit(ITEMS_SHOWN))),
        "coordination": list(db.session.scalars(coordination.order_by(CoordinationRequest.id).limit(ITEMS_SHOWN))),
        "placements": [(names[cid], n) for cid, n in db.session.execute(unplaced) if cid in names and n],
        "gaps": [(c, biggest_gaps(c)) for c in clusters[:GAP_CLUSTERS]],
        "today": today,
    }


def firm_context(user: User) -> dict[str, Any]:
    """A chain-leader firm's upstream supply gaps in its clusters (each a one-click supplier search) and its own
    matchmaking requests."""
    from chains.gaps import STATUS_BLANK
    from webapp.suppliers.access import firm_clusters, need_links
    from webapp.suppliers.models import MatchmakingRequest
    from webapp.suppliers.ranking import LOCAL_FIRST_DEFAULT

    if user.role != ROLE_FIRM or not user.enterprise_id:
        return {"my_requests": [], "clusters": [], "supply_gaps": [], "more_gaps": 0}
    query = (
        select(MatchmakingRequest)
        .where(MatchmakingRequest.requester_id == user.enterprise_id)
        .order_by(MatchmakingRequest.id.desc())
        .limit(ITEMS_SHOWN)
    )
    clusters = firm_clusters(db.session, user)
    gaps = [o for o in need_links(db.session, clusters) if o.is_gap]
    # Bottlenecks (卡脖子) first, then empty before thin links; otherwise the chain's own order.
    gaps.sort(key=lambda o: (not o.link.key_tech, o.status != STATUS_BLANK))
    return {
        "my_requests": list(db.session.scalars(query)),
        "clusters": clusters,
        "supply_gaps": gaps[:ITEMS_SHOWN],
        "more_gaps": max(0, len(gaps) - ITEMS_SHOWN),
        # A submitted finder form (f=1) reads an absent local_first as unticked: the links keep the form's default.
        "finder_args": {"f": 1, "local_first": 1} if LOCAL_FIRST_DEFAULT else {"f": 1},
    }
