"""User management for admins (用户管理): list, create, edit role/clusters/enterprise, disable/enable, reset password.

Every change is a CSRF-protected POST and is written to the audit log. Generated passwords are rendered once in
the response to the POST that created them (never flashed: the flash store is the signed, unencrypted cookie).
"""

from __future__ import annotations

import logging
import re

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from chains.cluster_models import Cluster
from chains.enterprise_models import Enterprise
from webapp.auth import bp, throttle
from webapp.auth.models import MIN_PASSWORD_LENGTH, ROLE_ADMIN, ROLE_FIRM, ROLES, User, generate_password
from webapp.auth.passwords import change_password
from webapp.auth.roles import role_required
from webapp.extensions import db
from webapp.web.integrations import audit as record
from webapp.web.nav import register as register_nav

logger = logging.getLogger("chainmatch.auth")
register_nav("auth.users", "用户管理", ROLE_ADMIN)

USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{1,63}$")
MAX_DISPLAY_NAME = 128


def _user_or_404(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        abort(404)
    return user


def _page_context() -> dict:
    clusters = db.session.scalars(select(Cluster).order_by(Cluster.id)).all()
    leader_ids = {c.chain_leader_id for c in clusters if c.chain_leader_id}
    leaders = (
        db.session.scalars(select(Enterprise).where(Enterprise.id.in_(leader_ids)).order_by(Enterprise.name)).all()
        if leader_ids
        else []
    )
    return {"roles": ROLES, "clusters": clusters, "leaders": leaders, "min_length": MIN_PASSWORD_LENGTH}


def _read_assignment(form) -> tuple[str, list[Cluster], int | None, list[str]]:
    """Role, clusters and enterprise from a form, with the errors found (in Chinese)."""
    errors: list[str] = []
    role = form.get("role", "")
    if role not in ROLES:
        errors.append("请选择有效的角色。")
    clusters = []
    for cid in form.getlist("clusters"):
        cluster = db.session.get(Cluster, cid)
        if cluster is None:
            errors.append(f"集聚区“{cid}”不存在。")
        else:
            clusters.append(cluster)
    enterprise_id = None
    raw = (form.get("enterprise_id") or "").strip()
    if raw:
        if not raw.isdigit() or db.session.get(Enterprise, int(raw)) is None:
            errors.append(f"企业编号“{raw}”不存在。")
        else:
            enterprise_id = int(raw)
    if role == ROLE_FIRM and enterprise_id is None:
        errors.append("链主企业账号必须指定所代表的企业。")
    if role == ROLE_ADMIN:
        clusters = []  # admins see every cluster
    if role != ROLE_FIRM:
        enterprise_id = None
    return role, clusters, enterprise_id, errors


def _read_password(form) -> tuple[str, bool, list[str]]:
    """The typed password, or a generated one when the field is empty."""
    password = form.get("password", "")
    if not password:
        return generate_password(), True, []
    if len(password) < MIN_PASSWORD_LENGTH:
        return "", False, [f"密码至少需要 {MIN_PASSWORD_LENGTH} 个字符。"]
    return password, False, []


def _render_list(status: int = 200, **extra):
    users = db.session.scalars(select(User).order_by(User.username)).all()
    return render_template("auth/users.html", users=users, form=request.form, **_page_context(), **extra), status


@bp.route("/users/")
@role_required(ROLE_ADMIN)
def users():
    return _render_list()


@bp.route("/users/", methods=["POST"])
@role_required(ROLE_ADMIN)
def users_create():
    form = request.form
    username = form.get("username", "").strip()
    display_name = form.get("display_name", "").strip()[:MAX_DISPLAY_NAME]
    errors = []
    if not USERNAME_RE.fullmatch(username):
        errors.append("用户名须为 2–64 个字母、数字或 _ . @ -，以字母或数字开头。")
    elif db.session.scalars(select(User).where(User.username == username)).first():
        errors.append(f"用户名“{username}”已存在。")
    role, clusters, enterprise_id, more = _read_assignment(form)
    password, generated, pw_errors = _read_password(form)
    errors += more + pw_errors
    if errors:
        return _render_list(400, errors=errors)
    user = User(username=username, display_name=display_name, role=role, enterprise_id=enterprise_id)
    user.set_password(password)
    user.clusters = clusters
    db.session.add(user)
    db.session.flush()
    record(
        "user.create",
        "user",
        user.id,
        username=username,
        role=role,
        clusters=sorted(c.id for c in clusters),
        enterprise_id=enterprise_id,
    )
    db.session.commit()
    logger.info("admin %s created user %s (%s)", current_user.username, username, role)
    return _render_list(200, created=user, new_password=password if generated else None)


@bp.route("/users/<int:user_id>")
@role_required(ROLE_ADMIN)
def user_detail(user_id: int):
    user = _user_or_404(user_id)
    return render_template("auth/user_detail.html", user=user, **_page_context())


@bp.route("/users/<int:user_id>/edit", methods=["POST"])
@role_required(ROLE_ADMIN)
def user_edit(user_id: int):
    user = _user_or_404(user_id)
    role, clusters, enterprise_id, errors = _read_assignment(request.form)
    if user.id == current_user.id and role != ROLE_ADMIN:
        errors.append("不能修改自己的管理员角色。")
    if errors:
        return render_template("auth/user_detail.html", user=user, errors=errors, **_page_context()), 400
    old = {"role": user.role, "clusters": sorted(user.cluster_ids()), "enterprise_id": user.enterprise_id}
    user.role = role
    user.clusters = clusters
    user.enterprise_id = enterprise_id
    user.display_name = request.form.get("display_name", user.display_name).strip()[:MAX_DISPLAY_NAME]
    new = {"role": role, "clusters": sorted(c.id for c in clusters), "enterprise_id": enterprise_id}
    record("user.edit", "user", user.id, username=user.username, old=old, new=new)
    db.session.commit()
    flash(f"已保存用户“{user.username}”。", "success")
    return redirect(url_for("auth.user_detail", user_id=user.id), code=303)


@bp.route("/users/<int:user_id>/password", methods=["POST"])
@role_required(ROLE_ADMIN)
def user_password(user_id: int):
    user = _user_or_404(user_id)
    password, generated, errors = _read_password(request.form)
    if errors:
        return render_template("auth/user_detail.html", user=user, errors=errors, **_page_context()), 400
    revoked = change_password(db.session, user, password)
    record("user.set_password", "user", user.id, username=user.username, tokens_revoked=revoked)
    db.session.commit()
    logger.info("admin %s reset the password of %s", current_user.username, user.username)
    return render_template(
        "auth/user_detail.html",
        user=user,
        new_password=password if generated else None,
        password_changed=True,
        **_page_context(),
    )


def _set_active(user_id: int, active: bool):
    user = _user_or_404(user_id)
    if user.id == current_user.id and not active:
        flash("不能停用自己的账号。", "error")
        return redirect(url_for("auth.user_detail", user_id=user.id), code=303)
    user.active = active
    if active:
        throttle.clear_user(db.session, user.username)
    record("user.enable" if active else "user.disable", "user", user.id, username=user.username)
    db.session.commit()
    flash(f"已{'启用' if active else '停用'}用户“{user.username}”。", "success")
    return redirect(url_for("auth.user_detail", user_id=user.id), code=303)


@bp.route("/users/<int:user_id>/disable", methods=["POST"])
@role_required(ROLE_ADMIN)
def user_disable(user_id: int):
    return _set_active(user_id, False)


@bp.route("/users/<int:user_id>/enable", methods=["POST"])
@role_required(ROLE_ADMIN)
def user_enable(user_id: int):
    return _set_active(user_id, True)
