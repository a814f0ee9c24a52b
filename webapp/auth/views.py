"""Login and logout views with lock-out after repeated failures and a per-address rate limit."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import select

from webapp.auth import bp, throttle
from webapp.auth.models import LOCKOUT_MINUTES, MAX_FAILED_LOGINS, User
from webapp.auth.sessions import mark_login
from webapp.extensions import db, limiter, login_manager
from webapp.web.integrations import audit as record

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


LOGIN_FAILED = f"用户名或密码错误。连续失败 {MAX_FAILED_LOGINS} 次后，需等待 {LOCKOUT_MINUTES} 分钟再试。"


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("main.index"))
    error = None
    if request.method == "POST":
        username = request.form.get("username", "").strip()
        user = _authenticate(username, request.form.get("password", ""))
        if user is None:
            error = LOGIN_FAILED
        else:
            next_url = _safe_next(request.args.get("next"))
            session.clear()  # no state carried over from before the login (session fixation)
            session.permanent = True
            login_user(user)
            mark_login(session)
            record("login.success", "user", user.id, address=request.remote_addr)
            db.session.commit()
            logger.info("login %s", username)
            return redirect(next_url)
    return render_template("auth/login.html", error=error), (200 if error is None else 401)


def _authenticate(username: str, password: str) -> User | None:
    """The user for a correct password from an address not locked out, else None (committing the failure).

    Every attempt costs exactly one argon2 verification and the same writes, whether the name is unknown, the
    account disabled or the pair locked out: neither the answer nor its timing tells them apart.
    """
    address = request.remote_addr
    user = db.session.scalars(select(User).where(User.username == username)).first()
    password_ok = user.check_password(password) if user is not None else _spend_a_hash(password)
    locked = throttle.is_locked(db.session, address, username)
    if password_ok and user is not None and user.active and not locked:
        throttle.clear(db.session, address, username)
        return user
    started_lock = False if locked else throttle.record_failure(db.session, address, username)
    reason = "locked" if locked else ("bad_credentials" if not password_ok or user is None else "disabled")
    record("login.failure", "user", user.id if user is not None else "", actor=username, address=address, reason=reason)
    if started_lock:
        record(
            "login.lockout",
            "user",
            user.id if user is not None else "",
            actor=username,
            address=address,
            minutes=LOCKOUT_MINUTES,
        )
        logger.warning("login lock-out for %s from %s after %d failures", username, address, MAX_FAILED_LOGINS)
    db.session.commit()
    logger.info("failed login for %s from %s (%s)", username, address, reason)  # never the password
    return None


_DUMMY_HASH: list[str] = []


def _spend_a_hash(password: str) -> bool:
    """Verify against a hash nobody knows the password of: the same work as for a real account; always False."""
    from webapp.auth.models import _hasher, generate_password

    if not _DUMMY_HASH:  # a hash of a random string nobody knows; it never belongs to an account
        _DUMMY_HASH.append(_hasher.hash(generate_password()))
    try:
        _hasher.verify(_DUMMY_HASH[0], password)
    except Exception:  # argon2 raises on mismatch; only the time spent matters here
        pass
    return False


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    logger.info("logout %s", current_user.username)
    record("logout", "user", current_user.id)
    current_user.end_sessions()
    db.session.commit()
    logout_user()
    session.clear()
    flash("您已退出登录。", "info")
    return redirect(url_for("auth.login"))
