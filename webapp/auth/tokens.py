"""Create, authenticate, list and revoke API tokens (used by the API, the tokens page and the CLI)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

from chains.db import utcnow
from webapp.auth.models import ApiToken

TOKEN_PREFIX = "cm"
PREFIX_BYTES = 6  # 12 hex characters: the public part that finds the row
SECRET_BYTES = 32
MAX_NAME = 64
LAST_USED_RESOLUTION = timedelta(minutes=1)  # avoid a write on every request
DEFAULT_TOKEN_DAYS = 90  # CHAINMATCH_API_TOKEN_DAYS


class TokenError(ValueError):
    """A rejected token operation; the message is for users (Chinese)."""


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _configured_days() -> int:
    from flask import current_app, has_app_context

    return (
        int(current_app.config.get("API_TOKEN_DAYS", DEFAULT_TOKEN_DAYS)) if has_app_context() else DEFAULT_TOKEN_DAYS
    )


def create_token(session: Session, user_id: int, name: str = "", days: int | None = None) -> tuple[ApiToken, str]:
    """A new token for the user, valid `days` (default CHAINMATCH_API_TOKEN_DAYS; 0: no expiry); returns (row,
    plaintext). The plaintext is never stored. The caller commits."""
    name = (name or "").strip()
    if len(name) > MAX_NAME:
        raise TokenError(f"令牌名称不能超过 {MAX_NAME} 个字符")
    days = _configured_days() if days is None else days
    prefix = secrets.token_hex(PREFIX_BYTES)
    secret = secrets.token_urlsafe(SECRET_BYTES)
    expires_at = utcnow() + timedelta(days=days) if days > 0 else None
    row = ApiToken(user_id=user_id, name=name, prefix=prefix, secret_hash=_hash(secret), expires_at=expires_at)
    session.add(row)
    session.flush()
    return row, f"{TOKEN_PREFIX}_{prefix}_{secret}"


def authenticate(session: Session, plaintext: str) -> ApiToken | None:
    """The active, unexpired token whose owner is active, or None; updates last_used_at (the caller commits)."""
    parts = (plaintext or "").strip().split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX or not parts[1] or not parts[2]:
        return None
    row = session.scalars(select(ApiToken).where(ApiToken.prefix == parts[1])).first()
    if row is None or row.revoked_at is not None:
        return None
    if not hmac.compare_digest(row.secret_hash, _hash(parts[2])):
        return None
    if row.user is None or not row.user.is_active:
        return None
    now = utcnow()
    if row.expires_at is not None and _aware(row.expires_at) <= now:
        return None
    last = _aware(row.last_used_at) if row.last_used_at is not None else None
    if last is None or now - last > LAST_USED_RESOLUTION:
        row.last_used_at = now
    return row


def _aware(value: datetime) -> datetime:
    """SQLite returns naive datetimes; they were stored as UTC."""
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def revoke_user_tokens(session: Session, user_id: int) -> int:
    """Revoke every active token of a user (their password changed); returns how many. The caller commits."""
    rows = session.scalars(select(ApiToken).where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))).all()
    now = utcnow()
    for row in rows:
        row.revoked_at = now
    return len(rows)


def user_tokens(session: Session, user_id: int | None = None) -> list[ApiToken]:
    """Tokens of one user (or of everybody), newest first."""
    query = select(ApiToken).order_by(ApiToken.id.desc())
    if user_id is not None:
        query = query.where(ApiToken.user_id == user_id)
    return list(session.scalars(query))


def revoke_token(session: Session, token_id: int, user_id: int | None = None) -> ApiToken:
    """Revoke a token (only the owner's when `user_id` is given); idempotent. The caller commits."""
    row = session.get(ApiToken, token_id)
    if row is None or (user_id is not None and row.user_id != user_id):
        raise TokenError("令牌不存在")
    if row.revoked_at is None:
        row.revoked_at = datetime.now(timezone.utc)
    return row
