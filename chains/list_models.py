"""N张清单 models: materialised list entries with curation, their change history, key projects."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from chains.db import Base, utcnow

ENTRY_DERIVED = "derived"  # materialised from roster, assignments, gaps or projects on refresh
ENTRY_MANUAL = "manual"  # added by a user or another feature (招商目标企业)


class ListEntry(Base):
    """One row of one list of a cluster × chain; curation (pin/remove/note) survives refreshes."""

    __tablename__ = "list_entries"
    __table_args__ = (UniqueConstraint("cluster_id", "chain_id", "list_type", "item_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cluster_id: Mapped[str] = mapped_column(ForeignKey("clusters.id", ondelete="CASCADE"), index=True)
    chain_id: Mapped[str] = mapped_column(ForeignKey("chains.id", ondelete="CASCADE"), index=True)
    list_type: Mapped[str] = mapped_column(String(32))
    item_key: Mapped[str] = mapped_column(String(160))  # "ent:<id>", "link:<key>", "proj:<id>"
    enterprise_id: Mapped[int | None] = mapped_column(ForeignKey("enterprises.id", ondelete="CASCADE"))
    link_key: Mapped[str | None] = mapped_column(String(128))
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(16), default=ENTRY_DERIVED)
    derived: Mapped[bool] = mapped_column(Boolean, default=True)  # still derives at the last refresh
    position: Mapped[int] = mapped_column(Integer, default=0)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # column values at the last refresh
    pinned: Mapped[bool] = mapped_column(Boolean, default=False)
    removed: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    refreshed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    changes: Mapped[list["ListChange"]] = relationship(
        back_populates="entry", cascade="all, delete-orphan", order_by="ListChange.id"
    )

    @property
    def visible(self) -> bool:
        """Shown in the list: not removed, and still derived (or pinned, or added by hand)."""
        return not self.removed and (self.derived or self.pinned or self.source == ENTRY_MANUAL)


class ListChange(Base):
    """One curation action on a list entry: who (None for the CLI) and when."""

    __tablename__ = "list_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("list_entries.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(16))  # add/pin/unpin/remove/restore/note
    old_value: Mapped[str | None] = mapped_column(Text)
    new_value: Mapped[str | None] = mapped_column(Text)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    username: Mapped[str | None] = mapped_column(String(64))
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    entry: Mapped[ListEntry] = relationship(back_populates="changes")


class Project(Base):
    """A key project (重点项目) of a cluster, amounts in 万元."""

    __tablename__ = "projects"
    __table_args__ = (UniqueConstraint("cluster_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cluster_id: Mapped[str] = mapped_column(ForeignKey("clusters.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    enterprise_id: Mapped[int | None] = mapped_column(ForeignKey("enterprises.id", ondelete="SET NULL"))
    chain_id: Mapped[str | None] = mapped_column(ForeignKey("chains.id", ondelete="SET NULL"))
    link_key: Mapped[str | None] = mapped_column(String(128))
    investment_wan: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(32), default="")  # e.g. 在建/拟建/竣工
    year: Mapped[int | None] = mapped_column(Integer)
    note: Mapped[str] = mapped_column(Text, default="")

    enterprise = relationship("Enterprise", lazy="joined")
