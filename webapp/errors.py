"""Error pages in Chinese; the 500 handler rolls the session back and never shows a trace."""

from __future__ import annotations

import logging

from flask import Flask, g, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy import text
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from webapp.extensions import db

logger = logging.getLogger("chainmatch.errors")

MESSAGES = {
    400: ("请求无效", "请求的内容不完整或格式不正确。"),
    403: ("无权访问", "您的账号没有访问此页面或执行此操作的权限。"),
    404: ("页面不存在", "您访问的页面或数据不存在，或已被删除。"),
    405: ("方法不允许", "此地址不支持该请求方式。"),
    413: ("文件过大", "上传的文件超过了允许的大小。"),
    429: ("请求过于频繁", "操作过于频繁，请稍后再试。"),
    500: ("服务器内部错误", "系统出现错误，已记录日志。请稍后重试或联系管理员。"),
    503: ("服务暂时不可用", "数据库暂时不可用，请稍后重试。"),
}
RETRY_AFTER_SECONDS = 5  # told to clients while the database is unreachable


def render_error(code: int, detail: str | None = None):
    title, message = MESSAGES.get(code, MESSAGES[500])
    template = "errors/fragment.html" if request.headers.get("HX-Request") else "errors/page.html"
    return render_template(template, code=code, title=title, message=detail or message), code


def _database_reachable() -> bool:
    """Whether a fresh connection can run a trivial query (fails at once while the server is down)."""
    try:
        with db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError:
        return False
    return True


def init_app(app: Flask) -> None:
    for code in (400, 403, 404, 405, 413, 429):
        app.register_error_handler(code, lambda e, code=code: render_error(code))

    @app.errorhandler(CSRFError)
    def _csrf(e):
        logger.warning("CSRF rejected: %s", e.description)
        return render_error(400, "表单已过期或缺少安全令牌（CSRF），请刷新页面后重试。")

    @app.errorhandler(OperationalError)
    def _database_unavailable(e: OperationalError):
        """The database cannot be reached (e.g. restarting): 503 with a Chinese message, never the error text.
        Any other operational error (a bad query, a lock) is an internal error as before."""
        try:
            db.session.rollback()
        except SQLAlchemyError:
            db.session.invalidate()  # the connection is gone; the pool replaces it once the server is back
        if _database_reachable():
            raise e  # not an outage: the usual internal-error handling (500 page or API body)
        logger.error("database unavailable on %s: %s", request.path, type(e.orig or e).__name__)
        from webapp.api.errors import error_response, is_api_request
        from webapp.extensions import login_manager

        g._login_user = login_manager.anonymous_user()  # the page must not load the user from the database again
        if is_api_request():
            response = error_response(503)
        else:
            response = render_error(503)
        response = app.make_response(response)
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response

    @app.errorhandler(500)
    def _internal(e):
        db.session.rollback()
        logger.error("internal error on %s: %s", request.path, getattr(e, "original_exception", e))
        return render_error(500)
