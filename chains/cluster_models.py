"""Cluster models: clusters, their chains and yearly indicators, local roster and link assignments."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from chains.db import Base, utcnow

ROSTER_ROLES = ("龙头", "骨干", "配套")
ASSIGNMENT_MANUAL = "manual"
ASSIGNMENT_SUGGESTED = "suggested"


class Cluster(Base):
    __tablename__ = "clusters"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    province: Mapped[str] = mapped_column(String(32), default="")
    city: Mapped[str] = mapped_column(String(64), default="")
    district: Mapped[str] = mapped_column(String(64), default="")
    leading_industry: Mapped[str] = mapped_column(String(128), default="")
    cluster_type: Mapped[str] = mapped_column(String(64), default="")  # for the same-type count rules
    area_mu: Mapped[float | None] = mapped_column(Float)
    area_km2: Mapped[float | None] = mapped_column(Float)
    chain_leader_id: Mapped[int | None] = mapped_column(ForeignKey("enterprises.id", ondelete="SET NULL"))
    description: Mapped[str] = mapped_column(Text, default="")
    gap_thresholds: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # overrides of the default thresholds
    source_file: Mapped[str] = mapped_column(String(512), default="")
    data_note: Mapped[str] = mapped_column(String(255), default="")
    is_demo: Mapped[bool] = mapped_column(Boolean, default=False)

    chains: Mapped[list["ClusterChain"]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="ClusterChain.position"
    )
    indicators: Mapped[list["ClusterIndicator"]] = relationship(
        cascade="all, delete-orphan", order_by="ClusterIndicator.year"
    )
    roster: Mapped[list["RosterEntry"]] = relationship(cascade="all, delete-orphan")

    @property
    def chain_ids(self) -> list[str]:
        return [c.chain_id for c in self.chains]

    def set_chains(self, chain_ids: list[str]) -> None:
        """Use these chains, in this order; reviews of chains kept are kept."""
        kept = {c.chain_id: c for c in self.chains}
        self.chains = [kept.get(cid) or ClusterChain(chain_id=cid) for cid in dict.fromkeys(chain_ids)]
        for position, link in enumerate(self.chains):
            link.position = position

    def indicator(self, year: int) -> "ClusterIndicator | None":
        """The indicators of `year`, if recorded."""
        return next((i for i in self.indicators if i.year == year), None)

    def set_indicator(
        self, year: int, values: dict[str, float | None], source: str = ""
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Record the indicators of `year` (created when new); return the values before and after."""
        row = self.indicator(year)
        if row is None:
            row = ClusterIndicator(year=year)
            self.indicators.append(row)
        before = row.values()
        for name in INDICATOR_FIELDS:
            if name in values:
                setattr(row, name, values[name])
        row.source = source.strip()[:255] or row.source or ""
        return before, row.values()


class ClusterChain(Base):
    __tablename__ = "cluster_chains"

    cluster_id: Mapped[str] = mapped_column(ForeignKey("clusters.id", ondelete="CASCADE"), primary_key=True)
    chain_id: Mapped[str] = mapped_column(ForeignKey("chains.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    # Last review of the chain map for this cluster (staleness): when, by whom, the gaps' top candidates then.
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reviewed_by: Mapped[str] = mapped_column(String(64), default="")
    review_snapshot: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class ClusterIndicator(Base):
    """Yearly indicators, amounts in 万元."""

    __tablename__ = "cluster_indicators"
    __table_args__ = (UniqueConstraint("cluster_id", "year"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cluster_id: Mapped[str] = mapped_column(ForeignKey("clusters.id", ondelete="CASCADE"), index=True)
    year: Mapped[int] = mapped_column(Integer)
    output_value: Mapped[float | None] = mapped_column(Float)  # 总产值
    revenue: Mapped[float | None] = mapped_column(Float)  # 主营业务收入
    tax: Mapped[float | None] = mapped_column(Float)  # 税收
    fixed_investment: Mapped[float | None] = mapped_column(Float)  # 固定资产投资 (累计)
    leading_revenue: Mapped[float | None] = mapped_column(Float)  # 主导产业收入
    source: Mapped[str] = mapped_column(String(255), default="")

    def values(self) -> dict[str, float | None]:
        """The indicator values by field name."""
        return {name: getattr(self, name) for name in INDICATOR_FIELDS}


# Yearly indicators (the policy-rule inputs) with their Chinese labels, amounts in 万元.
INDICATOR_FIELDS = {
    "output_value": "总产值",
    "revenue": "主营业务收入",
    "tax": "税收",
    "fixed_investment": "固定资产投资（累计）",
    "leading_revenue": "主导产业收入",
}


class RosterEntry(Base):
    """A local firm of a cluster with its role."""

    __tablename__ = "roster_entries"
    __table_args__ = (UniqueConstraint("cluster_id", "enterprise_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cluster_id: Mapped[str] = mapped_column(ForeignKey("clusters.id", ondelete="CASCADE"), index=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(8), default="配套")  # 龙头/骨干/配套
    note: Mapped[str] = mapped_column(Text, default="")

    enterprise = relationship("Enterprise", lazy="joined")


class LinkAssignment(Base):
    """A local firm placed on a chain link; manual or suggested by the matcher, confirmed or not."""

    __tablename__ = "link_assignments"
    __table_args__ = (UniqueConstraint("cluster_id", "enterprise_id", "link_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cluster_id: Mapped[str] = mapped_column(ForeignKey("clusters.id", ondelete="CASCADE"), index=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id", ondelete="CASCADE"), index=True)
    chain_id: Mapped[str] = mapped_column(ForeignKey("chains.id", ondelete="CASCADE"))
    link_key: Mapped[str] = mapped_column(String(128), index=True)
    source: Mapped[str] = mapped_column(String(16), default=ASSIGNMENT_MANUAL)
    confirmed: Mapped[bool] = mapped_column(Boolean, default=True)
    confidence: Mapped[float | None] = mapped_column(Float)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    enterprise = relationship("Enterprise", lazy="joined")
