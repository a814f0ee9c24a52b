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


def _verified_token():
    """The request's Bearer token once checked (memoised per request), or None when absent or invalid."""
    from webapp.auth.tokens import authenticate

    if not g.get("api_token_checked"):
        g.api_token_checked = True
        g.api_token = None
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            g.api_token = authenticate(db.session, value.strip())
            if g.api_token is not None:
                db.session.commit()  # last_used_at
    return g.api_token


def _rate_key() -> str:
    """Per verified token, else per client address: unchecked prefixes neither escape nor spend a quota."""
    from flask_limiter.util import get_remote_address

    token = _verified_token()
    if token is not None:
        return f"api-token:{token.id}"
    return f"api-addr:{get_remote_address()}"


limiter.limit(_rate_limit, key_func=_rate_key)(bp)


@bp.before_request
def _limit_json_body():
    """JSON bodies get their own small limit, checked before anything parses them (uploads keep theirs)."""
    from webapp.api.errors import ApiError

    limit = int(current_app.config["API_MAX_BODY_KB"]) * 1024
    request.max_content_length = limit  # also bounds bodies sent without a Content-Length
    if (request.content_length or 0) > limit:
        raise ApiError(413, f"请求内容超过了 API 允许的大小（{limit // 1024} KB）。", {"max_bytes": limit})


@bp.before_request
def _authenticate():
    """Bearer token → the request's user (no session is touched); cookie sessions may only read."""
    from webapp.api.errors import ApiError

    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise ApiError(401, "Authorization 头格式应为：Bearer <令牌>。")
        token = _verified_token()
        if token is None:
            raise ApiError(401, "API 令牌无效、已撤销，或其账号已停用。")
        g._login_user = token.user  # Flask-Login's per-request user; nothing is written to the session
        return None
    g.api_token = None
    if request.method not in SAFE_METHODS:
        if current_user.is_authenticated:
            raise ApiError(401, "API 写操作必须使用 API 令牌认证（Authorization: Bearer <令牌>），不接受浏览器会话。")
    return None


@bp.record_once
def _install(state) -> None:
    from webapp.api import errors, tokens_views

    errors.install(state.app)
    state.app.register_blueprint(tokens_views.tokens_bp)


# Not sorted: the routes in the order of the API document.
# isort: off
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
# isort: on
