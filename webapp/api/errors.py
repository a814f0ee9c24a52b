"""Consistent JSON error bodies `{"error": {"code", "message", "details"}}` (Chinese messages) under /api/."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException, default_exceptions

from webapp.extensions import db

logger = logging.getLogger("chainmatch.api")

API_PATH = "/api/"
UI_PATHS = ("/api/tokens",)  # browser pages under /api/ keep the HTML error pages

ERRORS: dict[int, tuple[str, str]] = {
    400: ("bad_request", "请求无效：内容不完整或格式不正确。"),
    401: ("unauthorized", "未认证：请在 Authorization 头中提供有效的 API 令牌（Bearer）。"),
    403: ("forbidden", "无权访问：您的账号没有执行此操作的权限。"),
    404: ("not_found", "资源不存在，或已被删除。"),
    405: ("method_not_allowed", "此地址不支持该请求方式。"),
    409: ("conflict", "请求与现有数据冲突。"),
    413: ("payload_too_large", "请求内容超过了允许的大小。"),
    415: ("unsupported_media_type", "请求内容类型不受支持，请发送 application/json。"),
    422: ("validation_error", "请求数据未通过校验。"),
    429: ("rate_limited", "请求过于频繁，请稍后再试。"),
    500: ("internal_error", "服务器内部错误，已记录日志。请稍后重试或联系管理员。"),
    503: ("service_unavailable", "数据库暂时不可用，请稍后重试。"),
}
HANDLED_CODES = (400, 401, 403, 404, 405, 409, 413, 415, 422, 429, 500)


class ApiError(Exception):
    """Raised by API views; rendered as the JSON error body with `status`."""

    def __init__(self, status: int, message: str | None = None, details: Any = None, code: str | None = None):
        default_code, default_message = ERRORS.get(status, ERRORS[500])
        self.status = status
        self.code = code or default_code
        self.message = message or default_message
        self.details = details if details is not None else {}
        super().__init__(self.message)


def error_response(status: int, message: str | None = None, details: Any = None, code: str | None = None):
    err = ApiError(status, message, details, code)
    response = jsonify({"error": {"code": err.code, "message": err.message, "details": err.details}})
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="chainmatch"'
    return response


def is_api_request() -> bool:
    path = request.path
    return path.startswith(API_PATH) and not path.startswith(UI_PATHS)


def install(app: Flask) -> None:
    """Wrap the app's HTTP error handlers: JSON under /api/, the previous (HTML) handler elsewhere."""

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        if exc.status >= 500:
            db.session.rollback()
        return error_response(exc.status, exc.message, exc.details, exc.code)

    for code in HANDLED_CODES:
        exc_class = default_exceptions[code]
        previous = app.error_handler_spec[None][code].get(exc_class)
        app.register_error_handler(code, _make_handler(code, previous))


def _make_handler(code: int, previous):
    def handler(exc):
        if not is_api_request():
            if previous is not None:
                return previous(exc)
            return exc
        if code >= 500:
            db.session.rollback()
            logger.error("API internal error on %s: %s", request.path, getattr(exc, "original_exception", exc))
            return error_response(500)
        details: Any = {}
        message = None
        if code == 405 and isinstance(exc, HTTPException):
            allowed = getattr(exc, "valid_methods", None)
            if allowed:
                details = {"allowed_methods": sorted(allowed)}
        if code == 429:
            limit = getattr(exc, "limit", None)
            if limit is not None:
                details = {"limit": str(getattr(limit, "limit", limit))}
        return error_response(code, message, details)

    return handler
