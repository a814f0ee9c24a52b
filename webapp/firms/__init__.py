"""企业检索: free-text enterprise search and the enterprise page (profile, fitting links, look-alikes, leads)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("firms", __name__, url_prefix="/firms", template_folder="templates")

from webapp.firms import views  # noqa: E402,F401
