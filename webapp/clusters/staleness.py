"""Stale chain maps: a cluster's map needs a review when nobody reviewed it (or saved a new version of it) for
`MAP_REVIEW_DAYS`, or when the top candidates of its gap links changed by more than `MAP_CANDIDATE_CHANGE` since
the last review. A review records the gap links' top candidates, which later checks compare against.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

from flask import current_app

from chains.chain_models import Chain
from chains.cluster_models import Cluster, ClusterChain
from chains.gaps import analyze_chain
from webapp.web.integrations import optional_function

logger = logging.getLogger("chainmatch.clusters")

GAP_STATUSES = ("空白", "薄弱")
TOP_K = 10
MAX_LINKS = 15  # gap links compared per map (each comparison ranks candidates)
CHECK_TTL = 600  # seconds a candidate comparison is reused by this process (pages and the home page ask often)
CACHE_KEY = "chainmatch.staleness"


@dataclass
class MapFreshness:
    cluster: Cluster
    chain_id: str
    chain_name: str
    last_review: datetime | None
    reviewed_by: str
    stale: bool = False
    reasons: list[str] = field(default_factory=list)

    @property
    def age_days(self) -> int | None:
        if self.last_review is None:
            return None
        return (datetime.now(timezone.utc) - _aware(self.last_review)).days


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=timezone.utc)


def gap_links(session, cluster_id: str, chain_id: str) -> list[tuple[str, str]]:
    """(key, name) of the chain's 空白 and 薄弱 leaf-or-parent links for this cluster, at most MAX_LINKS."""
    gap = analyze_chain(session, cluster_id, chain_id)
    return [(g.link_id, g.name) for g in gap.links if g.status in GAP_STATUSES][:MAX_LINKS]


def top_candidates(session, cluster_id: str, keys: list[str]) -> dict[str, list[int]]:
    """The ids of the top candidate firms of each link (links the matcher cannot rank are left out)."""
    find = optional_function("webapp.services.match", "candidates")
    out: dict[str, list[int]] = {}
    if find is None:
        return out
    for key in keys:
        try:
            page = find(session, cluster_id, key, {}, TOP_K, 0)
        except LookupError:
            continue
        except Exception:  # a review must not fail because the matcher does
            logger.exception("candidates for the map review failed: %s / %s", cluster_id, key)
            continue
        if page.cache_key is not None:  # a keyword fallback while the index builds is not a baseline
            out[key] = [c.enterprise_id for c in page.items]
    return out


def record_review(session, link: ClusterChain, username: str) -> None:
    """Mark the map reviewed now by `username`, remembering the gap links' top candidates."""
    keys = [k for k, _ in gap_links(session, link.cluster_id, link.chain_id)]
    link.reviewed_at = datetime.now(timezone.utc)
    link.reviewed_by = username[:64]
    link.review_snapshot = {"candidates": top_candidates(session, link.cluster_id, keys)}


def freshness(session, cluster: Cluster, link: ClusterChain, check_candidates: bool = True) -> MapFreshness:
    """Whether this cluster's map of one chain is stale, and why (Chinese reasons)."""
    chain = session.get(Chain, link.chain_id)
    version = chain.current_version if chain else None
    moments = [at for at in (link.reviewed_at, version.imported_at if version else None) if at is not None]
    last = max(moments, key=_aware) if moments else None
    by = (
        link.reviewed_by
        if link.reviewed_at is not None and last == link.reviewed_at
        else ((version.author or "导入") if version else "")
    )
    result = MapFreshness(cluster, link.chain_id, chain.name if chain else link.chain_id, last, by)
    days = int(current_app.config.get("MAP_REVIEW_DAYS", 180))
    if result.age_days is None or result.age_days > days:
        result.reasons.append(f"图谱已超过 {days} 天未复核")
    threshold = int(current_app.config.get("MAP_CANDIDATE_CHANGE", 50)) / 100
    before = (link.review_snapshot or {}).get("candidates") or {}
    if check_candidates and before:
        cache = current_app.extensions.setdefault(CACHE_KEY, {})
        key = (
            cluster.id,
            link.chain_id,
            str(link.reviewed_at),
            version.id if version else None,
            threshold,
            json.dumps(before, sort_keys=True),
        )
        hit = cache.get(key)
        if hit is not None and time.monotonic() - hit[0] < CHECK_TTL:
            changed = hit[1]
        else:
            changed = changed_links(session, cluster.id, before, threshold)
            if len(cache) > 1000:  # old reviews' entries
                cache.clear()
            cache[key] = (time.monotonic(), changed)
        if changed:
            result.reasons.append(f"{changed} 个缺口环节的候选企业自上次复核以来变化超过 {threshold:.0%}")
    result.stale = bool(result.reasons)
    return result


def changed_links(session, cluster_id: str, before: dict[str, list[int]], threshold: float) -> int:
    """How many links' top candidates had more than `threshold` of them replaced since the snapshot `before`."""
    now = top_candidates(session, cluster_id, list(before))
    return sum(
        1 for key, ids in before.items() if key in now and ids and len(set(ids) - set(now[key])) / len(ids) > threshold
    )


def cluster_freshness(session, cluster: Cluster, check_candidates: bool = True) -> list[MapFreshness]:
    """Freshness of each chain map of a cluster."""
    return [freshness(session, cluster, link, check_candidates) for link in cluster.chains]
