"""Which clusters, chains and upstream links a chain-leader firm user works with, and which clusters' requests
staff handle (the request look-ups themselves are in webapp.suppliers.service)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from chains.chain_models import Chain, ChainLink, SupplyEdge
from chains.cluster_models import Cluster, ClusterChain, RosterEntry
from chains.gaps import LEADER_ROLE, STATUS_BLANK, STATUS_WEAK, analyze_chain
from webapp.auth.models import ROLE_ADMIN, ROLE_MANAGER, ROLE_STAFF

UPSTREAM_STAGE = "上游"


def firm_clusters(session: Session, user) -> list[Cluster]:
    """Clusters of a firm user: where its enterprise is the roster 龙头 or chain leader, plus assigned ones."""
    found: dict[str, Cluster] = {c.id: c for c in user.clusters}
    if user.enterprise_id:
        leader_of = select(RosterEntry.cluster_id).where(
            RosterEntry.enterprise_id == user.enterprise_id, RosterEntry.role == LEADER_ROLE
        )
        query = select(Cluster).where(or_(Cluster.id.in_(leader_of), Cluster.chain_leader_id == user.enterprise_id))
        for cluster in session.scalars(query):
            found[cluster.id] = cluster
    return sorted(found.values(), key=lambda c: c.name)


@dataclass
class NeedLink:
    """An upstream link a firm may need suppliers for."""

    cluster: Cluster
    chain: Chain
    link: ChainLink
    supplies: list[str]  # names of the links it supplies (context for the user)
    status: str = ""  # the link's local status in the cluster (chains.gaps: 空白 / 薄弱 / 一般 / 优势)
    is_leaf: bool = True

    @property
    def value(self) -> str:
        return f"{self.cluster.id}|{self.link.key}"

    @property
    def is_gap(self) -> bool:
        """A leaf link the cluster has no or few local firms on: where a chain leader most needs suppliers."""
        return self.is_leaf and self.status in (STATUS_BLANK, STATUS_WEAK)


def need_links(session: Session, clusters: list[Cluster], with_status: bool = True) -> list[NeedLink]:
    """Upstream links (stage 上游, or links that supply another link) of every chain of the clusters; `with_status`:
    with each link's local status (a gap analysis per chain), which checking a link's membership does not need."""
    out: list[NeedLink] = []
    for cluster in clusters:
        chain_ids = [
            c.chain_id
            for c in session.scalars(
                select(ClusterChain).where(ClusterChain.cluster_id == cluster.id).order_by(ClusterChain.position)
            )
        ]
        for chain_id in chain_ids:
            chain = session.get(Chain, chain_id)
            if chain is None or chain.current_version_id is None:
                continue
            links = list(
                session.scalars(
                    select(ChainLink)
                    .where(ChainLink.version_id == chain.current_version_id)
                    .order_by(ChainLink.position)
                )
            )
            by_key = {link.key: link for link in links}
            edges = list(session.scalars(select(SupplyEdge).where(SupplyEdge.version_id == chain.current_version_id)))
            supplies: dict[str, list[str]] = {}
            for edge in edges:
                if edge.to_key in by_key:
                    supplies.setdefault(edge.from_key, []).append(by_key[edge.to_key].name)
            gaps = (
                {g.link_id: g for g in analyze_chain(session, cluster.id, chain_id, links).links} if with_status else {}
            )
            for link in links:
                if link.stage == UPSTREAM_STAGE or link.key in supplies:
                    gap = gaps.get(link.key)
                    status, leaf = (gap.status, gap.is_leaf) if gap else ("", True)
                    out.append(NeedLink(cluster, chain, link, supplies.get(link.key, []), status, leaf))
    return out


def staff_visible_clusters(user) -> set[str] | None:
    """Cluster ids whose requests a staff/manager user handles; None for an admin (all)."""
    if user.role == ROLE_ADMIN:
        return None
    if user.role in (ROLE_STAFF, ROLE_MANAGER):
        return user.cluster_ids()
    return set()
