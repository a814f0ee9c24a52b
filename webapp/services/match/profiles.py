"""Match documents from Enterprise rows and query texts from chain links (via matching.profiles), per link and for
all the links of a cluster."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session

from chains.chain_models import Chain, ChainLink
from chains.cluster_models import Cluster
from chains.enterprise_models import Enterprise

PROFILE_BATCH = 5000  # rows fetched per round trip when reading the whole pool

# The columns a profile is built from; reading only these keeps full builds light.
PROFILE_COLUMNS = (Enterprise.id, Enterprise.name, Enterprise.business_scope, Enterprise.main_products,
                   Enterprise.industry_name)


def profile_for(enterprise: Any):
    """The match Document of an enterprise (an Enterprise or a row with the profile columns)."""
    from matching.engine import Document
    from matching.profiles import enterprise_profile

    text = enterprise_profile(enterprise.name or "", enterprise.business_scope or "", enterprise.main_products or "",
                              enterprise.industry_name or "")
    return Document(id=int(enterprise.id), name=enterprise.name or "", text=text,
                    products=enterprise.main_products or "")


def iter_documents(session: Session, where=None, batch: int = PROFILE_BATCH) -> Iterator[list]:
    """Documents of every enterprise (or those matching `where`), in batches, ordered by id."""
    stmt = select(*PROFILE_COLUMNS).order_by(Enterprise.id)
    if where is not None:
        stmt = stmt.where(where)
    result = session.execute(stmt.execution_options(yield_per=batch))
    for rows in result.partitions(batch):
        yield [profile_for(row) for row in rows]


def link_path(links_by_key: dict[str, ChainLink], link: ChainLink) -> list[str]:
    """Names from the top-level link down to `link`."""
    names, node, seen = [], link, set()
    while node is not None and node.key not in seen:
        seen.add(node.key)
        names.append(node.name)
        node = links_by_key.get(node.parent_key) if node.parent_key else None
    return list(reversed(names))


def link_query_for(chain: Chain | None, links_by_key: dict[str, ChainLink], link: ChainLink) -> str:
    """The query text of a chain link (chain name, path, description, keywords, synonyms, products)."""
    from matching.profiles import link_query

    return link_query(link_path(links_by_key, link), link.description or "",
                      list(link.keywords or []), list(link.synonyms or []), list(link.products or []))


def link_terms(link: ChainLink) -> list[str]:
    """The link's own products, keywords and synonyms (deduplicated, in that order) for explanations."""
    seen, out = set(), []
    for term in [*(link.products or []), *(link.keywords or []), *(link.synonyms or [])]:
        term = str(term).strip()
        if term and term not in seen:
            seen.add(term)
            out.append(term)
    return out


# ----------------------------------------------------------------------------- chain links of a cluster

@dataclass
class ClusterLinks:
    """The current links of a cluster's chains, with their query texts."""

    chains: dict[str, Chain]
    links: dict[str, ChainLink]  # key → link, over every chain of the cluster
    queries: dict[str, str]
    leaves: dict[str, list[str]]  # chain id → keys of its leaf links

    def chain_of(self, key: str) -> str:
        return self.links[key].version.chain_id


def cluster_links(session: Session, cluster: Cluster) -> ClusterLinks:
    from chains.chainmap_io import current_links

    chains, links, queries, leaves = {}, {}, {}, {}
    for chain_id in cluster.chain_ids:
        chain = session.get(Chain, chain_id)
        current = current_links(session, chain_id)
        by_key = {link.key: link for link in current}
        parents = {link.parent_key for link in current if link.parent_key}
        chains[chain_id] = chain
        leaves[chain_id] = [link.key for link in current if link.key not in parents]
        for link in current:
            links[link.key] = link
            queries[link.key] = link_query_for(chain, by_key, link)
    return ClusterLinks(chains, links, queries, leaves)
