"""Enterprise registry models: firms, their tags, field-level change history, import jobs."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, DateTime, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from chains.db import Base, TimestampMixin, utcnow


def region_of(province: str, city: str) -> str:
    """省份 + 城市 as users read them: a municipality's province and city (北京市, 北京市) only once."""
    return f"{province}{city}" if city != province else province


class Enterprise(TimestampMixin, Base):
    __tablename__ = "enterprises"

    id: Mapped[int] = mapped_column(primary_key=True)
    credit_code: Mapped[str | None] = mapped_column(String(18), unique=True)  # 统一社会信用代码
    external_id: Mapped[str | None] = mapped_column(String(128), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    name_norm: Mapped[str] = mapped_column(String(255), index=True)
    former_names: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default="")  # normalised 登记状态
    status_raw: Mapped[str] = mapped_column(String(64), default="")
    founded_on: Mapped[date | None] = mapped_column(Date)
    capital_amount: Mapped[float | None] = mapped_column(Float)  # in 万 of capital_currency
    capital_currency: Mapped[str] = mapped_column(String(8), default="")
    capital_wan_cny: Mapped[float | None] = mapped_column(Float, index=True)  # for range filters
    province: Mapped[str] = mapped_column(String(32), default="", index=True)
    city: Mapped[str] = mapped_column(String(64), default="", index=True)
    district: Mapped[str] = mapped_column(String(64), default="")
    address: Mapped[str] = mapped_column(String(512), default="")
    # Contacts as a registry export gives them (企查查, 天眼查): what staff call on for a first contact.
    legal_representative: Mapped[str] = mapped_column(String(64), default="", server_default="")  # 法定代表人
    phone: Mapped[str] = mapped_column(String(128), default="", server_default="")
    email: Mapped[str] = mapped_column(String(255), default="", server_default="")
    website: Mapped[str] = mapped_column(String(255), default="", server_default="")
    industry_section: Mapped[str] = mapped_column(String(1), default="")  # 门类
    industry_division: Mapped[str] = mapped_column(String(2), default="")  # 大类
    industry_group: Mapped[str] = mapped_column(String(3), default="")  # 中类
    industry_class: Mapped[str] = mapped_column(String(4), default="")  # 小类
    industry_name: Mapped[str] = mapped_column(String(128), default="")
    business_scope: Mapped[str] = mapped_column(Text, default="")  # 经营范围
    main_products: Mapped[str] = mapped_column(Text, default="")
    employees: Mapped[int | None] = mapped_column(Integer)  # 参保人数
    revenue_wan: Mapped[float | None] = mapped_column(Float)
    country: Mapped[str] = mapped_column(String(64), default="中国")
    source_file: Mapped[str] = mapped_column(String(255), default="")
    as_of: Mapped[date | None] = mapped_column(Date)
    is_demo: Mapped[bool] = mapped_column(Boolean, default=False)
    is_synthetic: Mapped[bool] = mapped_column(Boolean, default=False)
    data_note: Mapped[str] = mapped_column(String(255), default="")
    # Parent company (集团母公司) where the registry records one; the lead register treats a group as one target.
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("enterprises.id", ondelete="SET NULL"), index=True)

    tags: Mapped[list["EnterpriseTag"]] = relationship(
        back_populates="enterprise", cascade="all, delete-orphan", lazy="selectin"
    )

    @property
    def tag_names(self) -> list[str]:
        return sorted(t.tag for t in self.tags)

    @property
    def region(self) -> str:
        return region_of(self.province, self.city)


class EnterpriseTag(Base):
    __tablename__ = "enterprise_tags"

    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(32), primary_key=True, index=True)
    enterprise: Mapped[Enterprise] = relationship(back_populates="tags")


class EnterpriseChange(Base):
    """One changed field of one enterprise, from one import or edit."""

    __tablename__ = "enterprise_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id", ondelete="CASCADE"), index=True)
    field: Mapped[str] = mapped_column(String(64))
    old_value: Mapped[str | None] = mapped_column(Text)
    new_value: Mapped[str | None] = mapped_column(Text)
    source_file: Mapped[str] = mapped_column(String(255), default="")
    import_job_id: Mapped[int | None] = mapped_column(ForeignKey("import_jobs.id", ondelete="SET NULL"))
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class EnterpriseDeletion(Base):
    """Tombstone of a deleted enterprise, so indexes can drop it incrementally."""

    __tablename__ = "enterprise_deletions"

    id: Mapped[int] = mapped_column(primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(Integer, index=True)
    deleted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ImportJob(Base):
    """A file import, run in the background; progress is polled by the UI."""

    __tablename__ = "import_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    filename: Mapped[str] = mapped_column(String(255))
    stored_path: Mapped[str] = mapped_column(String(1024), default="")
    status: Mapped[str] = mapped_column(String(16), default="queued")  # queued/running/done/failed
    total_rows: Mapped[int] = mapped_column(Integer, default=0)
    processed_rows: Mapped[int] = mapped_column(Integer, default=0)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    report_path: Mapped[str] = mapped_column(String(1024), default="")
    error: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


Index("ix_enterprises_region", Enterprise.province, Enterprise.city)
# The match index's watermark reads max(updated_at) on every candidates request.
Index("ix_enterprises_updated_at", Enterprise.updated_at)
