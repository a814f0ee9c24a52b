"""One way to change a password: every session of the user ends, API tokens are revoked, lock-outs are lifted."""

from __future__ import annotations

from sqlalchemy.orm import Session

from webapp.auth import throttle
from webapp.auth.models import User
from webapp.auth.tokens import revoke_user_tokens


def change_password(session: Session, user: User, password: str) -> int:
    """Set a new password (ValueError when too short); returns how many API tokens were revoked. The caller commits.

    The new hash changes the session fingerprint, so every login session of the user ends with it.
    """
    user.set_password(password)
    throttle.clear_user(session, user.username)
    return revoke_user_tokens(session, user.id)
