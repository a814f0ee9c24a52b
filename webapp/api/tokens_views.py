"""/api/tokens: a logged-in user's own API tokens — create (shown once), list, revoke. CSRF-protected forms."""

from __future__ import annotations

import logging

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from webapp.auth.models import ROLE_ADMIN
from webapp.auth.roles import role_required
from webapp.auth.tokens import TokenError, create_token, revoke_token, user_tokens
from webapp.extensions import db
from webapp.web import nav
from webapp.web.integrations import audit

logger = logging.getLogger("chainmatch.api")

tokens_bp = Blueprint("api_tokens", __name__, url_prefix="/api/tokens", template_folder="templates")
nav.register("api_tokens.index", "API 令牌")


@tokens_bp.route("/")
@login_required
def index():
    return render_template("api/tokens.html", tokens=user_tokens(db.session, current_user.id), new_token=None)


@tokens_bp.route("/", methods=["POST"])
@login_required
def create():
    try:
        row, plaintext = create_token(db.session, current_user.id, request.form.get("name", ""))
    except TokenError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return render_template("api/tokens.html", tokens=user_tokens(db.session, current_user.id), new_token=None), 400
    audit("api_token.create", "api_token", row.id)
    db.session.commit()
    logger.info("user %s created API token %s", current_user.id, row.prefix)
    # Shown once, in this response only; never stored in plain text nor put in the URL.
    return render_template("api/tokens.html", tokens=user_tokens(db.session, current_user.id), new_token=plaintext), 201


@tokens_bp.route("/<int:token_id>/revoke", methods=["POST"])
@login_required
def revoke(token_id: int):
    try:
        row = revoke_token(db.session, token_id, user_id=current_user.id)
    except TokenError:
        abort(404)
    audit("api_token.revoke", "api_token", row.id)
    db.session.commit()
    flash("令牌已撤销", "success")
    return redirect(url_for("api_tokens.index"))


@tokens_bp.route("/all")
@role_required(ROLE_ADMIN)
def all_tokens():
    """Every user's tokens (prefix, owner, dates, state), for admins."""
    return render_template("api/tokens_all.html", tokens=user_tokens(db.session))


@tokens_bp.route("/all/<int:token_id>/revoke", methods=["POST"])
@role_required(ROLE_ADMIN)
def admin_revoke(token_id: int):
    """An admin revokes any user's token."""
    try:
        row = revoke_token(db.session, token_id)
    except TokenError:
        abort(404)
    audit("api_token.revoke", "api_token", row.id, owner=row.user.username if row.user else "")
    db.session.commit()
    logger.info("admin %s revoked API token %s of user %s", current_user.username, row.prefix, row.user_id)
    flash("令牌已撤销", "success")
    return redirect(url_for("api_tokens.all_tokens"), code=303)
