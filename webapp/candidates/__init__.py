"""候选企业: ranked candidate firms for one link of a cluster, with explanations, filters, feedback, targets."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("candidates", __name__, url_prefix="/candidates", template_folder="templates")

from webapp.candidates import display  # noqa: E402

display.register(bp)

from webapp.candidates import views  # noqa: E402,F401
