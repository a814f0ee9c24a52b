"""Self-service password change: the current password, then the new one twice; other sessions and tokens end."""

from __future__ import annotations

import logging

from flask import flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user

from webapp.auth import bp
from webapp.auth.models import MIN_PASSWORD_LENGTH
from webapp.auth.passwords import change_password
from webapp.auth.sessions import mark_login
from webapp.extensions import db
from webapp.web.integrations import audit

logger = logging.getLogger("chainmatch.auth")


def _problems(current: str, new: str, confirm: str) -> list[str]:
    """What is wrong with the form (Chinese), checking the current password with argon2."""
    if not current_user.check_password(current):
        return ["当前密码不正确。"]
    problems = []
    if len(new) < MIN_PASSWORD_LENGTH:
        problems.append(f"新密码至少需要 {MIN_PASSWORD_LENGTH} 个字符。")
    if new != confirm:
        problems.append("两次输入的新密码不一致。")
    if new == current:
        problems.append("新密码不能与当前密码相同。")
    return problems


@bp.route("/password", methods=["GET"])
@login_required
def password_form():
    return render_template("auth/password.html", errors=[], min_length=MIN_PASSWORD_LENGTH)


@bp.route("/password", methods=["POST"])
@login_required
def password_change():
    form = request.form
    errors = _problems(form.get("current_password", ""), form.get("new_password", ""), form.get("confirm_password", ""))
    if errors:
        return render_template("auth/password.html", errors=errors, min_length=MIN_PASSWORD_LENGTH), 400
    user = current_user._get_current_object()
    revoked = change_password(db.session, user, form["new_password"])
    user.end_sessions()
    audit("user.change_password", "user", user.id, username=user.username, tokens_revoked=revoked)
    db.session.commit()
    session.clear()  # the old session is void with the new fingerprint; this browser continues in a fresh one
    session.permanent = True
    login_user(user)
    mark_login(session)
    logger.info("user %s changed their password (%d API tokens revoked)", user.username, revoked)
    flash("密码已修改。其他浏览器中的登录和您的全部 API 令牌均已失效。", "success")
    return redirect(url_for("main.index"), code=303)
