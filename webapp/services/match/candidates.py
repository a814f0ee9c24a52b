"""Ranked candidate firms for a cluster's chain link (`search`, cached per page), and look-alike firms.

A search takes one CandidateQuery (webapp.services.match.results); the candidate rows and their explanations are
made in webapp.services.match.explain, the keyword fallback while the index is not ready in
webapp.services.match.fallback.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping, NamedTuple, Sequence

import numpy as np
from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from chains.cluster_models import Cluster
from chains.enterprise_models import Enterprise
from matching.engine import MatchEngine
from matching.vectors import FieldFilter
from webapp.services.match import evidence as evidence_module
from webapp.services.match import serving, store
from webapp.services.match.evidence import normalized_terms
from webapp.services.match.explain import candidate_row, explain
from webapp.services.match.fallback import keyword_fallback
from webapp.services.match.filters import (
    CandidateFilters,
    ResolvedFilter,
    field_filter,
    resolve,
    roster_ids,
)
from webapp.services.match.links import LinkSet, cluster_or_error, link_set, unknown_link
from webapp.services.match.results import (
    DEFAULT_K,
    MAX_K,
    STATE_READY,
    Candidate,
    CandidatePage,
    CandidateQuery,
    LinkRef,
    MatchError,
)

PAGE_WAIT_SECONDS = 30  # a request waits this long for another thread computing the same page, then computes it


def _resolved(
    session: Session,
    state: store.EngineState,
    filters: CandidateFilters,
    cluster: Cluster,
    roster: Sequence[int] | None = None,
    by_fields: bool = False,
) -> ResolvedFilter:
    """SQL-resolved filter ids, cached per filter set and index watermark (the roster part is always fresh).
    `by_fields`: the filters other than the roster reach the engine as a FieldFilter, so only the roster is read."""
    key = (filters, cluster.id, cluster.city, cluster.province, repr(state.meta.get("watermark")))
    base = ResolvedFilter(allowed=None, excluded=np.zeros(0, np.int64)) if by_fields else state.filter_cache.get(key)
    if base is None:
        ids = resolve(session, replace(filters, exclude_cluster_firms=False), cluster)
        # Kept as sorted int64 arrays: the engine takes them as they are, where a list of 150,000 Python ints
        # cost ≈ 8 ms per search to convert at a million firms (docs/performance.md, Filters).
        base = ResolvedFilter(
            allowed=None if ids.allowed is None else np.unique(np.asarray(ids.allowed, np.int64)),
            excluded=np.unique(np.asarray(ids.excluded, np.int64)),
        )
        state.filter_cache.put(key, base)
    excluded = base.excluded
    if filters.exclude_cluster_firms:
        roster = roster_ids(session, cluster.id) if roster is None else roster
        excluded = np.union1d(excluded, np.asarray(list(roster), np.int64))
    return ResolvedFilter(allowed=base.allowed, excluded=excluded)


# ----------------------------------------------------------------------------- candidates


def _engine_where(engine: MatchEngine, filters: CandidateFilters, cluster: Cluster | None) -> FieldFilter | None:
    """The filters as a FieldFilter when the engine's vector index stores the fields they read, else None (id sets
    read in SQL). Region, country, tag and status filters then go to the engine as fields, which it applies to its own
    copy of them and either hands to Milvus's search or turns into the allowed rows' ids for an exact local scan
    (matching.engine.ranking: LOCAL_SCAN_MAX_ROWS); resolving them in SQL instead cost an id list of a province's
    firms ~95 ms per query for Milvus to parse, and a look-alike search within a province 133 → 45 ms p50 at 1M
    (docs/performance-history.md). The roster, and capital/employee ranges (field_filter None), stay id sets."""
    where = field_filter(filters, cluster)
    return where if where is not None and engine.filters_fields(where) else None


class PageKey(NamedTuple):
    """Everything a candidates page is computed from: a change to any part computes the page afresh."""

    query: CandidateQuery
    city: str | None  # the cluster's city and province (the exclude-own-city/province filters)
    province: str | None
    links: tuple  # the chains' current versions (LinkSet.cache_key)
    data_mark: Any  # the database's enterprise watermark, as the engine was synced to
    generation: int  # the engine's generation (a rebuild or reload)
    watermark: str  # the index's saved watermark
    learned: Any  # the adopted learned model's id
    roster: frozenset  # the cluster's roster


def search(session: Session, query: CandidateQuery) -> CandidatePage:
    """Ranked candidate firms for the query's link of its cluster, with explanations.

    Pages are cached per process under their PageKey; concurrent requests for a page being computed wait for it.
    """
    cluster = cluster_or_error(session, query.cluster_id)
    links = link_set(session, cluster)
    link = links.links.get(query.link_key)
    if link is None:
        raise unknown_link(query.link_key, cluster)
    ref = LinkRef(link.chain_id, link.key, link.name)
    app = current_app._get_current_object()
    engine, data_mark = serving.request_engine(session, app)
    if engine is None:
        return keyword_fallback(session, cluster, link, ref, query)
    state = store.state_of(app)
    roster = roster_ids(session, cluster.id)
    key = PageKey(
        query,
        cluster.city,
        cluster.province,
        links.cache_key,
        data_mark,
        state.generation,
        repr(state.meta.get("watermark")),
        state.meta.get("learned_weights_id"),
        frozenset(roster),
    )

    def compute() -> tuple[CandidatePage, bool]:
        generation = state.generation
        page = _compute_page(session, state, engine, key, cluster, links, ref, roster)
        return page, generation == state.generation  # not cached when computed across an engine change

    # One thread computes a missing page; concurrent requests for it wait for that page rather than each computing
    # it again (one after the other, under the engine lock: seconds each at 1M firms when the filter ids must be
    # read again). Every caller gets its own copy: callers may change what they get.
    return _copy_page(state.pages.get_or_compute(key, compute, PAGE_WAIT_SECONDS))


def candidates(
    session: Session,
    cluster_id: str,
    link_key: str,
    filters: Mapping[str, Any] | CandidateFilters | None = None,
    k: int = DEFAULT_K,
    offset: int = 0,
) -> CandidatePage:
    """`search` for a query given by its parts."""
    return search(session, CandidateQuery.of(cluster_id, link_key, filters, k, offset))


def _compute_page(
    session: Session, state, engine, key: PageKey, cluster: Cluster, links: LinkSet, ref: LinkRef, roster: Sequence[int]
) -> CandidatePage:
    query = key.query
    filters, k, offset, link_key = query.filters, query.k, query.offset, query.link_key
    where = _engine_where(engine, filters, cluster)
    resolved = _resolved(session, state, filters, cluster, roster, by_fields=where is not None)
    with state.lock:
        hits = engine.search(
            links.query(link_key),
            k=offset + k,
            allowed_ids=resolved.allowed,
            excluded_ids=resolved.excluded,
            where=where,
        )
    hits = hits[offset : offset + k]
    firms = {e.id: e for e in session.scalars(select(Enterprise).where(Enterprise.id.in_([h.id for h in hits])))}
    terms = normalized_terms(links.terms(link_key))
    items = []
    for rank, hit in enumerate(hits, start=offset + 1):
        ent = firms.get(int(hit.id))
        if ent is None:  # deleted after the last sync
            continue
        items.append(
            candidate_row(
                ent,
                rank,
                float(hit.score),
                dict(hit.channels),
                list(hit.matched_terms),
                terms,
                evidence_module.match_score(engine, float(hit.score), hit.channels),
            )
        )
    explain(session, engine, state, links, ref.chain_id, items, roster)
    return CandidatePage(
        cluster.id,
        ref,
        items,
        offset,
        k,
        STATE_READY,
        "",
        state.meta.get("embedder", ""),
        filters.as_dict(),
        cache_key=key,
    )


def firm_on_link(session: Session, cluster_id: str, link_key: str, enterprise_id: int) -> Candidate | None:
    """One firm as a candidate of the cluster's link: the score, evidence and reasons its row on the link's
    candidates page gives (the rank is left 0). None while the index is not ready or when the firm is not in it."""
    cluster = cluster_or_error(session, cluster_id)
    links = link_set(session, cluster)
    link = links.links.get(link_key)
    ent = session.get(Enterprise, enterprise_id)
    if link is None or ent is None:
        return None
    app = current_app._get_current_object()
    engine, _ = serving.request_engine(session, app)
    if engine is None:
        return None
    state = store.state_of(app)
    with state.lock:
        if enterprise_id not in engine:
            return None
        hits = engine.search(links.query(link_key), k=1, allowed_ids=np.asarray([enterprise_id], np.int64))
    if not hits:
        return None
    hit = hits[0]
    channels = dict(hit.channels)
    score = float(hit.score)
    row = candidate_row(
        ent,
        0,
        score,
        channels,
        list(hit.matched_terms),
        normalized_terms(links.terms(link_key)),
        evidence_module.match_score(engine, score, channels),
    )
    local = [i for i in roster_ids(session, cluster.id) if i != enterprise_id]  # a local firm is not its own look-alike
    explain(session, engine, state, links, link.chain_id, [row], local)
    return row


def _copy_page(page: CandidatePage) -> CandidatePage:
    """A copy sharing nothing mutable with the cached page (callers may change what they get)."""
    return replace(
        page, link=replace(page.link), filters=dict(page.filters), items=[_copy_candidate(c) for c in page.items]
    )


def _copy_candidate(c: Candidate) -> Candidate:
    # Field by field (dataclasses.replace re-runs __init__ and costs several times more per candidate).
    new = object.__new__(Candidate)
    new.__dict__.update(c.__dict__)
    new.tags, new.channels = list(c.tags), dict(c.channels)
    new.matched_terms, new.matched_products, new.explanation = (
        list(c.matched_terms),
        list(c.matched_products),
        list(c.explanation),
    )
    new.best_link = replace(c.best_link) if c.best_link is not None else None
    new.similar_local = dict(c.similar_local) if c.similar_local is not None else None
    return new


# ----------------------------------------------------------------------------- look-alikes


def look_alikes(
    session: Session, enterprise_id: int, k: int = 10, filters: Mapping[str, Any] | CandidateFilters | None = None
) -> list[Candidate]:
    """Firms most similar to `enterprise_id` (itself excluded); active firms only unless filters say otherwise."""
    source = session.get(Enterprise, enterprise_id)
    if source is None:
        raise MatchError(f"企业 {enterprise_id} 不存在")
    if not isinstance(filters, CandidateFilters):
        filters = CandidateFilters.from_mapping({"exclude_cluster_firms": False, **dict(filters or {})})
    app = current_app._get_current_object()
    engine = serving.engine_for_request(session, app)
    if engine is None:
        return []
    state = store.state_of(app)
    where = _engine_where(engine, filters, None)
    resolved = ResolvedFilter(allowed=None, excluded=[]) if where is not None else resolve(session, filters, None)
    with state.lock:
        hits = engine.similar(
            enterprise_id,
            k=max(1, min(int(k), MAX_K)),
            allowed_ids=resolved.allowed,
            excluded_ids=sorted(set(resolved.excluded) | {enterprise_id}),
            where=where,
        )
    firms = {e.id: e for e in session.scalars(select(Enterprise).where(Enterprise.id.in_([h.id for h in hits])))}
    out = []
    for rank, hit in enumerate(hits, start=1):
        ent = firms.get(int(hit.id))
        if ent is None or ent.id == enterprise_id:
            continue
        out.append(
            Candidate(
                enterprise_id=ent.id,
                name=ent.name,
                rank=rank,
                score=round(float(hit.score), 4),
                province=ent.province or "",
                city=ent.city or "",
                country=ent.country or "",
                status=ent.status or "",
                tags=ent.tag_names,
                channels={c: round(float(v), 4) for c, v in hit.channels.items()},
                matched_terms=list(hit.matched_terms),
                match_score=engine.similarity_score(float(hit.score)),
            )
        )
    return out
