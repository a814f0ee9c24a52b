"""供需对接: chain-leader firms find suppliers for their upstream needs and file matchmaking requests."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("suppliers", __name__, url_prefix="/suppliers", template_folder="templates")

from webapp.suppliers import views  # noqa: E402,F401
