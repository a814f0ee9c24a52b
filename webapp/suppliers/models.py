"""供需对接 models: a firm user's supplier shortlist, matchmaking requests and their status history."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from chains.db import Base, TimestampMixin, utcnow

STATUS_PENDING = "待处理"
STATUS_IN_PROGRESS = "对接中"
STATUS_DONE = "已完成"
STATUS_REJECTED = "已拒绝"
REQUEST_STATUSES = (STATUS_PENDING, STATUS_IN_PROGRESS, STATUS_DONE, STATUS_REJECTED)
OPEN_STATUSES = (STATUS_PENDING, STATUS_IN_PROGRESS)  # neither done nor rejected


class SupplierShortlist(Base):
    """A supplier a firm user keeps on its shortlist (one row per user and supplier)."""

    __tablename__ = "supplier_shortlist"
    __table_args__ = (UniqueConstraint("user_id", "supplier_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    supplier_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id", ondelete="CASCADE"), index=True)
    need_text: Mapped[str] = mapped_column(Text, default="")  # the need it was found for
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    supplier = relationship("Enterprise", lazy="joined")


class MatchmakingRequest(TimestampMixin, Base):
    """申请对接: a chain-leader firm asks the cluster to connect it with a supplier for a need."""

    __tablename__ = "matchmaking_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    requester_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id", ondelete="CASCADE"), index=True)
    supplier_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id", ondelete="CASCADE"), index=True)
    cluster_id: Mapped[str] = mapped_column(ForeignKey("clusters.id", ondelete="CASCADE"), index=True)
    chain_id: Mapped[str | None] = mapped_column(ForeignKey("chains.id", ondelete="SET NULL"))
    link_key: Mapped[str | None] = mapped_column(String(128))
    need_text: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(8), default=STATUS_PENDING, index=True)
    note: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    requester = relationship("Enterprise", foreign_keys=[requester_id], lazy="joined")
    supplier = relationship("Enterprise", foreign_keys=[supplier_id], lazy="joined")
    cluster = relationship("Cluster", lazy="joined")
    events: Mapped[list["MatchmakingEvent"]] = relationship(
        back_populates="request", cascade="all, delete-orphan", order_by="MatchmakingEvent.id"
    )


class MatchmakingEvent(Base):
    """One change of a matchmaking request (creation is field `created`)."""

    __tablename__ = "matchmaking_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("matchmaking_requests.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    field: Mapped[str] = mapped_column(String(32))
    old: Mapped[str | None] = mapped_column(Text)
    new: Mapped[str | None] = mapped_column(Text)

    request: Mapped[MatchmakingRequest] = relationship(back_populates="events")
    user = relationship("User", lazy="joined")
