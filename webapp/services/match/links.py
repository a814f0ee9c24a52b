"""A cluster's chains' current links for a search (read-only cached copies) and the cluster lookup."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from chains.cluster_models import Cluster
from webapp.services.match.linkcache import ChainHead, LinkView, VersionView, chain_views
from webapp.services.match.results import MatchError

MAX_LINK_SUGGESTIONS = 8  # links named in the error for a text that is no link's key or name


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


def resolve_link(links: LinkSet, cluster: Cluster, given: str) -> str:
    """The key of the link `given` names, by key or by its exact name (as users type it: 光刻胶); MatchError
    naming the candidates otherwise (links whose name contains the text, with their keys)."""
    given = given.strip()
    if given in links.links:
        return given
    named = sorted(key for key, link in links.links.items() if link.name == given)
    if len(named) == 1:
        return named[0]
    if named:
        raise MatchError(f"集聚区 {cluster.name} 的产业链中有多个名为“{given}”的环节，请用环节编码：{'、'.join(named)}")
    similar = [f"{link.name}（{key}）" for key, link in links.links.items() if given and given in link.name]
    hint = f"；名称相近的环节：{'、'.join(similar[:MAX_LINK_SUGGESTIONS])}" if similar else ""
    raise unknown_link(given, cluster, f"（请用环节编码或环节名称）{hint}")


def unknown_link(given: str, cluster: Cluster, hint: str = "") -> MatchError:
    """The error for a link that is not in the cluster's chains (`hint` appended to the message)."""
    return MatchError(f"环节 {given} 不属于集聚区 {cluster.name} 的产业链{hint}")


def cluster_or_error(session: Session, cluster_id: str) -> Cluster:
    """The cluster, or MatchError with a Chinese message."""
    cluster = session.get(Cluster, cluster_id)
    if cluster is None:
        raise MatchError(f"集聚区 {cluster_id} 不存在")
    return cluster
