"""Accounts, roles and API tokens."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask_login import UserMixin
from sqlalchemy import Boolean, Column, DateTime, ForeignKey, Integer, String, Table, UniqueConstraint, select
from sqlalchemy.orm import Mapped, mapped_column, object_session, relationship

from chains.cluster_models import Cluster
from chains.db import Base, TimestampMixin, utcnow

ROLE_ADMIN = "admin"
ROLE_STAFF = "staff"  # 招商人员
ROLE_MANAGER = "manager"  # 集聚区管理者
ROLE_FIRM = "firm"  # 链主企业
# The government side (every role but 链主企业): the roles of the cluster, chain map, candidate and lead pages.
STAFF_ROLES = (ROLE_ADMIN, ROLE_STAFF, ROLE_MANAGER)
ROLES = {
    ROLE_ADMIN: "管理员",
    ROLE_STAFF: "招商人员",
    ROLE_MANAGER: "集聚区管理者",
    ROLE_FIRM: "链主企业",
}
MIN_PASSWORD_LENGTH = 10
MAX_FAILED_LOGINS = 5  # failures from one address for one user name before that pair is locked out
LOCKOUT_MINUTES = 15  # length of the lock-out, and of the window in which failures are counted
MAX_THROTTLED_NAME = 64  # user names are kept (truncated) as typed, existing or not
MAX_ADDRESS = 64  # an IPv6 address with zone fits
GENERATED_PASSWORD_BYTES = 12  # secrets.token_urlsafe(12) → 16 characters
SESSION_FINGERPRINT_CHARS = 16

_hasher = PasswordHasher()

user_clusters = Table(
    "user_clusters",
    Base.metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("cluster_id", String(64), ForeignKey("clusters.id", ondelete="CASCADE"), primary_key=True),
)


class User(UserMixin, TimestampMixin, Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(128), default="")
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # A chain-leader firm account acts for one enterprise.
    enterprise_id: Mapped[int | None] = mapped_column(ForeignKey("enterprises.id", ondelete="SET NULL"))
    # Bumped at logout: cookie sessions are client-side, so this is what makes a copied cookie useless afterwards.
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    clusters = relationship("Cluster", secondary=user_clusters, lazy="selectin")

    def set_password(self, password: str) -> None:
        if len(password) < MIN_PASSWORD_LENGTH:
            raise ValueError(f"密码至少需要 {MIN_PASSWORD_LENGTH} 个字符")
        self.password_hash = _hasher.hash(password)

    def check_password(self, password: str) -> bool:
        try:
            return _hasher.verify(self.password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def session_fingerprint(self) -> str:
        """Changes when the password changes or the user logs out, ending every existing login session."""
        material = f"{self.password_hash}|{self.session_epoch or 0}".encode()
        return hashlib.sha256(material).hexdigest()[:SESSION_FINGERPRINT_CHARS]

    def end_sessions(self) -> None:
        """Invalidate every login session of this user (the caller commits)."""
        self.session_epoch = (self.session_epoch or 0) + 1

    def get_id(self) -> str:  # Flask-Login: what the session cookie stores
        return f"{self.id}:{self.session_fingerprint()}"

    @property
    def is_active(self) -> bool:  # Flask-Login
        return bool(self.active)

    @property
    def role_label(self) -> str:
        return ROLES.get(self.role, self.role)

    def cluster_ids(self) -> set[str]:
        return {c.id for c in self.clusters}

    def working_clusters(self) -> list[Cluster]:
        """The clusters the user works for (all for administrators), by name."""
        if self.role == ROLE_ADMIN:
            return list(object_session(self).scalars(select(Cluster).order_by(Cluster.name)))
        return sorted(self.clusters, key=lambda c: c.name)

    def can_access_cluster(self, cluster_id: str) -> bool:
        """Admins see every cluster; staff and managers the clusters they are assigned to."""
        if self.role == ROLE_ADMIN:
            return True
        if self.role in (ROLE_STAFF, ROLE_MANAGER):
            return cluster_id in self.cluster_ids()
        return False


class LoginThrottle(Base):
    """Failed logins of one user name from one client address: the lock-out never reaches other addresses."""

    __tablename__ = "login_throttles"
    __table_args__ = (UniqueConstraint("address", "username", name="uq_login_throttles_address_username"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    address: Mapped[str] = mapped_column(String(MAX_ADDRESS))
    username: Mapped[str] = mapped_column(String(MAX_THROTTLED_NAME), index=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_started: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


MAX_USERNAME = 64


def username_problem(username: str) -> str | None:
    """Why a user name cannot be used (Chinese), or None: no spaces or control characters (they forge log lines)."""
    import unicodedata

    if not username or len(username) > MAX_USERNAME:
        return f"用户名须为 1–{MAX_USERNAME} 个字符。"
    if any(ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in username):
        return "用户名不能包含空白或控制字符。"
    return None


def generate_password() -> str:
    """A random password shown once to whoever creates or resets an account (never stored in clear)."""
    import secrets

    return secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)


class ApiToken(Base):
    """`cm_<prefix>_<secret>`: the prefix finds the row, sha256(secret) proves it."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64), default="")
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # None: never (opt-in, CLI only)

    user = relationship("User", lazy="joined")

    @property
    def expired(self) -> bool:
        """Past its expiry date."""
        if self.expires_at is None:
            return False
        expires = self.expires_at if self.expires_at.tzinfo else self.expires_at.replace(tzinfo=UTC)
        return expires <= utcnow()

    @property
    def active(self) -> bool:
        """Neither revoked nor expired."""
        return self.revoked_at is None and not self.expired
