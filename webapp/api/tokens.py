"""Create, authenticate, list and revoke API tokens (used by the API, the tokens page and the CLI)."""
from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

from chains.db import utcnow
from webapp.api.models import ApiToken

TOKEN_PREFIX = "cm"
PREFIX_BYTES = 6  # 12 hex characters: the public part that finds the row
SECRET_BYTES = 32
MAX_NAME = 64
LAST_USED_RESOLUTION = timedelta(minutes=1)  # avoid a write on every request


class TokenError(ValueError):
    """A rejected token operation; the message is for users (Chinese)."""


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_token(session: Session, user_id: int, name: str = "") -> tuple[ApiToken, str]:
    """A new token for the user; returns (row, plaintext). The plaintext is never stored. The caller commits."""
    name = (name or "").strip()
    if len(name) > MAX_NAME:
        raise TokenError(f"令牌名称不能超过 {MAX_NAME} 个字符")
    prefix = secrets.token_hex(PREFIX_BYTES)
    secret = secrets.token_urlsafe(SECRET_BYTES)
    row = ApiToken(user_id=user_id, name=name, prefix=prefix, secret_hash=_hash(secret))
    session.add(row)
    session.flush()
    return row, f"{TOKEN_PREFIX}_{prefix}_{secret}"


def authenticate(session: Session, plaintext: str) -> ApiToken | None:
    """The active token whose owner is active, or None; updates last_used_at (the caller commits)."""
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
    last = row.last_used_at
    if last is not None and last.tzinfo is None:
        last = last.replace(tzinfo=timezone.utc)
    if last is None or now - last > LAST_USED_RESOLUTION:
        row.last_used_at = now
    return row


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
