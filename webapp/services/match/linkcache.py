"""Read-only copies of chain versions (links, supply edges, match query texts), cached per process.

A chain version never changes once imported (a changed file becomes a new version), so its links are read from
the database once per worker process instead of on every chain-map or candidates request. The key is the
version's id with its content checksum and the chain's name (part of every link's query text); a chain's
*current* version is looked up on every request (one small query), so a newly imported version is used at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from flask import Flask, current_app, g, has_request_context
from sqlalchemy import select
from sqlalchemy.orm import Session

from chains.chain_models import Chain, ChainLink, ChainVersion, SupplyEdge
from webapp.services.cache import LruCache
from webapp.services.match.profiles import link_query_for, link_terms

EXTENSION_KEY = "chainmatch.linkcache"
CACHE_SIZE = 64  # chain versions kept per process


@dataclass(frozen=True)
class LinkView:
    """A ChainLink row, detached from any session (same attribute names, lists as tuples)."""

    id: int
    version_id: int
    chain_id: str
    key: str
    parent_key: str | None
    stage: str
    depth: int
    position: int
    name: str
    description: str
    keywords: tuple
    synonyms: tuple
    products: tuple
    industry_codes: tuple
    key_tech: bool
    key_tech_note: str

    @classmethod
    def of(cls, link: ChainLink, chain_id: str) -> "LinkView":
        return cls(
            link.id,
            link.version_id,
            chain_id,
            link.key,
            link.parent_key,
            link.stage,
            link.depth,
            link.position,
            link.name,
            link.description or "",
            tuple(link.keywords or ()),
            tuple(link.synonyms or ()),
            tuple(link.products or ()),
            tuple(link.industry_codes or ()),
            bool(link.key_tech),
            link.key_tech_note or "",
        )


@dataclass(frozen=True)
class ChainHead:
    """A chain's name and current version (what identifies its cached copy)."""

    id: str
    name: str
    version_id: int | None
    checksum: str

    @property
    def cache_key(self) -> tuple:
        return (self.version_id, self.checksum, self.name)


@dataclass
class VersionView:
    """The links of one chain version in file order, by key, its supply edges, query texts and link terms."""

    chain: ChainHead
    links: tuple[LinkView, ...]
    by_key: dict[str, LinkView]
    edges: tuple[tuple[str, str], ...]
    queries: dict[str, str]
    terms: dict[str, tuple[str, ...]]
    leaves: tuple[str, ...]
    extra: dict = field(default_factory=dict)  # derived data cached with the version by its users


def _cache(app: Flask) -> LruCache[VersionView]:
    cache = app.extensions.get(EXTENSION_KEY)
    if cache is None:
        cache = app.extensions.setdefault(EXTENSION_KEY, LruCache(CACHE_SIZE))
    return cache


def chain_heads(session: Session, chain_ids: Iterable[str]) -> dict[str, ChainHead]:
    """Name, current version id and checksum of each known chain among `chain_ids` (one query)."""
    ids = list(dict.fromkeys(chain_ids))
    if not ids:
        return {}
    rows = session.execute(
        select(Chain.id, Chain.name, Chain.current_version_id, ChainVersion.checksum)
        .outerjoin(ChainVersion, ChainVersion.id == Chain.current_version_id)
        .where(Chain.id.in_(ids))
    ).all()
    return {r.id: ChainHead(r.id, r.name, r.current_version_id, r.checksum or "") for r in rows}


def _load(session: Session, head: ChainHead) -> VersionView:
    rows = (
        list(
            session.scalars(
                select(ChainLink).where(ChainLink.version_id == head.version_id).order_by(ChainLink.position)
            )
        )
        if head.version_id
        else []
    )
    links = tuple(LinkView.of(link, head.id) for link in rows)
    by_key = {link.key: link for link in links}
    edges = (
        tuple(
            (r.from_key, r.to_key)
            for r in session.execute(
                select(SupplyEdge.from_key, SupplyEdge.to_key)
                .where(SupplyEdge.version_id == head.version_id)
                .order_by(SupplyEdge.id)
            )
        )
        if head.version_id
        else ()
    )
    parents = {link.parent_key for link in links if link.parent_key}
    return VersionView(
        chain=head,
        links=links,
        by_key=by_key,
        edges=edges,
        queries={link.key: link_query_for(head, by_key, link) for link in links},
        terms={link.key: tuple(link_terms(link)) for link in links},
        leaves=tuple(link.key for link in links if link.key not in parents),
    )


def version_view(session: Session, head: ChainHead, app: Flask | None = None) -> VersionView:
    """The cached copy of a chain's current version (read from the database on first use in this process)."""
    cache = _cache(app or current_app._get_current_object())
    return cache.get_or_compute(head.cache_key, lambda: (_load(session, head), True))


def chain_views(session: Session, chain_ids: Iterable[str], app: Flask | None = None) -> dict[str, VersionView]:
    """Cached copies of the current versions of the given chains (unknown chains left out), in the given order.

    Within one request the current versions are looked up once per set of chains (views and services of the
    same request ask for the same chains); requests that import chain maps do not use this module.
    """
    ids = list(dict.fromkeys(chain_ids))
    memo = g.setdefault("_chainmatch_chain_heads", {}) if has_request_context() else {}
    heads = memo.get(tuple(ids))
    if heads is None:
        heads = memo[tuple(ids)] = chain_heads(session, ids)
    return {cid: version_view(session, heads[cid], app) for cid in ids if cid in heads}
