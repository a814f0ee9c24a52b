"""The keyword fallback: candidates while the match index is not ready, by the link's terms found in firms' text."""

from __future__ import annotations

from flask import current_app
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from chains.chain_models import ChainLink
from chains.cluster_models import Cluster
from chains.enterprise_models import Enterprise
from webapp.services.match import serving
from webapp.services.match.evidence import normalized_terms, terms_in
from webapp.services.match.explain import candidate_row, reasons
from webapp.services.match.filters import conditions, roster_ids
from webapp.services.match.linkcache import LinkView
from webapp.services.match.profiles import link_terms
from webapp.services.match.results import STATE_FALLBACK, CandidatePage, CandidateQuery, LinkRef

FALLBACK_ROWS = 2000  # rows read by the keyword fallback while the index is not ready
MESSAGE_FALLBACK = "匹配索引正在构建，当前仅按关键词匹配展示候选企业，索引完成后将自动使用完整匹配。"


def keyword_fallback(
    session: Session, cluster: Cluster, link: ChainLink | LinkView, ref: LinkRef, query: CandidateQuery
) -> CandidatePage:
    """While the index is not ready: firms whose text contains the link's terms, ranked by how many they contain."""
    filters, k, offset = query.filters, query.k, query.offset
    terms = link_terms(link) or [link.name]
    text_match = or_(
        *[
            col.contains(term)
            for term in terms
            for col in (Enterprise.main_products, Enterprise.business_scope, Enterprise.name)
        ]
    )
    stmt = (
        select(Enterprise).where(text_match, *conditions(filters, cluster)).order_by(Enterprise.id).limit(FALLBACK_ROWS)
    )
    if filters.exclude_cluster_firms:
        stmt = stmt.where(Enterprise.id.not_in(roster_ids(session, cluster.id)))
    scored = []
    normalized = normalized_terms(link_terms(link))
    for ent in session.scalars(stmt):
        found = terms_in(normalized, ent)
        scored.append((len(found), -ent.id, ent, found))
    scored.sort(key=lambda s: (s[0], s[1]), reverse=True)
    items = []
    for rank, (hits, _, ent, found) in enumerate(scored[offset : offset + k], start=offset + 1):
        c = candidate_row(ent, rank, float(hits), {"keyword": float(hits)}, found, normalized, None)
        c.explanation = reasons(c)
        items.append(c)
    status = serving.active_embedder_info(current_app)
    return CandidatePage(
        cluster.id,
        ref,
        items,
        offset,
        k,
        STATE_FALLBACK,
        MESSAGE_FALLBACK,
        status.get("embedder") or "",
        filters.as_dict(),
    )
