"""Matcher feedback and learning records: candidate feedback, learned fusion weights, the index's database id.

Also makes every ORM delete of an enterprise leave a tombstone (EnterpriseDeletion) for incremental index sync.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, String, Text, event, insert
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapped, Mapper, mapped_column

from chains.db import Base, utcnow
from chains.enterprise_models import Enterprise, EnterpriseDeletion

LABEL_RELEVANT = "relevant"
LABEL_NOT_RELEVANT = "not_relevant"
LABEL_CONTACTED = "contacted"  # staff contacted the firm: a positive signal
FEEDBACK_LABELS = {LABEL_RELEVANT: "相关", LABEL_NOT_RELEVANT: "不相关", LABEL_CONTACTED: "已接洽"}
POSITIVE_LABELS = (LABEL_RELEVANT, LABEL_CONTACTED)


class CandidateFeedback(Base):
    """A user's judgement of one candidate firm for one link of one cluster (the latest one counts)."""

    __tablename__ = "candidate_feedback"

    id: Mapped[int] = mapped_column(primary_key=True)
    cluster_id: Mapped[str] = mapped_column(ForeignKey("clusters.id", ondelete="CASCADE"), index=True)
    link_key: Mapped[str] = mapped_column(String(128), index=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LearnedWeights(Base):
    """One run of learning from feedback: the learned model, its offline evaluation, and whether it was adopted."""

    __tablename__ = "learned_weights"

    id: Mapped[int] = mapped_column(primary_key=True)
    embedder: Mapped[str] = mapped_column(String(512), default="")
    # the learned model's parameters (fusion weights …)
    weights: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    baseline: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # offline figures of the current weights
    learned: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # offline figures of the learned weights
    metric: Mapped[str] = mapped_column(String(32), default="")  # the figure that decides adoption
    gain: Mapped[float | None] = mapped_column(Float)
    queries: Mapped[int] = mapped_column(Integer, default=0)  # labelled queries used
    positives: Mapped[int] = mapped_column(Integer, default=0)
    negatives: Mapped[int] = mapped_column(Integer, default=0)
    adopted: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    note: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class MatchIndexState(Base):
    """Key/value state of the match index kept in the database (e.g. a random id telling databases apart)."""

    __tablename__ = "match_index_state"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text, default="")


@event.listens_for(Enterprise, "after_delete")
def _leave_tombstone(mapper: Mapper[Enterprise], connection: Connection, target: Enterprise) -> None:
    """Every ORM delete of an enterprise leaves an EnterpriseDeletion row, so the match index drops it incrementally."""
    deletions = EnterpriseDeletion.metadata.tables[EnterpriseDeletion.__tablename__]
    connection.execute(insert(deletions).values(enterprise_id=target.id, deleted_at=utcnow()))
