"""Enterprise search and per-firm matching for the firm pages: free-text search, links a firm fits."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from flask import Flask
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from chains.chain_models import Chain
from chains.chainmap_io import current_links
from chains.enterprise_models import Enterprise
from webapp.services.match import evidence, serving, store
from webapp.services.match.filters import CandidateFilters, conditions, resolve
from webapp.services.match.profiles import link_query_for

logger = logging.getLogger("chainmatch.firms")

MAX_RESULTS = 500  # deepest rank a search pages to
FALLBACK_ROWS = 500  # rows read by the keyword fallback while the index is being built
MESSAGE_FALLBACK = "匹配索引正在构建，当前仅按关键词检索，索引完成后将自动使用语义+关键词融合检索。"


@dataclass
class SearchHit:
    enterprise: Enterprise
    rank: int
    score: float
    channels: dict[str, float] = field(default_factory=dict)
    matched_terms: list[str] = field(default_factory=list)
    match_score: int | None = None  # 0–100 (webapp.services.match.evidence); None on the keyword fallback
    evidence: str = ""

    @property
    def evidence_label(self) -> str:
        return evidence.LABELS.get(self.evidence, "")


@dataclass
class SearchResult:
    hits: list[SearchHit]
    has_next: bool
    message: str = ""


def search_firms(
    session: Session,
    app: Flask,
    text: str,
    filters: CandidateFilters,
    k: int,
    offset: int,
    excluded_ids: set[int] | None = None,
    terms: Sequence[str] | None = None,
) -> SearchResult:
    """Fused semantic + keyword search of the registry for `text`, filtered; one extra row tells if more exist.
    `terms`: what counts as strong evidence in a firm's products or name (default: the text itself)."""
    k, offset = max(1, k), max(0, offset)
    engine = serving.engine_for_request(session, app)
    if engine is None:
        return _fallback(session, text, filters, k, offset, excluded_ids)
    state = store.state_of(app)
    resolved = resolve(session, filters, None)
    excluded = sorted(set(resolved.excluded) | set(excluded_ids or ()))
    with state.lock:
        # Always the same window, ties ordered by id: pages then never overlap or skip firms with equal scores.
        hits = engine.search(text, k=MAX_RESULTS + 1, allowed_ids=resolved.allowed, excluded_ids=excluded)
    hits.sort(key=lambda h: (-round(float(h.score), 9), int(h.id)))
    page = hits[offset : offset + k + 1]
    firms = {e.id: e for e in session.scalars(select(Enterprise).where(Enterprise.id.in_([h.id for h in page])))}
    graded = evidence.normalized_terms(terms or (text,))
    out = [
        SearchHit(
            firms[int(h.id)],
            offset + i + 1,
            float(h.score),
            dict(h.channels),
            list(h.matched_terms),
            evidence.match_score(engine, float(h.score), h.channels),
            evidence.grade(firms[int(h.id)], graded, h.matched_terms, "dense" in h.channels),
        )
        for i, h in enumerate(page)
        if int(h.id) in firms
    ]
    return SearchResult(out[:k], len(out) > k and offset + k < MAX_RESULTS)


def _fallback(
    session: Session, text: str, filters: CandidateFilters, k: int, offset: int, excluded_ids: set[int] | None
) -> SearchResult:
    """While the index is not ready: firms whose name, products or scope contain a word of the query."""
    words = [w for w in text.replace("，", " ").replace(",", " ").split() if w][:8] or [text]
    match = or_(
        *[
            col.contains(w)
            for w in words
            for col in (Enterprise.name, Enterprise.main_products, Enterprise.business_scope)
        ]
    )
    stmt = select(Enterprise).where(match, *conditions(filters, None)).order_by(Enterprise.id).limit(FALLBACK_ROWS)
    rows = [e for e in session.scalars(stmt) if e.id not in (excluded_ids or set())]
    page = rows[offset : offset + k + 1]
    hits = [
        SearchHit(
            e,
            offset + i + 1,
            float(sum(w in (e.name + e.main_products + e.business_scope) for w in words)),
            {"keyword": 1.0},
            [w for w in words if w in (e.name + e.main_products + e.business_scope)],
        )
        for i, e in enumerate(page)
    ]
    return SearchResult(hits[:k], len(hits) > k, MESSAGE_FALLBACK)


# ----------------------------------------------------------------------------- links a firm fits


@dataclass
class LinkFit:
    chain: Chain
    link_key: str
    link_name: str
    stage: str
    score: int  # the 0–100 match score the link's candidates page shows for this firm
    matched_terms: list[str]


def links_fitting(
    session: Session, app: Flask, enterprise: Enterprise, chain_ids: list[str], k: int = 5
) -> list[LinkFit]:
    """The chain links (of the given chains) this firm fits best, scored as each link's candidates page scores it:
    the engine's fused score with every channel standardised over the whole pool (empty until the index is ready)."""
    if not chain_ids:
        return []
    engine = serving.engine_for_request(session, app)
    if engine is None:
        return []
    state = store.state_of(app)
    chains = {c.id: c for c in session.scalars(select(Chain).where(Chain.id.in_(chain_ids)).order_by(Chain.id))}
    queries: list[str] = []
    links: list[tuple[Chain, object]] = []
    for chain in chains.values():
        current = current_links(session, chain.id)
        by_key = {link.key: link for link in current}
        for link in current:
            queries.append(link_query_for(chain, by_key, link))
            links.append((chain, link))
    if not queries:
        return []
    with state.lock:
        if enterprise.id not in engine:
            return []
        scores = engine.query_scores(queries, [enterprise.id])[:, 0]
        best = [i for i in np.argsort(-scores, kind="stable")[:k] if np.isfinite(scores[i])]
        terms = {i: engine.matched_terms(queries[i], enterprise.id) for i in best}
        out = [
            LinkFit(
                links[i][0],
                links[i][1].key,
                links[i][1].name,
                links[i][1].stage,
                engine.match_score(float(scores[i])),
                terms[i],
            )
            for i in best
        ]
    return out
