"""Model-level builders shared by the seeded UI test worlds (test_ui_candidates_fixtures, test_ui_clusters_fixtures,
and through them security_world): a chain with one current version, clusters on that chain, synthetic firms.
Nothing is committed here; the world builders flush and commit."""

from __future__ import annotations

from collections.abc import Iterable

from chains.chain_models import Chain, ChainLink, ChainVersion, SupplyEdge
from chains.cluster_models import Cluster, ClusterChain
from chains.enterprise_models import Enterprise, EnterpriseTag

SYNTHETIC_NOTE = "合成测试数据"


def add_chain(
    session,
    chain_id: str,
    name: str,
    sector: str,
    checksum: str,
    links: Iterable[dict],
    edges: Iterable[tuple[str, str]] = (),
) -> Chain:
    """A chain whose version 1 (current) has `links` (ChainLink fields, positioned in order) and supply `edges`."""
    chain = Chain(id=chain_id, name=name, sector=sector)
    session.add(chain)
    session.flush()
    version = ChainVersion(chain_id=chain_id, version=1, checksum=checksum)
    session.add(version)
    session.flush()
    for position, fields in enumerate(links):
        session.add(ChainLink(version_id=version.id, position=position, **fields))
    for src, dst in edges:
        session.add(SupplyEdge(version_id=version.id, from_key=src, to_key=dst))
    chain.current_version_id = version.id
    return chain


def add_cluster(session, cluster_id: str, name: str, chain_id: str, **fields) -> Cluster:
    """A cluster working on one chain; `fields` are further Cluster columns (province, city, cluster_type…)."""
    cluster = Cluster(id=cluster_id, name=name, **fields)
    cluster.chains.append(ClusterChain(chain_id=chain_id, position=0))
    session.add(cluster)
    return cluster


def synthetic_firm(session, name: str, external_id: str, tags: Iterable[str] = (), **fields) -> Enterprise:
    """A firm labelled as synthetic test data; `fields` are further Enterprise columns."""
    firm = Enterprise(
        name=name, name_norm=name, external_id=external_id, is_synthetic=True, data_note=SYNTHETIC_NOTE, **fields
    )
    for tag in tags:
        firm.tags.append(EnterpriseTag(tag=tag))
    session.add(firm)
    return firm
