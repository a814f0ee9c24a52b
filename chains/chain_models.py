"""Chain map models (1张图谱): chains, immutable versions, links as a tree, supply edges."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from chains.db import Base, utcnow

STAGES = ("上游", "中游", "下游")


class Chain(Base):
    __tablename__ = "chains"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # slug from the YAML file
    name: Mapped[str] = mapped_column(String(128))
    sector: Mapped[str] = mapped_column(String(128), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    current_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("chain_versions.id", use_alter=True, ondelete="SET NULL")
    )

    versions: Mapped[list["ChainVersion"]] = relationship(
        back_populates="chain", foreign_keys="ChainVersion.chain_id", order_by="ChainVersion.version"
    )
    current_version: Mapped["ChainVersion | None"] = relationship(foreign_keys=[current_version_id], post_update=True)


class ChainVersion(Base):
    """One imported revision of a chain file; old versions are kept."""

    __tablename__ = "chain_versions"
    __table_args__ = (UniqueConstraint("chain_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    chain_id: Mapped[str] = mapped_column(ForeignKey("chains.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    declared_version: Mapped[str] = mapped_column(String(32), default="")  # `version:` in the file
    source_file: Mapped[str] = mapped_column(String(512), default="")
    checksum: Mapped[str] = mapped_column(String(64))  # sha256 of the normalised content
    # Chain-level fields as they were in this version's file, so any version exports faithfully.
    name: Mapped[str] = mapped_column(String(128), default="")
    sector: Mapped[str] = mapped_column(String(128), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(Text, default="")
    imported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Who wrote this version and why: "import" (file/API), "edit" (the browser editor), "upload", "restore".
    kind: Mapped[str] = mapped_column(String(16), default="import")
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    author: Mapped[str] = mapped_column(String(64), default="")  # username kept if the user goes; "cli" for commands
    reason: Mapped[str] = mapped_column(Text, default="")
    # Link keys removed / moved / added against the previous current version (chains.chainmap_diff.link_changes).
    changes: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    chain: Mapped[Chain] = relationship(back_populates="versions", foreign_keys=[chain_id])
    links: Mapped[list["ChainLink"]] = relationship(
        back_populates="version", cascade="all, delete-orphan", order_by="ChainLink.position"
    )
    edges: Mapped[list["SupplyEdge"]] = relationship(back_populates="version", cascade="all, delete-orphan")


class ChainLink(Base):
    """A link (环节) of one chain version; `key` is the stable id from the file, unique across chains."""

    __tablename__ = "chain_links"
    __table_args__ = (UniqueConstraint("version_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("chain_versions.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(128), index=True)
    parent_key: Mapped[str | None] = mapped_column(String(128))
    stage: Mapped[str] = mapped_column(String(8))  # 上游/中游/下游
    depth: Mapped[int] = mapped_column(Integer, default=1)  # 1 = top-level link
    position: Mapped[int] = mapped_column(Integer, default=0)  # pre-order position in the file
    name: Mapped[str] = mapped_column(String(128))
    description: Mapped[str] = mapped_column(Text, default="")
    keywords: Mapped[list[str]] = mapped_column(JSON, default=list)
    synonyms: Mapped[list[str]] = mapped_column(JSON, default=list)
    products: Mapped[list[str]] = mapped_column(JSON, default=list)
    industry_codes: Mapped[list[str]] = mapped_column(JSON, default=list)  # GB/T 4754-2017
    key_tech: Mapped[bool] = mapped_column(Boolean, default=False)  # 卡脖子
    key_tech_note: Mapped[str] = mapped_column(Text, default="")

    version: Mapped[ChainVersion] = relationship(back_populates="links")


class SupplyEdge(Base):
    """`from_key` supplies `to_key` within one chain version."""

    __tablename__ = "supply_edges"
    __table_args__ = (UniqueConstraint("version_id", "from_key", "to_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("chain_versions.id", ondelete="CASCADE"), index=True)
    from_key: Mapped[str] = mapped_column(String(128))
    to_key: Mapped[str] = mapped_column(String(128))
    note: Mapped[str] = mapped_column(String(255), default="")

    version: Mapped[ChainVersion] = relationship(back_populates="edges")
