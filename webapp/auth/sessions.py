"""Absolute session lifetime: a login session ends SESSION_MAX_HOURS after the login, however active it is."""

from __future__ import annotations

import logging
import time

from flask import Flask, current_app, flash, session
from flask.sessions import SessionMixin
from flask_login import logout_user

LOGIN_AT_KEY = "_login_at"  # epoch seconds of the login, in the signed session cookie
SECONDS_PER_HOUR = 3600

logger = logging.getLogger("chainmatch.auth")


def mark_login(sess: SessionMixin) -> None:
    """Remember when this session logged in."""
    sess[LOGIN_AT_KEY] = int(time.time())


def session_too_old(sess: SessionMixin, max_hours: float, now: float | None = None) -> bool:
    """Whether a logged-in session is past its absolute lifetime (a session without a login time is)."""
    login_at = sess.get(LOGIN_AT_KEY)
    now = time.time() if now is None else now
    return not isinstance(login_at, int) or now - login_at > max_hours * SECONDS_PER_HOUR


def init_app(app: Flask) -> None:
    """End sessions older than the absolute lifetime before any view runs."""

    @app.before_request
    def _end_old_sessions() -> None:
        if session.get("_user_id") is None:
            return
        if session_too_old(session, float(current_app.config["SESSION_MAX_HOURS"])):
            logger.info("session ended: older than %s hours", current_app.config["SESSION_MAX_HOURS"])
            logout_user()
            session.clear()
            flash("登录已超过最长有效期，请重新登录。", "warning")
