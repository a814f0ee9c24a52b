"""Versioned JSON API (/api/v1): token authentication, JSON errors, rate limits, OpenAPI document and docs page.

Blueprint `api` (CSRF-exempt: state-changing calls must authenticate with a Bearer token, never the session
cookie). The token management page for logged-in users lives at /api/tokens (blueprint `api_tokens`, CSRF-protected).
"""
from __future__ import annotations

from flask import Blueprint, current_app, g, request
from flask_login import current_user

from webapp.extensions import csrf, db, limiter

bp = Blueprint("api", __name__, url_prefix="/api/v1", template_folder="templates")
csrf.exempt(bp)

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
DEFAULT_RATE_LIMIT = "300 per minute"


def _rate_limit() -> str:
    return current_app.config.get("API_RATE_LIMIT") or DEFAULT_RATE_LIMIT


def _rate_key() -> str:
    """Per token (by its public prefix) when one is sent, else per client address."""
    from flask_limiter.util import get_remote_address

    from webapp.api.tokens import TOKEN_PREFIX

    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        parts = header[7:].strip().split("_", 2)
        if len(parts) == 3 and parts[0] == TOKEN_PREFIX:
            return f"api-token:{parts[1]}"
    return f"api-addr:{get_remote_address()}"


limiter.limit(_rate_limit, key_func=_rate_key)(bp)


@bp.before_request
def _authenticate():
    """Bearer token → the request's user (no session is touched); cookie sessions may only read."""
    from webapp.api.errors import ApiError
    from webapp.api.tokens import authenticate

    g.api_token = None
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise ApiError(401, "Authorization 头格式应为：Bearer <令牌>。")
        token = authenticate(db.session, value.strip())
        if token is None:
            raise ApiError(401, "API 令牌无效、已撤销，或其账号已停用。")
        db.session.commit()  # last_used_at
        g.api_token = token
        g._login_user = token.user  # Flask-Login's per-request user; nothing is written to the session
        return None
    if request.method not in SAFE_METHODS:
        if current_user.is_authenticated:
            raise ApiError(401, "API 写操作必须使用 API 令牌认证（Authorization: Bearer <令牌>），不接受浏览器会话。")
    return None


@bp.record_once
def _install(state) -> None:
    from webapp.api import errors, tokens_views

    errors.install(state.app)
    state.app.register_blueprint(tokens_views.tokens_bp)


from webapp.api import (  # noqa: E402,F401  (routes)
    views_chains,
    views_clusters,
    views_enterprises,
    views_leads,
    views_matching,
    views_projects,
    views_register,
    views_requests,
    spec,
)
