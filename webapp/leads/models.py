"""招商线索 (leads): a target firm tracked from first contact to landing, with a full change history."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, DateTime, Float, ForeignKey, String, Text
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column, relationship

from chains.db import Base, TimestampMixin, utcnow

STAGE_CANDIDATE = "候选"
STAGE_CONTACTED = "已接洽"
STAGE_VISIT = "实地考察"
STAGE_NEGOTIATION = "洽谈"
STAGE_SIGNED = "签约"
STAGE_LANDED = "落地"
STAGE_ABANDONED = "放弃"
# Pipeline order; 放弃 ends a lead at any point and is shown last.
STAGES = (
    STAGE_CANDIDATE,
    STAGE_CONTACTED,
    STAGE_VISIT,
    STAGE_NEGOTIATION,
    STAGE_SIGNED,
    STAGE_LANDED,
    STAGE_ABANDONED,
)
PIPELINE_STAGES = STAGES[:-1]
CLOSED_STAGES = (STAGE_LANDED, STAGE_ABANDONED)  # a next step on these is never overdue

# 首报首谈: the first open lead on a firm (or its group) across clusters holds the claim; later ones are second claims.
CLAIM_FIRST = "first"
CLAIM_SECOND = "second"
CLAIM_LABELS = {CLAIM_FIRST: "首报", CLAIM_SECOND: "第二报"}

COORD_PENDING = "pending"
COORD_APPROVED = "approved"  # the claim moves to the requesting lead
COORD_REJECTED = "rejected"  # the holder keeps the claim
COORD_LABELS = {
    COORD_PENDING: "待裁定",
    COORD_APPROVED: "已批准（改由申请方首谈）",
    COORD_REJECTED: "已驳回（维持原首报）",
}

FEEDBACK_RELEVANT = "relevant"
FEEDBACK_NOT_RELEVANT = "not_relevant"


class Lead(TimestampMixin, Base):
    __tablename__ = "leads"

    id: Mapped[int] = mapped_column(primary_key=True)
    cluster_id: Mapped[str] = mapped_column(ForeignKey("clusters.id", ondelete="CASCADE"), index=True)
    chain_id: Mapped[str | None] = mapped_column(ForeignKey("chains.id", ondelete="SET NULL"))
    link_key: Mapped[str | None] = mapped_column(String(128))
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id", ondelete="CASCADE"), index=True)
    stage: Mapped[str] = mapped_column(String(8), default=STAGE_CANDIDATE, index=True)
    abandon_reason: Mapped[str] = mapped_column(Text, default="")
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    next_step: Mapped[str] = mapped_column(Text, default="")
    next_step_date: Mapped[date | None] = mapped_column(Date)
    notes: Mapped[str] = mapped_column(Text, default="")
    feedback: Mapped[str] = mapped_column(String(16), default="")  # relevant / not_relevant / ""
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    claim: Mapped[str] = mapped_column(String(8), default=CLAIM_FIRST, server_default=CLAIM_FIRST)
    claim_of_id: Mapped[int | None] = mapped_column(ForeignKey("leads.id", ondelete="SET NULL"), index=True)
    claim_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    planned_investment_wan: Mapped[float | None] = mapped_column(Float)  # 计划投资额（万元）
    assigned_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    enterprise = relationship("Enterprise", lazy="joined")
    cluster = relationship("Cluster", lazy="joined")
    owner = relationship("User", foreign_keys=[owner_id], lazy="joined")
    claim_of: Mapped["Lead | None"] = relationship(remote_side="Lead.id", foreign_keys=[claim_of_id])
    project_rows: Mapped[list["LeadProject"]] = relationship(back_populates="lead", cascade="all, delete-orphan")
    events: Mapped[list["LeadEvent"]] = relationship(
        back_populates="lead", cascade="all, delete-orphan", order_by="LeadEvent.id"
    )

    @hybrid_property
    def holds_target(self) -> bool:
        """Not abandoned: the lead that a new one on the same firm, cluster and link would repeat (in SQL too)."""
        return self.stage != STAGE_ABANDONED

    @property
    def is_open(self) -> bool:
        """Still being worked: neither landed nor abandoned."""
        return self.stage not in CLOSED_STAGES

    @property
    def project(self) -> "LeadProject | None":
        """The project facts recorded from 签约, if any."""
        return self.project_rows[0] if self.project_rows else None

    @property
    def claim_holder(self) -> "Lead | None":
        """The lead holding the first claim when this one is a second claim."""
        return self.claim_of if self.claim == CLAIM_SECOND else None

    @property
    def claim_label(self) -> str:
        return CLAIM_LABELS.get(self.claim, self.claim)


class LeadEvent(Base):
    """One change of one field of a lead (creation is recorded as field `created`)."""

    __tablename__ = "lead_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    field: Mapped[str] = mapped_column(String(32))
    old: Mapped[str | None] = mapped_column(Text)
    new: Mapped[str | None] = mapped_column(Text)

    lead: Mapped[Lead] = relationship(back_populates="events")
    user = relationship("User", lazy="joined")


class CoordinationRequest(TimestampMixin, Base):
    """协调申请: a second claim asks an administrator to hand it the first claim; the decision is recorded."""

    __tablename__ = "coordination_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"), index=True)
    holder_lead_id: Mapped[int | None] = mapped_column(ForeignKey("leads.id", ondelete="SET NULL"), index=True)
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reason: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default=COORD_PENDING, index=True)
    decision_note: Mapped[str] = mapped_column(Text, default="")
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    lead: Mapped[Lead] = relationship(foreign_keys=[lead_id], lazy="joined")
    holder_lead: Mapped[Lead | None] = relationship(foreign_keys=[holder_lead_id], lazy="joined")
    requested_by = relationship("User", foreign_keys=[requested_by_id], lazy="joined")
    decided_by = relationship("User", foreign_keys=[decided_by_id], lazy="joined")

    @property
    def status_label(self) -> str:
        return COORD_LABELS.get(self.status, self.status)


EIA_CLASSES = ("报告书", "报告表", "登记表")  # 环评类别


class LeadProject(TimestampMixin, Base):
    """The project a lead carries from 签约: size, land, expected yields, energy, 环评, and its milestones."""

    __tablename__ = "lead_projects"

    id: Mapped[int] = mapped_column(primary_key=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"), unique=True)
    investment_wan: Mapped[float | None] = mapped_column(Float)  # 投资额（万元）
    land_mu: Mapped[float | None] = mapped_column(Float)  # 用地（亩）
    tax_per_mu_wan: Mapped[float | None] = mapped_column(Float)  # 预计亩均税收（万元/亩·年）
    intensity_wan_per_mu: Mapped[float | None] = mapped_column(Float)  # 预计投资强度（万元/亩）
    energy_tce: Mapped[float | None] = mapped_column(Float)  # 年综合能耗（吨标准煤）
    eia_class: Mapped[str] = mapped_column(String(8), default="")  # 环评类别
    signed_on: Mapped[date | None] = mapped_column(Date)  # 签约日期
    started_on: Mapped[date | None] = mapped_column(Date)  # 开工日期
    producing_on: Mapped[date | None] = mapped_column(Date)  # 投产日期

    lead: Mapped[Lead] = relationship(back_populates="project_rows")
    funds: Mapped[list["ProjectFunding"]] = relationship(
        back_populates="project", cascade="all, delete-orphan", order_by="ProjectFunding.received_on"
    )

    @property
    def funds_wan(self) -> float:
        """到位资金 so far (万元)."""
        return sum(f.amount_wan for f in self.funds)


class ProjectFunding(Base):
    """One 到位资金 entry of a project."""

    __tablename__ = "project_funds"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("lead_projects.id", ondelete="CASCADE"), index=True)
    amount_wan: Mapped[float] = mapped_column(Float)
    received_on: Mapped[date] = mapped_column(Date)
    note: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    project: Mapped[LeadProject] = relationship(back_populates="funds")
