"""Match documents from Enterprise rows and query texts from chain links (via matching.profiles), per link and for
all the links of a cluster."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session

from chains.chain_models import Chain, ChainLink
from chains.cluster_models import Cluster
from chains.enterprise_models import Enterprise, EnterpriseTag
from webapp.services.match.filters import VECTOR_FIELDS

PROFILE_BATCH = 5000  # rows fetched per round trip when reading the whole pool

# The columns a profile is built from; reading only these keeps full builds light.
PROFILE_COLUMNS = (
    Enterprise.id,
    Enterprise.name,
    Enterprise.business_scope,
    Enterprise.main_products,
    Enterprise.industry_name,
)
# The filter fields' columns (VECTOR_FIELDS but the tags), read only for a vector backend that stores them.
FIELD_COLUMNS = tuple(getattr(Enterprise, name) for name in VECTOR_FIELDS if name != "tags")


def profile_for(enterprise: Any):
    """The match Document of an enterprise (an Enterprise or a row with the profile columns)."""
    from matching.engine import Document
    from matching.profiles import enterprise_profile

    text = enterprise_profile(
        enterprise.name or "",
        enterprise.business_scope or "",
        enterprise.main_products or "",
        enterprise.industry_name or "",
    )
    return Document(
        id=int(enterprise.id), name=enterprise.name or "", text=text, products=enterprise.main_products or ""
    )


def iter_documents(
    session: Session, where=None, batch: int = PROFILE_BATCH, with_fields: bool = False
) -> Iterator[list]:
    """Documents of every enterprise (or those matching `where`), in batches, ordered by id. `with_fields`: each
    carries its VECTOR_FIELDS values (Document.fields, as `filters.vector_fields` reads them), for a vector
    backend that filters on them (Milvus)."""
    tags = _tags(session, where) if with_fields else {}  # read first: no second query while rows stream
    stmt = select(*PROFILE_COLUMNS, *(FIELD_COLUMNS if with_fields else ())).order_by(Enterprise.id)
    if where is not None:
        stmt = stmt.where(where)
    result = session.execute(stmt.execution_options(yield_per=batch))
    for rows in result.partitions(batch):
        docs = [profile_for(row) for row in rows]
        if with_fields:
            for doc, row in zip(docs, rows):
                doc.fields = {
                    **{c.key: getattr(row, c.key) or "" for c in FIELD_COLUMNS},
                    "tags": sorted(tags.get(doc.id, ())),
                }
        yield docs


def _tags(session: Session, where=None) -> dict[int, set[str]]:
    """Tags by enterprise id, of every enterprise or those matching `where`."""
    stmt = select(EnterpriseTag.enterprise_id, EnterpriseTag.tag)
    if where is not None:
        stmt = stmt.join(Enterprise, Enterprise.id == EnterpriseTag.enterprise_id).where(where)
    out: dict[int, set[str]] = {}
    for enterprise_id, tag in session.execute(stmt):
        out.setdefault(int(enterprise_id), set()).add(tag)
    return out


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

    return link_query(
        link_path(links_by_key, link),
        link.description or "",
        list(link.keywords or []),
        list(link.synonyms or []),
        list(link.products or []),
    )


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
