"""Enterprise search and per-firm matching for the firm pages: free-text search, links a firm fits."""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from flask import Flask
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from chains.chain_models import Chain
from chains.chainmap_io import current_links
from chains.enterprise_models import Enterprise
from webapp.matchsvc import store
from webapp.matchsvc.filters import CandidateFilters, conditions, resolve
from webapp.matchsvc.profiles import link_query_for, profile_for

logger = logging.getLogger("chainmatch.firms")

MAX_RESULTS = 500  # deepest rank a search pages to
FALLBACK_ROWS = 500  # rows read by the keyword fallback while the index is being built
LINKFIT_KEY = "chainmatch.firms.linkfit"
MESSAGE_FALLBACK = "匹配索引正在构建，当前仅按关键词检索，索引完成后将自动使用语义+关键词融合检索。"


@dataclass
class SearchHit:
    enterprise: Enterprise
    rank: int
    score: float
    channels: dict[str, float] = field(default_factory=dict)
    matched_terms: list[str] = field(default_factory=list)


@dataclass
class SearchResult:
    hits: list[SearchHit]
    has_next: bool
    message: str = ""


def search_firms(session: Session, app: Flask, text: str, filters: CandidateFilters, k: int, offset: int,
                 excluded_ids: set[int] | None = None) -> SearchResult:
    """Fused semantic + keyword search of the registry for `text`, filtered; one extra row tells if more exist."""
    k, offset = max(1, k), max(0, offset)
    engine = store.engine_for_request(session, app)
    if engine is None:
        return _fallback(session, text, filters, k, offset, excluded_ids)
    state = store.state_of(app)
    resolved = resolve(session, filters, None)
    excluded = sorted(set(resolved.excluded) | set(excluded_ids or ()))
    with state.lock:
        # Always the same window, ties ordered by id: pages then never overlap or skip firms with equal scores.
        hits = engine.search(text, k=MAX_RESULTS + 1, allowed_ids=resolved.allowed, excluded_ids=excluded)
    hits.sort(key=lambda h: (-round(float(h.score), 9), int(h.id)))
    page = hits[offset:offset + k + 1]
    firms = {e.id: e for e in session.scalars(select(Enterprise).where(Enterprise.id.in_([h.id for h in page])))}
    out = [SearchHit(firms[int(h.id)], offset + i + 1, float(h.score), dict(h.channels), list(h.matched_terms))
           for i, h in enumerate(page) if int(h.id) in firms]
    return SearchResult(out[:k], len(out) > k and offset + k < MAX_RESULTS)


def _fallback(session: Session, text: str, filters: CandidateFilters, k: int, offset: int,
              excluded_ids: set[int] | None) -> SearchResult:
    """While the index is not ready: firms whose name, products or scope contain a word of the query."""
    words = [w for w in text.replace("，", " ").replace(",", " ").split() if w][:8] or [text]
    match = or_(*[col.contains(w) for w in words
                  for col in (Enterprise.name, Enterprise.main_products, Enterprise.business_scope)])
    stmt = select(Enterprise).where(match, *conditions(filters, None)).order_by(Enterprise.id).limit(FALLBACK_ROWS)
    rows = [e for e in session.scalars(stmt) if e.id not in (excluded_ids or set())]
    page = rows[offset:offset + k + 1]
    hits = [SearchHit(e, offset + i + 1, float(sum(w in (e.name + e.main_products + e.business_scope) for w in words)),
                      {"keyword": 1.0}, [w for w in words if w in (e.name + e.main_products + e.business_scope)])
            for i, e in enumerate(page)]
    return SearchResult(hits[:k], len(hits) > k, MESSAGE_FALLBACK)


# ----------------------------------------------------------------------------- links a firm fits

@dataclass
class LinkFit:
    chain: Chain
    link_key: str
    link_name: str
    stage: str
    score: float
    matched_terms: list[str]


class _LinkPool:
    """A small lexical engine whose documents are chain-link query texts, searched with a firm's profile."""

    def __init__(self, key: tuple, engine, info: dict[int, tuple[str, str, str, str]]) -> None:
        self.key = key
        self.engine = engine
        self.info = info  # doc id → (chain id, link key, link name, stage)
        self.lock = threading.Lock()


def _link_pool(session: Session, app: Flask, chain_ids: list[str]) -> _LinkPool | None:
    from matching.engine import Document, MatchEngine

    chains = [c for c in session.scalars(select(Chain).where(Chain.id.in_(chain_ids)).order_by(Chain.id))]
    key = tuple((c.id, c.current_version_id) for c in chains)
    cache: dict = app.extensions.setdefault(LINKFIT_KEY, {})
    pool = cache.get(key)
    if pool is not None:
        return pool
    docs, info = [], {}
    for chain in chains:
        links = current_links(session, chain.id)
        by_key = {l.key: l for l in links}
        for link in links:
            doc_id = len(docs) + 1
            docs.append(Document(id=doc_id, name=link.name, text=link_query_for(chain, by_key, link)))
            info[doc_id] = (chain.id, link.key, link.name, link.stage)
    if not docs:
        return None
    engine = MatchEngine(embedder=None)  # lexical channels only: a few hundred short texts, built in milliseconds
    engine.build(docs)
    pool = _LinkPool(key, engine, info)
    if len(cache) > 8:
        cache.clear()
    cache[key] = pool
    return pool


def links_fitting(session: Session, app: Flask, enterprise: Enterprise, chain_ids: list[str], k: int = 5) -> list[LinkFit]:
    """The chain links whose query text best matches the firm's profile (over the given chains)."""
    if not chain_ids:
        return []
    pool = _link_pool(session, app, chain_ids)
    if pool is None:
        return []
    profile = profile_for(enterprise).text
    with pool.lock:
        hits = pool.engine.search(profile, k=k)
    chains = {c.id: c for c in session.scalars(select(Chain).where(Chain.id.in_(chain_ids)))}
    out = []
    for hit in hits:
        chain_id, key, name, stage = pool.info[int(hit.id)]
        out.append(LinkFit(chains[chain_id], key, name, stage, float(hit.score), list(hit.matched_terms)))
    return out
