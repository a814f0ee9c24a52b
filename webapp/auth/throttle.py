"""Login throttling per client address and user name: a lock-out reveals no account and never locks out the owner.

Failures are counted for the pair (address, name as typed) whether or not the account exists, so a lock-out
answers exactly like any other failure; the account's owner logging in from another address is not affected.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from chains.db import utcnow
from webapp.auth.models import (
    LOCKOUT_MINUTES,
    MAX_ADDRESS,
    MAX_FAILED_LOGINS,
    MAX_THROTTLED_NAME,
    LoginThrottle,
)

WINDOW = timedelta(minutes=LOCKOUT_MINUTES)


def _aware(value: datetime) -> datetime:
    """SQLite returns naive datetimes; they were stored as UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _pair(address: str | None, username: str) -> tuple[str, str]:
    return (address or "-")[:MAX_ADDRESS], username[:MAX_THROTTLED_NAME]


def _row(session: Session, address: str, username: str) -> LoginThrottle | None:
    return session.scalars(
        select(LoginThrottle).where(LoginThrottle.address == address, LoginThrottle.username == username)
    ).first()


def is_locked(session: Session, address: str | None, username: str) -> bool:
    """Whether this address may not try this user name now."""
    row = _row(session, *_pair(address, username))
    return row is not None and row.locked_until is not None and _aware(row.locked_until) > utcnow()


def record_failure(session: Session, address: str | None, username: str) -> bool:
    """Count a failure; returns True when it starts a lock-out. The caller commits."""
    address, username = _pair(address, username)
    now = utcnow()
    row = _row(session, address, username)
    if row is None:
        row = LoginThrottle(address=address, username=username, failures=0, window_started=now)
        try:
            with session.begin_nested():
                session.add(row)
        except IntegrityError:  # another worker inserted the pair meanwhile
            row = _row(session, address, username)
            if row is None:
                return False
    if _aware(row.window_started) + WINDOW < now:
        row.failures, row.window_started = 0, now
    row.failures += 1
    if row.failures >= MAX_FAILED_LOGINS:
        row.failures, row.window_started, row.locked_until = 0, now, now + WINDOW
        return True
    _prune(session, now)
    return False


def clear(session: Session, address: str | None, username: str) -> None:
    """Forget the failures of this pair (after a successful login). The caller commits."""
    address, username = _pair(address, username)
    session.execute(delete(LoginThrottle).where(LoginThrottle.address == address, LoginThrottle.username == username))


def clear_user(session: Session, username: str) -> None:
    """Lift every lock-out of a user name (an admin reset the password or enabled the account)."""
    session.execute(delete(LoginThrottle).where(LoginThrottle.username == username[:MAX_THROTTLED_NAME]))


def _prune(session: Session, now: datetime) -> None:
    """Drop pairs whose window and lock-out are both over, so guessed names do not pile up."""
    session.execute(
        delete(LoginThrottle)
        .where(
            LoginThrottle.window_started < now - 2 * WINDOW,
            or_(LoginThrottle.locked_until.is_(None), LoginThrottle.locked_until < now),
        )
        .execution_options(synchronize_session=False)
    )
