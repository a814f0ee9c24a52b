"""Login and logout views with lock-out after repeated failures and a per-address rate limit."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import select

from webapp.auth import bp
from webapp.auth.models import LOCKOUT_MINUTES, MAX_FAILED_LOGINS, User
from webapp.extensions import db, limiter, login_manager

logger = logging.getLogger("chainmatch.auth")

login_manager.login_view = "auth.login"
login_manager.login_message = "请先登录。"
login_manager.login_message_category = "warning"


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    """The session's user, unless disabled or the password changed since the login (fingerprint mismatch)."""
    raw_id, _, fingerprint = user_id.partition(":")
    if not raw_id.isdigit():
        return None
    user = db.session.get(User, int(raw_id))
    if user is None or not user.is_active or fingerprint != user.session_fingerprint():
        return None
    return user


def _safe_next(target: str | None) -> str:
    if target and not urlsplit(target).netloc and target.startswith("/") and not target.startswith("//"):
        return target
    return url_for("main.index")


def _login_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("main.index"))
    error = None
    if request.method == "POST":
        username = request.form.get("username", "").strip()
        password = request.form.get("password", "")
        user = db.session.scalars(select(User).where(User.username == username)).first()
        now = datetime.now(timezone.utc)
        locked = user is not None and user.locked_until is not None and _aware(user.locked_until) > now
        if locked:
            error = f"账号因多次登录失败已被临时锁定，请 {LOCKOUT_MINUTES} 分钟后再试。"
            logger.warning("login refused for locked account %s", username)
        elif user is None or not user.active or not user.check_password(password):
            if user is None:
                _spend_a_hash(password)  # same work as for a real account: response time does not reveal names
            if user is not None:
                user.failed_logins += 1
                if user.failed_logins >= MAX_FAILED_LOGINS:
                    user.locked_until = now + timedelta(minutes=LOCKOUT_MINUTES)
                    user.failed_logins = 0
                    logger.warning("account %s locked after %d failures", username, MAX_FAILED_LOGINS)
                db.session.commit()
            error = "用户名或密码错误。"
            logger.info("failed login for %s", username)  # never the password
        else:
            user.failed_logins = 0
            user.locked_until = None
            db.session.commit()
            next_url = _safe_next(request.args.get("next"))
            session.clear()  # no state carried over from before the login (session fixation)
            session.permanent = True
            login_user(user)
            logger.info("login %s", username)
            return redirect(next_url)
    return render_template("auth/login.html", error=error), (200 if error is None else 401)


_DUMMY_HASH: list[str] = []


def _spend_a_hash(password: str) -> None:
    from webapp.auth.models import _hasher, generate_password

    if not _DUMMY_HASH:  # a hash of a random string nobody knows; it never belongs to an account
        _DUMMY_HASH.append(_hasher.hash(generate_password()))
    try:
        _hasher.verify(_DUMMY_HASH[0], password)
    except Exception:  # argon2 raises on mismatch; only the time spent matters here
        pass


def _aware(value: datetime) -> datetime:
    # SQLite returns naive datetimes; they were stored as UTC.
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    logger.info("logout %s", current_user.username)
    current_user.end_sessions()
    db.session.commit()
    logout_user()
    session.clear()
    flash("您已退出登录。", "info")
    return redirect(url_for("auth.login"))
