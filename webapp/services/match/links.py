"""A cluster's chains' current links for a search (read-only cached copies) and the cluster lookup."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from chains.cluster_models import Cluster
from webapp.services.match.linkcache import ChainHead, LinkView, VersionView, chain_views
from webapp.services.match.results import MatchError


@dataclass
class LinkSet:
    """The cluster's chains' current links as cached read-only copies (webapp.services.match.linkcache): no ORM rows."""

    views: dict[str, VersionView]
    links: dict[str, LinkView]

    @classmethod
    def of(cls, views: dict[str, VersionView]) -> "LinkSet":
        links: dict[str, LinkView] = {}
        for view in views.values():
            links.update(view.by_key)
        return cls(views, links)

    @property
    def cache_key(self) -> tuple:
        return tuple((cid, view.chain.cache_key) for cid, view in self.views.items())

    def query(self, key: str) -> str:
        return self.views[self.links[key].chain_id].queries[key]

    def terms(self, key: str) -> tuple[str, ...]:
        return self.views[self.links[key].chain_id].terms[key]

    def leaves(self, chain_id: str) -> tuple[str, ...]:
        view = self.views.get(chain_id)
        return view.leaves if view is not None else ()

    def chain(self, chain_id: str) -> ChainHead | None:
        view = self.views.get(chain_id)
        return view.chain if view is not None else None


def link_set(session: Session, cluster: Cluster) -> LinkSet:
    """The current links of the cluster's chains (one small query; the links themselves are cached per process)."""
    return LinkSet.of(chain_views(session, cluster.chain_ids))


def cluster_or_error(session: Session, cluster_id: str) -> Cluster:
    """The cluster, or MatchError with a Chinese message."""
    cluster = session.get(Cluster, cluster_id)
    if cluster is None:
        raise MatchError(f"集聚区 {cluster_id} 不存在")
    return cluster
