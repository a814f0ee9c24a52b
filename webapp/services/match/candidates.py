"""Ranked candidate firms for a cluster's chain link, with explanations; look-alike firms."""
from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Mapping, Sequence

import numpy as np
from flask import current_app
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from chains.chain_models import ChainLink
from chains.cluster_models import Cluster
from chains.enterprise_models import Enterprise
from webapp.services.match import evidence as evidence_module
from webapp.services.match import serving, store
from webapp.services.match.evidence import normalized_terms, terms_in
from webapp.services.match.filters import (
    CandidateFilters,
    ResolvedFilter,
    conditions,
    field_filter,
    resolve,
    roster_ids,
)
from webapp.services.match.linkcache import ChainHead, LinkView, VersionView, chain_views
from webapp.services.match.profiles import link_terms

DEFAULT_K = 20
MAX_K = 500
FALLBACK_ROWS = 2000  # rows read by the keyword fallback while the index is not ready
FILTER_CACHE_SIZE = 16
PAGE_CACHE_SIZE = 256  # candidate pages kept per process (a page is ~20 candidates of plain data)
PAGE_WAIT_SECONDS = 30  # a request waits this long for another thread computing the same page, then computes it

STATE_READY = "ready"
STATE_FALLBACK = "fallback"
MESSAGE_FALLBACK = "匹配索引正在构建，当前仅按关键词匹配展示候选企业，索引完成后将自动使用完整匹配。"


class MatchError(LookupError):
    """Unknown cluster / link / enterprise; the message is for users (Chinese)."""


@dataclass
class LinkRef:
    chain_id: str
    key: str
    name: str
    score: float | None = None


@dataclass
class Candidate:
    enterprise_id: int
    name: str
    rank: int
    score: float
    province: str = ""
    city: str = ""
    country: str = ""
    status: str = ""
    tags: list[str] = field(default_factory=list)
    channels: dict[str, float] = field(default_factory=dict)
    matched_terms: list[str] = field(default_factory=list)
    matched_products: list[str] = field(default_factory=list)
    best_link: LinkRef | None = None
    similar_local: dict | None = None  # {"enterprise_id", "name", "similarity" (0–100)}
    explanation: list[str] = field(default_factory=list)  # Chinese reasons for the UI
    match_score: int | None = None  # 0–100 (webapp.services.match.evidence); None on the keyword fallback
    evidence: str = ""  # strong / medium / weak (webapp.services.match.evidence)

    @property
    def evidence_label(self) -> str:
        return evidence_module.LABELS.get(self.evidence, "")

    @property
    def region(self) -> str:
        return f"{self.province}{self.city}" if self.city != self.province else self.province

    def as_dict(self) -> dict:
        data = asdict(self)
        data["region"] = self.region
        data["evidence_label"] = self.evidence_label
        return data


@dataclass
class CandidatePage:
    cluster_id: str
    link: LinkRef
    items: list[Candidate]
    offset: int
    k: int
    state: str = STATE_READY
    message: str = ""
    embedder: str = ""
    filters: dict = field(default_factory=dict)
    # Everything the page was computed from (None: not cacheable, e.g. the keyword fallback); views may key
    # their own caches of what they derive from the page on it.
    cache_key: tuple | None = field(default=None, repr=False, compare=False)

    def __iter__(self):
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def as_dict(self) -> dict:
        return {
            "cluster_id": self.cluster_id, "link": asdict(self.link), "offset": self.offset, "k": self.k,
            "state": self.state, "message": self.message, "embedder": self.embedder, "filters": self.filters,
            "items": [c.as_dict() for c in self.items],
        }


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


def _cluster(session: Session, cluster_id: str) -> Cluster:
    cluster = session.get(Cluster, cluster_id)
    if cluster is None:
        raise MatchError(f"集聚区 {cluster_id} 不存在")
    return cluster


# ----------------------------------------------------------------------------- scoring helpers

def score_matrix(engine, state: store.EngineState, queries: Mapping[str, str], doc_ids: list[int]) -> dict[str, dict[int, float]]:
    """Fused score of each doc under each query (query key → doc id → score), comparable across queries.

    The engine's own search standardises scores within the searched set, which makes a 20-firm set's scores
    incomparable between two links; here every channel is standardised over the whole pool instead.
    """
    import math

    keys = list(queries)
    ids = [int(i) for i in doc_ids]
    with state.lock:
        # One product per channel for all queries × docs; the queries' side is cached by the engine per pool state.
        matrix = engine.query_scores([queries[k] for k in keys], ids)
    return {key: {i: float(v) for i, v in zip(ids, matrix[q]) if not math.isnan(v)} for q, key in enumerate(keys)}


def matched_products(link: ChainLink, enterprise: Enterprise) -> list[str]:
    """The link's products / keywords / synonyms that appear in the firm's products or business scope."""
    return terms_in(normalized_terms(link_terms(link)), enterprise)


def _resolved(session: Session, state: store.EngineState, filters: CandidateFilters, cluster: Cluster,
              roster: Sequence[int] | None = None, by_fields: bool = False) -> ResolvedFilter:
    """SQL-resolved filter ids, cached per filter set and index watermark (the roster part is always fresh).
    `by_fields`: the filters other than the roster reach the engine as a FieldFilter, so only the roster is read."""
    key = (filters, cluster.id, cluster.city, cluster.province, repr(state.meta.get("watermark")))
    base = ResolvedFilter(allowed=None, excluded=np.zeros(0, np.int64)) if by_fields else \
        state.filter_cache.get(key)
    if base is None:
        ids = resolve(session, replace(filters, exclude_cluster_firms=False), cluster)
        # Kept as sorted int64 arrays: the engine takes them as they are, where a list of 150,000 Python ints
        # cost ≈ 8 ms per search to convert at a million firms (docs/performance.md, Filters).
        base = ResolvedFilter(allowed=None if ids.allowed is None else np.unique(np.asarray(ids.allowed, np.int64)),
                              excluded=np.unique(np.asarray(ids.excluded, np.int64)))
        if len(state.filter_cache) >= FILTER_CACHE_SIZE:
            state.filter_cache.pop(next(iter(state.filter_cache)))
        state.filter_cache[key] = base
    excluded = base.excluded
    if filters.exclude_cluster_firms:
        roster = roster_ids(session, cluster.id) if roster is None else roster
        excluded = np.union1d(excluded, np.asarray(list(roster), np.int64))
    return ResolvedFilter(allowed=base.allowed, excluded=excluded)


# ----------------------------------------------------------------------------- candidates

@dataclass(frozen=True)
class CandidateQuery:
    """One candidate search, built once by whoever asks (the candidates page from its form, the API from its query
    schema, `chainmatch match` from its options: each through webapp.services.match.filter_fields)."""

    cluster_id: str
    link_key: str
    filters: CandidateFilters = field(default_factory=CandidateFilters)
    k: int = DEFAULT_K
    offset: int = 0

    @classmethod
    def of(cls, cluster_id: str, link_key: str, filters: Mapping[str, Any] | CandidateFilters | None = None,
           k: int = DEFAULT_K, offset: int = 0) -> "CandidateQuery":
        """From filter values in any accepted form, with the page clamped to what the matcher ranks."""
        return cls(cluster_id, link_key, CandidateFilters.from_mapping(filters), max(1, min(int(k), MAX_K)),
                   max(0, int(offset)))


def search(session: Session, query: CandidateQuery) -> CandidatePage:
    """The page of ranked candidates `query` asks for (see `candidates`)."""
    return candidates(session, query.cluster_id, query.link_key, query.filters, k=query.k, offset=query.offset)


def candidates(session: Session, cluster_id: str, link_key: str, filters: Mapping[str, Any] | CandidateFilters | None = None,
               k: int = DEFAULT_K, offset: int = 0) -> CandidatePage:
    """Ranked candidate firms for `link_key` of cluster `cluster_id`, with explanations.

    Pages are cached per process under everything they are computed from: cluster, link, filters, k, offset,
    the chains' current versions, the database's enterprise watermark, the engine's generation and learned
    weights, and the cluster's roster. Any change to one of them computes the page afresh.
    """
    cluster = _cluster(session, cluster_id)
    links = link_set(session, cluster)
    link = links.links.get(link_key)
    if link is None:
        raise MatchError(f"环节 {link_key} 不属于集聚区 {cluster.name} 的产业链")
    filters = CandidateFilters.from_mapping(filters)
    k, offset = max(1, min(int(k), MAX_K)), max(0, int(offset))
    chain_id = link.chain_id
    ref = LinkRef(chain_id, link.key, link.name)
    app = current_app._get_current_object()
    engine, data_mark = serving.request_engine(session, app)
    if engine is None:
        return _fallback(session, cluster, link, ref, filters, k, offset)
    state = store.state_of(app)
    roster = roster_ids(session, cluster.id)
    key = (cluster.id, cluster.city, cluster.province, link_key, filters, k, offset, links.cache_key,
           data_mark, state.generation, repr(state.meta.get("watermark")), state.meta.get("learned_weights_id"),
           frozenset(roster))
    # One thread computes a missing page; concurrent requests for it wait for that page rather than each
    # computing it again (one after the other, under the engine lock: seconds each at 1M firms when the filter ids
    # must be read again).
    event, owner = None, False
    for _ in range(2):
        with state.cache_lock:
            cached = state.page_cache.get(key)
            if cached is not None:
                state.page_cache.move_to_end(key)
                break
            event = state.computing.get(key)
            if event is None:
                event = state.computing[key] = threading.Event()
                owner = True
                break
        event.wait(PAGE_WAIT_SECONDS)
    # else: the computing thread is still at it after two waits: compute here too, leaving its event to it
    if cached is not None:
        return _copy_page(cached)
    try:
        return _compute_page(session, state, engine, key, cluster, links, link_key, ref, filters, roster, k, offset,
                             chain_id)
    finally:
        if owner:
            with state.cache_lock:
                state.computing.pop(key, None)
            event.set()


def _compute_page(session: Session, state, engine, key: tuple, cluster, links, link_key: str, ref: LinkRef,
                  filters: CandidateFilters, roster, k: int, offset: int, chain_id: str) -> CandidatePage:
    generation = state.generation
    # Region, country, tag and status filters go to the engine as fields when its vector index stores them
    # (Milvus filters inside its search; an id list of a province's firms cost it ~95 ms per query to parse);
    # the roster, and capital/employee ranges (field_filter None), stay id sets read in SQL.
    where = field_filter(filters, cluster)
    if where is not None and not engine.filters_fields(where):
        where = None
    resolved = _resolved(session, state, filters, cluster, roster, by_fields=where is not None)
    with state.lock:
        hits = engine.search(links.query(link_key), k=offset + k, allowed_ids=resolved.allowed,
                             excluded_ids=resolved.excluded, where=where)
    hits = hits[offset:offset + k]
    firms = {e.id: e for e in session.scalars(select(Enterprise).where(Enterprise.id.in_([h.id for h in hits])))}
    terms = normalized_terms(links.terms(link_key))
    items = []
    for rank, hit in enumerate(hits, start=offset + 1):
        ent = firms.get(int(hit.id))
        if ent is None:  # deleted after the last sync
            continue
        items.append(_candidate(ent, rank, float(hit.score), dict(hit.channels), list(hit.matched_terms), terms,
                                evidence_module.match_score(engine, float(hit.score), hit.channels)))
    _explain(session, engine, state, links, chain_id, items, roster)
    page = CandidatePage(cluster.id, ref, items, offset, k, STATE_READY, "", state.meta.get("embedder", ""),
                         filters.as_dict(), cache_key=key)
    with state.cache_lock:
        if generation == state.generation:  # not computed across an engine change
            state.page_cache[key] = _copy_page(page)
            while len(state.page_cache) > PAGE_CACHE_SIZE:
                state.page_cache.popitem(last=False)
    return page


def _copy_page(page: CandidatePage) -> CandidatePage:
    """A copy sharing nothing mutable with the cached page (callers may change what they get)."""
    return replace(page, link=replace(page.link), filters=dict(page.filters),
                   items=[_copy_candidate(c) for c in page.items])


def _copy_candidate(c: Candidate) -> Candidate:
    # Field by field (dataclasses.replace re-runs __init__ and costs several times more per candidate).
    new = object.__new__(Candidate)
    new.__dict__.update(c.__dict__)
    new.tags, new.channels = list(c.tags), dict(c.channels)
    new.matched_terms, new.matched_products, new.explanation = (list(c.matched_terms), list(c.matched_products),
                                                                list(c.explanation))
    new.best_link = replace(c.best_link) if c.best_link is not None else None
    new.similar_local = dict(c.similar_local) if c.similar_local is not None else None
    return new


def _candidate(ent: Enterprise, rank: int, score: float, channels: dict, terms: list[str],
               link_terms_normalized: list[tuple[str, str]], match_score: int | None) -> Candidate:
    return Candidate(
        enterprise_id=ent.id, name=ent.name, rank=rank, score=round(score, 4), province=ent.province or "",
        city=ent.city or "", country=ent.country or "", status=ent.status or "", tags=ent.tag_names,
        channels={c: round(float(v), 4) for c, v in channels.items()}, matched_terms=terms,
        matched_products=terms_in(link_terms_normalized, ent), match_score=match_score,
        evidence=evidence_module.grade(ent, link_terms_normalized, terms, "dense" in channels),
    )


def _explain(session: Session, engine, state: store.EngineState, links: LinkSet, chain_id: str,
             items: list[Candidate], roster: Sequence[int]) -> None:
    """Best-fitting leaf link of the chain and most similar local firm for each candidate, plus Chinese reasons."""
    if not items:
        return
    ids = [c.enterprise_id for c in items]
    leaves = links.leaves(chain_id)
    fits = score_matrix(engine, state, {key: links.query(key) for key in leaves}, ids)
    look_alike = [None] * len(items)
    if roster:
        with state.lock:  # roster × page candidates in one step, as engine.similar(id, k=1, roster) would rank
            look_alike = engine.best_look_alikes(ids, list(roster))
    similar_ids = sorted({int(top.id) for top in look_alike if top is not None})
    names = dict(session.execute(select(Enterprise.id, Enterprise.name)
                                 .where(Enterprise.id.in_(similar_ids))).all()) if similar_ids else {}
    for c, top in zip(items, look_alike):
        scored = [(fits[key][c.enterprise_id], key) for key in leaves if c.enterprise_id in fits[key]]
        if scored:
            score, key = max(scored)
            c.best_link = LinkRef(chain_id, key, links.links[key].name, engine.match_score(score))
        if top is not None:
            c.similar_local = {"enterprise_id": int(top.id), "name": names.get(int(top.id), ""),
                               "similarity": engine.similarity_score(float(top.score))}
        c.explanation = _reasons(c)


def _reasons(c: Candidate) -> list[str]:
    reasons = [evidence_module.REASONS[c.evidence]] if c.evidence else []
    if c.matched_products:
        reasons.append("产品/关键词匹配：" + "、".join(c.matched_products[:6]))
    if c.matched_terms:
        reasons.append("命中检索词：" + "、".join(c.matched_terms[:8]))
    if c.best_link is not None:
        reasons.append(f"最契合环节：{c.best_link.name}")
    if c.similar_local:
        reasons.append(f"与本地企业“{c.similar_local['name']}”相似")
    return reasons


def _fallback(session: Session, cluster: Cluster, link: ChainLink | LinkView, ref: LinkRef,
              filters: CandidateFilters, k: int, offset: int) -> CandidatePage:
    """While the index is not ready: firms whose text contains the link's terms, ranked by how many they contain."""
    terms = link_terms(link) or [link.name]
    text_match = or_(*[col.contains(term) for term in terms
                       for col in (Enterprise.main_products, Enterprise.business_scope, Enterprise.name)])
    stmt = select(Enterprise).where(text_match, *conditions(filters, cluster)).order_by(Enterprise.id).limit(FALLBACK_ROWS)
    if filters.exclude_cluster_firms:
        stmt = stmt.where(Enterprise.id.not_in(roster_ids(session, cluster.id)))
    scored = []
    normalized = normalized_terms(link_terms(link))
    for ent in session.scalars(stmt):
        found = terms_in(normalized, ent)
        scored.append((len(found), -ent.id, ent, found))
    scored.sort(key=lambda s: (s[0], s[1]), reverse=True)
    items = []
    for rank, (hits, _, ent, found) in enumerate(scored[offset:offset + k], start=offset + 1):
        c = _candidate(ent, rank, float(hits), {"keyword": float(hits)}, found, normalized, None)
        c.explanation = _reasons(c)
        items.append(c)
    status = serving.active_embedder_info(current_app)
    return CandidatePage(cluster.id, ref, items, offset, k, STATE_FALLBACK, MESSAGE_FALLBACK,
                         status.get("embedder") or "", filters.as_dict())


# ----------------------------------------------------------------------------- look-alikes

def look_alikes(session: Session, enterprise_id: int, k: int = 10,
                filters: Mapping[str, Any] | CandidateFilters | None = None) -> list[Candidate]:
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
    resolved = resolve(session, filters, None)
    with state.lock:
        hits = engine.similar(enterprise_id, k=max(1, min(int(k), MAX_K)), allowed_ids=resolved.allowed,
                              excluded_ids=sorted(set(resolved.excluded) | {enterprise_id}))
    firms = {e.id: e for e in session.scalars(select(Enterprise).where(Enterprise.id.in_([h.id for h in hits])))}
    out = []
    for rank, hit in enumerate(hits, start=1):
        ent = firms.get(int(hit.id))
        if ent is None or ent.id == enterprise_id:
            continue
        out.append(Candidate(enterprise_id=ent.id, name=ent.name, rank=rank, score=round(float(hit.score), 4),
                             province=ent.province or "", city=ent.city or "", country=ent.country or "",
                             status=ent.status or "", tags=ent.tag_names,
                             channels={c: round(float(v), 4) for c, v in hit.channels.items()},
                             matched_terms=list(hit.matched_terms),
                             match_score=engine.similarity_score(float(hit.score))))
    return out
