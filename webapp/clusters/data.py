"""View data of the cluster pages: chain map tiles, link panel contents, dashboard figures (no routing)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from chains.chain_models import STAGES
from chains.cluster_models import ASSIGNMENT_MANUAL, Cluster, LinkAssignment, RosterEntry
from chains.gaps import STATUSES, ChainGap, LinkGap, analyze_chain
from webapp.services.match.linkcache import LinkView, chain_views

PANEL_CANDIDATES = 10  # ranked candidates shown in the link panel
RECENT_ACTIVITY = 10  # lead events shown on the dashboard
STATUS_HELP = {
    "空白": "本地没有企业",
    "薄弱": "本地企业很少",
    "一般": "本地有一定配套",
    "优势": "本地企业较多或有龙头企业",
}


@dataclass
class Tile:
    link: LinkView
    gap: LinkGap | None
    children: list["Tile"] = field(default_factory=list)
    supplies: list[LinkView] = field(default_factory=list)  # links this one supplies (供给→)
    supplied_by: list[LinkView] = field(default_factory=list)  # links supplying this one (← 来自)

    @property
    def status(self) -> str:
        return self.gap.status if self.gap else "空白"

    @property
    def firm_count(self) -> int:
        return self.gap.firm_count if self.gap else 0


def chain_map(
    session: Session, cluster_id: str, chain_id: str
) -> tuple[ChainGap, dict[str, list[Tile]], dict[str, LinkView]]:
    """Gap analysis, the top-level tiles per stage (children nested), and every link by key.

    The links are the per-process read-only copy of the chain's current version (webapp.services.match.linkcache).
    """
    views = chain_views(session, [chain_id])
    view = views.get(chain_id)
    links = list(view.links) if view is not None else []
    gap = analyze_chain(session, cluster_id, chain_id, links=links)
    by_key = dict(view.by_key) if view is not None else {}
    gaps = {g.link_id: g for g in gap.links}
    tiles = {link.key: Tile(link, gaps.get(link.key)) for link in links}
    for from_key, to_key in view.edges if view is not None else ():
        if from_key in tiles and to_key in tiles:
            tiles[from_key].supplies.append(by_key[to_key])
            tiles[to_key].supplied_by.append(by_key[from_key])
    columns: dict[str, list[Tile]] = {stage: [] for stage in STAGES}
    for link in links:
        tile = tiles[link.key]
        if link.parent_key and link.parent_key in tiles:
            tiles[link.parent_key].children.append(tile)
        else:
            columns.setdefault(link.stage, []).append(tile)
    return gap, columns, by_key


def link_firms(session: Session, cluster_id: str, link_key: str) -> list[dict]:
    """Local firms placed on a link (any assignment, confirmed or suggested) with their roster role."""
    roles = dict(
        session.execute(
            select(RosterEntry.enterprise_id, RosterEntry.role).where(RosterEntry.cluster_id == cluster_id)
        ).all()
    )
    rows = session.scalars(
        select(LinkAssignment)
        .where(LinkAssignment.cluster_id == cluster_id, LinkAssignment.link_key == link_key)
        .order_by(LinkAssignment.confirmed.desc(), LinkAssignment.id)
    ).all()
    return [
        {
            "enterprise": a.enterprise,
            "role": roles.get(a.enterprise_id, ""),
            "confirmed": a.confirmed,
            "source": "手动归位" if a.source == ASSIGNMENT_MANUAL else "匹配建议",
            "confidence": a.confidence,
        }
        for a in rows
    ]


def descendants(by_key: dict[str, LinkView], link_key: str) -> list[LinkView]:
    """Links below `link_key` in file order."""
    out, frontier = [], {link_key}
    for link in by_key.values():
        if link.parent_key in frontier:
            out.append(link)
            frontier.add(link.key)
    return out


def status_counts(gap: ChainGap, top_level_only: bool = False) -> dict[str, int]:
    counts = {s: 0 for s in STATUSES}
    for link in gap.links:
        if not top_level_only or link.depth == 1:
            counts[link.status] += 1
    return counts


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def rule_chart(rules: list[Any]) -> dict:
    """Chart spec of the numeric rules: each value as a share of its threshold (100% = just passing)."""
    numeric = [r for r in rules if r.value is not None and r.threshold]
    return {
        "type": "bar",
        "labels": [r.name for r in numeric],
        "datasets": [
            {
                "label": "指标值 ÷ 标准（%）",
                "data": [round(r.value / r.threshold * 100, 1) for r in numeric],
                "colors": ["#2f8f46" if r.passed else "#d64545" for r in numeric],
            },
            {
                "label": "标准线（100%）",
                "type": "line",
                "data": [100 for _ in numeric],
                "color": "#084682",
            },
        ],
        "raw": [{"name": r.name, "value": r.value, "threshold": r.threshold, "unit": r.unit} for r in numeric],
    }


def cluster_or_none(session: Session, cluster_id: str) -> Cluster | None:
    return session.get(Cluster, cluster_id)
