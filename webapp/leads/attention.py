"""Work on a link that a chain map edit deleted or moved: placements, N-list entries and leads needing attention.

Nothing is deleted with a link: the rows keep their link key. A row needs attention when its link is missing from
the chain's current version, or when a version written after the row was created moved the link to another parent.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from chains.chain_models import Chain, ChainLink, ChainVersion
from chains.cluster_models import LinkAssignment
from chains.list_models import ListEntry
from webapp.leads.models import Lead

DELETED, MOVED = "已删除", "已移动"


@dataclass(frozen=True)
class AttentionItem:
    kind: str  # 企业归位 / 清单条目 / 招商线索
    cluster_id: str
    chain_id: str
    link_key: str
    link_name: str
    reason: str  # DELETED or MOVED
    label: str  # the firm or list item it concerns
    object_id: int


def _naive(at: datetime | None) -> datetime | None:
    return at.replace(tzinfo=None) if at is not None and at.tzinfo is not None else at


def attention_items(session: Session, chain_id: str, cluster_ids: Iterable[str] | None = None) -> list[AttentionItem]:
    """Placements, list entries and leads of `chain_id` (in `cluster_ids`, or all) whose link was deleted or moved."""
    chain = session.get(Chain, chain_id)
    if chain is None or chain.current_version_id is None:
        return []
    current = set(session.scalars(select(ChainLink.key).where(ChainLink.version_id == chain.current_version_id)))
    moved_at: dict[str, datetime] = {}
    for version in session.scalars(
        select(ChainVersion).where(ChainVersion.chain_id == chain_id, ChainVersion.changes.is_not(None))
    ):
        for key in (version.changes or {}).get("moved", []):
            at = _naive(version.imported_at)
            if key not in moved_at or at > moved_at[key]:
                moved_at[key] = at
    names: dict[str, str] = {}
    for key, name in session.execute(
        select(ChainLink.key, ChainLink.name)
        .join(ChainVersion, ChainVersion.id == ChainLink.version_id)
        .where(ChainVersion.chain_id == chain_id)
        .order_by(ChainVersion.version)
    ):
        names[key] = name  # the latest version's name wins
    clusters = list(cluster_ids) if cluster_ids is not None else None

    def reason(key: str | None, created: datetime | None) -> str | None:
        if not key:
            return None
        if key not in current:
            return DELETED
        at = moved_at.get(key)
        return MOVED if at is not None and (created is None or at > _naive(created)) else None

    items: list[AttentionItem] = []
    sources = (
        ("企业归位", LinkAssignment, lambda r: r.enterprise.name if r.enterprise else str(r.enterprise_id)),
        ("清单条目", ListEntry, lambda r: (r.data or {}).get("name") or r.item_key),
        ("招商线索", Lead, lambda r: r.enterprise.name if getattr(r, "enterprise", None) else str(r.id)),
    )
    for kind, model, label in sources:
        query = select(model).where(model.chain_id == chain_id, model.link_key.is_not(None))
        if clusters is not None:
            query = query.where(model.cluster_id.in_(clusters))
        for row in session.scalars(query.order_by(model.id)):
            why = reason(row.link_key, row.created_at)
            if why:
                items.append(
                    AttentionItem(
                        kind,
                        row.cluster_id,
                        chain_id,
                        row.link_key,
                        names.get(row.link_key, row.link_key),
                        why,
                        label(row),
                        row.id,
                    )
                )
    return items
