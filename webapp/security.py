"""Security settings applied to every app: cookie flags, session lifetime, and response headers.

Headers: CSP without inline scripts, no framing, no sniffing. Cookies: HttpOnly, SameSite=Lax, Secure when
CHAINMATCH_SECURE_COOKIES is set; the remember-me cookie is never issued (login_user is called without
`remember`), but carries the same flags should it ever be. Sessions are permanent with an inactivity timeout
of CHAINMATCH_SESSION_MINUTES, refreshed on every request.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import Flask, session

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)
HSTS_SECONDS = 365 * 24 * 3600  # sent only when cookies are Secure, i.e. the site is served over HTTPS
SESSION_PROTECTION = "strong"  # Flask-Login: a session used from another address/browser is dropped

logger = logging.getLogger("chainmatch.auth")


def apply_cookie_settings(app: Flask) -> None:
    """Cookie flags and session lifetime from the app's options."""
    secure = bool(app.config.get("SESSION_COOKIE_SECURE", False))
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=secure,
        SESSION_REFRESH_EACH_REQUEST=True,
        PERMANENT_SESSION_LIFETIME=timedelta(minutes=int(app.config["SESSION_MINUTES"])),
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SECURE=secure,
        REMEMBER_COOKIE_DURATION=timedelta(minutes=int(app.config["SESSION_MINUTES"])),
        REMEMBER_COOKIE_REFRESH_EACH_REQUEST=False,
    )


def _enforce_strong_protection_for_permanent_sessions(app: Flask) -> None:
    """Flask-Login only marks a *permanent* session non-fresh when its address/browser identifier changes, even
    in "strong" mode; our sessions are permanent (for the inactivity timeout), so drop the login here instead."""
    from flask_login.config import SESSION_KEYS
    from flask_login.signals import session_protected

    def _drop_login(sender: Flask, **extra) -> None:
        if session.permanent and session.get("_user_id") is not None:
            logger.warning("session dropped: it was used from another address or browser")
            for key in SESSION_KEYS:
                session.pop(key, None)

    session_protected.connect(_drop_login, app, weak=False)


def init_app(app: Flask) -> None:
    from webapp.auth import sessions
    from webapp.extensions import login_manager

    apply_cookie_settings(app)
    sessions.init_app(app)
    if app.debug:
        logger.warning("debug mode is on: tracebacks are shown in the browser; never use it in production")
    login_manager.session_protection = SESSION_PROTECTION
    _enforce_strong_protection_for_permanent_sessions(app)

    @app.after_request
    def _headers(response):
        from flask import request
        from flask_login import current_user

        response.headers.setdefault("Content-Security-Policy", CSP)
        if app.config.get("SESSION_COOKIE_SECURE"):
            response.headers.setdefault("Strict-Transport-Security", f"max-age={HSTS_SECONDS}")
        if request.endpoint != "static" and current_user.is_authenticated:
            # Pages and exports of a logged-in user hold tenant data: keep them out of shared caches and history.
            response.headers.setdefault("Cache-Control", "no-store")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response
