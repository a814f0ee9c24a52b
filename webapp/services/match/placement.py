"""Placement of a cluster's roster firms on chain links: suggestions (unconfirmed) and their confirmation."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from chains.cluster_models import ASSIGNMENT_SUGGESTED, LinkAssignment, RosterEntry
from webapp.services.match import store
from webapp.services.match.explain import score_matrix
from webapp.services.match.learning import _user_id
from webapp.services.match.links import cluster_or_error
from webapp.services.match.profiles import cluster_links
from webapp.services.match.results import MatchError

# A firm is placed only when its best link scores this many standard deviations above the pool mean.
MIN_PLACEMENT_Z = 0.5
MAX_LINKS_PER_FIRM = 2
SECOND_LINK_SHARE = 0.3  # a runner-up link is suggested too when it holds this share of the firm's link confidence


@dataclass
class Suggestion:
    assignment_id: int
    enterprise_id: int
    link_key: str
    chain_id: str
    confidence: float


def _softmax(scores: list[float]) -> list[float]:
    top = max(scores)
    exps = [math.exp(s - top) for s in scores]
    total = sum(exps)
    return [e / total for e in exps]


def place_roster(
    session: Session, cluster_id: str, user_id: int | None = None, checkpoint: Callable[[], None] | None = None
) -> list[Suggestion]:
    """Suggest link(s) for roster firms that have no link assignment yet; rows stay unconfirmed. The caller commits.

    `checkpoint()` is called between steps and firms; it raises to stop the run (a cancelled job)."""
    checkpoint = checkpoint or (lambda: None)
    cluster = cluster_or_error(session, cluster_id)
    app = current_app._get_current_object()
    store.sync(session, app)  # placement is a background/CLI action: it may wait for the index
    checkpoint()
    state = store.state_of(app)
    placed = select(LinkAssignment.enterprise_id).where(LinkAssignment.cluster_id == cluster_id)
    firms = list(
        session.scalars(
            select(RosterEntry.enterprise_id).where(
                RosterEntry.cluster_id == cluster_id, RosterEntry.enterprise_id.not_in(placed)
            )
        )
    )
    if not firms:
        return []
    links = cluster_links(session, cluster)
    leaves = [key for chain_id in cluster.chain_ids for key in links.leaves.get(chain_id, [])]
    if not leaves:
        raise MatchError(f"集聚区 {cluster.name} 的产业链没有可归位的环节")
    # Plain fused scores: the hubness correction is the same for all of a firm's links, and MIN_PLACEMENT_Z is a
    # threshold on how far the firm stands out from the pool on its best link.
    scores = score_matrix(state.engine, state, {key: links.queries[key] for key in leaves}, firms, hubness=False)
    out = []
    for firm in firms:
        checkpoint()
        scored = [(scores[key][firm], key) for key in leaves if firm in scores[key]]
        if not scored:
            continue
        shares = _softmax([s for s, _ in scored])
        ranked = sorted(zip(shares, scored), reverse=True)
        for rank, (share, (z, key)) in enumerate(ranked[:MAX_LINKS_PER_FIRM]):
            if z < MIN_PLACEMENT_Z or (rank > 0 and share < SECOND_LINK_SHARE):
                break
            row = LinkAssignment(
                cluster_id=cluster_id,
                enterprise_id=firm,
                chain_id=links.chain_of(key),
                link_key=key,
                source=ASSIGNMENT_SUGGESTED,
                confirmed=False,
                confidence=round(share, 4),
                created_by_id=user_id,
            )
            session.add(row)
            session.flush()
            out.append(Suggestion(row.id, firm, key, row.chain_id, row.confidence))
    return out


def confirm_assignments(session: Session, ids: Sequence[int], user: Any = None) -> int:
    """Confirm suggested assignments by id; returns how many changed. The caller commits."""
    count = 0
    for row in session.scalars(select(LinkAssignment).where(LinkAssignment.id.in_(list(ids)))):
        if not row.confirmed:
            row.confirmed = True
            row.created_by_id = _user_id(user) or row.created_by_id
            count += 1
    session.flush()
    return count
