"""Gap analysis of a cluster × chain: which links the cluster's confirmed local firms cover, and how well.

Per link the firms are the confirmed link assignments of the cluster on that link or on any of its
descendants (roll-up), counted once each. Status:
- 空白: no firm;
- 优势: at least `strong_min` firms, or any firm that is a 龙头 of the cluster roster;
- 薄弱: at most `weak_max` firms;
- 一般: otherwise.
Defaults are the constants below; `Cluster.gap_thresholds` may override `weak_max` / `strong_min`.

本地配套率 (local supply rate) = covered leaf links ÷ leaf links, a leaf being covered when it has at
least one local firm. The weighted rate is Σ weight(leaf) × score(status) ÷ Σ weight(leaf), with
weight = KEY_TECH_WEIGHT for 卡脖子 (key_tech) leaves and 1 otherwise, and score = STATUS_SCORE[status]
(空白 0, 薄弱 0.5, 一般 1, 优势 1): thin coverage counts half and bottleneck links count double.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from chains.chain_models import STAGES, Chain, ChainLink
from chains.cluster_models import Cluster, LinkAssignment, RosterEntry
from chains.enterprise_models import Enterprise

STATUS_BLANK = "空白"
STATUS_WEAK = "薄弱"
STATUS_FAIR = "一般"
STATUS_STRONG = "优势"
STATUSES = (STATUS_BLANK, STATUS_WEAK, STATUS_FAIR, STATUS_STRONG)

DEFAULT_WEAK_MAX = 1  # a link with at most this many local firms is 薄弱
DEFAULT_STRONG_MIN = 3  # a link with at least this many local firms (or a 龙头) is 优势
LEADER_ROLE = "龙头"

KEY_TECH_WEIGHT = 2.0  # weight of a 卡脖子 leaf in the weighted local supply rate
DEFAULT_LINK_WEIGHT = 1.0
STATUS_SCORE = {STATUS_BLANK: 0.0, STATUS_WEAK: 0.5, STATUS_FAIR: 1.0, STATUS_STRONG: 1.0}


@dataclass(frozen=True)
class Thresholds:
    weak_max: int = DEFAULT_WEAK_MAX
    strong_min: int = DEFAULT_STRONG_MIN

    @classmethod
    def for_cluster(cls, cluster: Cluster) -> "Thresholds":
        """Defaults overridden by the cluster's `gap_thresholds`."""
        overrides = cluster.gap_thresholds or {}
        return cls(
            weak_max=int(overrides.get("weak_max", DEFAULT_WEAK_MAX)),
            strong_min=int(overrides.get("strong_min", DEFAULT_STRONG_MIN)),
        )


def link_status(firm_count: int, has_leader: bool, thresholds: Thresholds = Thresholds()) -> str:
    """Status of a link from its number of local firms and whether one of them is a 龙头."""
    if firm_count <= 0:
        return STATUS_BLANK
    if has_leader or firm_count >= thresholds.strong_min:
        return STATUS_STRONG
    if firm_count <= thresholds.weak_max:
        return STATUS_WEAK
    return STATUS_FAIR


@dataclass
class LinkFirm:
    enterprise_id: int
    name: str
    role: str  # roster role, "" when the firm is not on the roster
    revenue_wan: float | None
    direct: bool  # assigned to this link itself (not only to a descendant)


@dataclass
class LinkGap:
    link_id: str
    name: str
    stage: str
    depth: int
    parent_id: str | None
    is_leaf: bool
    key_tech: bool
    status: str
    firms: list[LinkFirm]
    firm_count: int
    direct_firm_count: int
    revenue_wan: float  # sum over firms whose revenue is known
    revenue_known: int  # number of firms with known revenue
    has_leader: bool


@dataclass
class Rollup:
    links: int = 0
    leaf_links: int = 0
    covered_leaf_links: int = 0
    counts: dict[str, int] = field(default_factory=lambda: {s: 0 for s in STATUSES})
    leaf_counts: dict[str, int] = field(default_factory=lambda: {s: 0 for s in STATUSES})
    local_rate: float | None = None  # 本地配套率, 0..1; None without leaves
    weighted_local_rate: float | None = None
    firms: int = 0  # distinct firms placed anywhere in the scope
    revenue_wan: float = 0.0


@dataclass
class ChainGap:
    cluster_id: str
    chain_id: str
    chain_name: str
    version: int | None
    thresholds: Thresholds
    links: list[LinkGap]
    stages: dict[str, Rollup]
    rollup: Rollup

    def link(self, link_id: str) -> LinkGap:
        return next(link for link in self.links if link.link_id == link_id)


def _rollup(links: list[LinkGap], firm_revenue: dict[int, float | None]) -> Rollup:
    r = Rollup(links=len(links))
    weight_total = weighted = 0.0
    firm_ids: set[int] = set()
    for link in links:
        r.counts[link.status] += 1
        firm_ids.update(f.enterprise_id for f in link.firms)
        if link.is_leaf:
            r.leaf_links += 1
            r.leaf_counts[link.status] += 1
            if link.firm_count > 0:
                r.covered_leaf_links += 1
            weight = KEY_TECH_WEIGHT if link.key_tech else DEFAULT_LINK_WEIGHT
            weight_total += weight
            weighted += weight * STATUS_SCORE[link.status]
    if r.leaf_links:
        r.local_rate = r.covered_leaf_links / r.leaf_links
        r.weighted_local_rate = weighted / weight_total
    r.firms = len(firm_ids)
    r.revenue_wan = sum(v for fid in firm_ids if (v := firm_revenue.get(fid)) is not None)
    return r


def analyze_chain(session: Session, cluster_id: str, chain_id: str, links: Sequence[Any] | None = None) -> ChainGap:
    """Gap analysis of one cluster × chain on the chain's current version.

    `links`: the current version's links in file order when the caller already has them (e.g. a cached read-only
    copy with the ChainLink attributes); read from the database otherwise.
    """
    cluster = session.get(Cluster, cluster_id)
    chain = session.get(Chain, chain_id)
    if cluster is None:
        raise KeyError(f"cluster {cluster_id}")
    if chain is None:
        raise KeyError(f"chain {chain_id}")
    thresholds = Thresholds.for_cluster(cluster)
    if links is None:
        links = (
            list(
                session.scalars(
                    select(ChainLink)
                    .where(ChainLink.version_id == chain.current_version_id)
                    .order_by(ChainLink.position)
                )
            )
            if chain.current_version_id
            else []
        )
    parent = {link.key: link.parent_key for link in links}
    has_children = {link.parent_key for link in links if link.parent_key}
    roles = dict(
        session.execute(
            select(RosterEntry.enterprise_id, RosterEntry.role).where(RosterEntry.cluster_id == cluster_id)
        ).all()
    )

    assigned: dict[str, dict[int, LinkFirm]] = {link.key: {} for link in links}
    firm_revenue: dict[int, float | None] = {}
    # Plain columns, not ORM rows: only the firm's name and revenue are needed.
    assignments = session.execute(
        select(LinkAssignment.enterprise_id, LinkAssignment.link_key, Enterprise.name, Enterprise.revenue_wan)
        .join(Enterprise, Enterprise.id == LinkAssignment.enterprise_id)
        .where(
            LinkAssignment.cluster_id == cluster_id,
            LinkAssignment.chain_id == chain_id,
            LinkAssignment.confirmed.is_(True),
        )
        .order_by(LinkAssignment.id)
    ).all()
    for a in assignments:
        if a.link_key not in assigned:
            continue  # the link no longer exists in the current version
        ent = a
        firm_revenue[a.enterprise_id] = ent.revenue_wan
        key: str | None = a.link_key
        direct = True
        while key is not None:  # the firm counts on the link and on every ancestor
            slot = assigned[key]
            if a.enterprise_id not in slot:
                slot[a.enterprise_id] = LinkFirm(
                    a.enterprise_id, ent.name, roles.get(a.enterprise_id, ""), ent.revenue_wan, direct
                )
            elif direct:
                slot[a.enterprise_id].direct = True
            key, direct = parent.get(key), False

    gaps: list[LinkGap] = []
    for link in links:
        firms = sorted(assigned[link.key].values(), key=lambda f: (-(f.revenue_wan or 0), f.name))
        has_leader = any(f.role == LEADER_ROLE for f in firms)
        known = [f.revenue_wan for f in firms if f.revenue_wan is not None]
        gaps.append(
            LinkGap(
                link_id=link.key,
                name=link.name,
                stage=link.stage,
                depth=link.depth,
                parent_id=link.parent_key,
                is_leaf=link.key not in has_children,
                key_tech=bool(link.key_tech),
                status=link_status(len(firms), has_leader, thresholds),
                firms=firms,
                firm_count=len(firms),
                direct_firm_count=sum(1 for f in firms if f.direct),
                revenue_wan=float(sum(known)),
                revenue_known=len(known),
                has_leader=has_leader,
            )
        )
    stages = {s: _rollup([g for g in gaps if g.stage == s], firm_revenue) for s in STAGES}
    return ChainGap(
        cluster_id,
        chain_id,
        chain.name,
        chain.current_version.version if chain.current_version else None,
        thresholds,
        gaps,
        stages,
        _rollup(gaps, firm_revenue),
    )


def analyze_cluster(session: Session, cluster_id: str, chain_id: str | None = None) -> list[ChainGap]:
    """Gap analyses of every chain of a cluster (or only `chain_id`)."""
    cluster = session.get(Cluster, cluster_id)
    if cluster is None:
        raise KeyError(f"cluster {cluster_id}")
    chain_ids = cluster.chain_ids
    if chain_id is not None:
        if chain_id not in chain_ids:
            raise KeyError(f"chain {chain_id} is not a chain of cluster {cluster_id}")
        chain_ids = [chain_id]
    return [analyze_chain(session, cluster_id, cid) for cid in chain_ids]


def rollup_dict(r: Rollup) -> dict[str, Any]:
    return {
        "links": r.links,
        "leaf_links": r.leaf_links,
        "covered_leaf_links": r.covered_leaf_links,
        "counts": dict(r.counts),
        "leaf_counts": dict(r.leaf_counts),
        "local_rate": None if r.local_rate is None else round(r.local_rate, 4),
        "weighted_local_rate": None if r.weighted_local_rate is None else round(r.weighted_local_rate, 4),
        "firms": r.firms,
        "revenue_wan": r.revenue_wan,
    }


def chain_gap_dict(gap: ChainGap) -> dict[str, Any]:
    """JSON-ready form (used by the CLI and views)."""
    return {
        "chain_id": gap.chain_id,
        "chain_name": gap.chain_name,
        "version": gap.version,
        "thresholds": {"weak_max": gap.thresholds.weak_max, "strong_min": gap.thresholds.strong_min},
        "links": [
            {
                "link_id": link.link_id,
                "name": link.name,
                "stage": link.stage,
                "depth": link.depth,
                "parent_id": link.parent_id,
                "is_leaf": link.is_leaf,
                "key_tech": link.key_tech,
                "status": link.status,
                "firms": link.firm_count,
                "direct_firms": link.direct_firm_count,
                "revenue_wan": link.revenue_wan,
                "revenue_known": link.revenue_known,
                "has_leader": link.has_leader,
                "firm_list": [
                    {
                        "enterprise_id": f.enterprise_id,
                        "name": f.name,
                        "role": f.role,
                        "revenue_wan": f.revenue_wan,
                        "direct": f.direct,
                    }
                    for f in link.firms
                ],
            }
            for link in gap.links
        ],
        "stages": {s: rollup_dict(r) for s, r in gap.stages.items()},
        "rollup": rollup_dict(gap.rollup),
    }
