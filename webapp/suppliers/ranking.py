"""Supplier ranking for a firm's needs: matcher relevance first, then local (same city) and in-province first."""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import Flask
from sqlalchemy.orm import Session

from chains.enterprise_models import Enterprise
from webapp.firms.search import SearchHit, search_firms
from webapp.services.match.filters import CandidateFilters

SUPPLIER_POOL = 50  # most relevant firms per need that the regional ordering may reorder
SUPPLIERS_SHOWN = 10  # suppliers listed per need
LOCAL_FIRST_DEFAULT = True
# Region tiers when "本地优先" is on: same city, then same province, then the rest (relevance within a tier).
TIER_CITY, TIER_PROVINCE, TIER_OTHER = 0, 1, 2
TIER_LABELS = {TIER_CITY: "同城", TIER_PROVINCE: "省内", TIER_OTHER: ""}
# Only suppliers scoring at least this share of the best score move up for being near; weaker local firms keep
# their relevance place, so a barely related neighbour never outranks a real maker of the needed product.
LOCAL_FIRST_MIN_SCORE_SHARE = 0.6
LOCAL_FIRST_WINDOW = 10  # when scores are not positive, the top hits that may move up instead


@dataclass
class Need:
    """What the firm looks for: an upstream link of a cluster's chain, or free text."""

    key: str  # "cluster|link_key" or "text"
    label: str
    query: str
    cluster_id: str
    chain_id: str | None = None
    link_key: str | None = None
    terms: tuple[str, ...] = ()  # what counts as strong evidence: the link's products/keywords/synonyms, or the text


@dataclass
class SupplierHit:
    hit: SearchHit
    tier: int
    rank: int = 0

    @property
    def enterprise(self) -> Enterprise:
        return self.hit.enterprise

    @property
    def tier_label(self) -> str:
        return TIER_LABELS[self.tier]


@dataclass
class NeedResult:
    need: Need
    suppliers: list[SupplierHit] = field(default_factory=list)
    message: str = ""


def region_tier(candidate: Enterprise, province: str, city: str) -> int:
    if city and candidate.city == city and (not province or candidate.province == province):
        return TIER_CITY
    if province and candidate.province == province:
        return TIER_PROVINCE
    return TIER_OTHER


def rank_suppliers(
    session: Session,
    app: Flask,
    need: Need,
    requester: Enterprise,
    province: str,
    city: str,
    local_first: bool,
    shown: int = SUPPLIERS_SHOWN,
) -> NeedResult:
    """The suppliers for one need, the requester itself excluded; regional tiers first when `local_first`."""
    filters = CandidateFilters(exclude_cluster_firms=False, active_only=True)
    result = search_firms(
        session,
        app,
        need.query,
        filters,
        SUPPLIER_POOL,
        0,
        excluded_ids={requester.id},
        terms=need.terms or (need.query,),
    )
    hits = [SupplierHit(h, region_tier(h.enterprise, province, city)) for h in result.hits]
    if local_first and hits:
        best = hits[0].hit.score
        if best > 0:
            eligible = [s for s in hits if s.hit.score >= best * LOCAL_FIRST_MIN_SCORE_SHARE]
        else:
            eligible = hits[:LOCAL_FIRST_WINDOW]
        rest = hits[len(eligible) :]
        # Relevance order within each tier (the sort is stable).
        hits = sorted(eligible, key=lambda s: s.tier) + rest
    hits = hits[:shown]
    for rank, s in enumerate(hits, start=1):
        s.rank = rank
    return NeedResult(need, hits, result.message)
