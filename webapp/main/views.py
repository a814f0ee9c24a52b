"""The home page: what the platform holds and where each role starts."""
from __future__ import annotations

from flask import render_template
from sqlalchemy import func, select

from chains.chain_models import Chain
from chains.cluster_models import Cluster
from chains.enterprise_models import Enterprise
from webapp.extensions import db
from webapp.main import bp
from webapp.main.nav import nav_items


@bp.app_context_processor
def _inject_nav():
    return {"nav_items": nav_items}


@bp.route("/")
def index():
    counts = {
        "chains": db.session.scalar(select(func.count()).select_from(Chain)) or 0,
        "clusters": db.session.scalar(select(func.count()).select_from(Cluster)) or 0,
        "enterprises": db.session.scalar(select(func.count()).select_from(Enterprise)) or 0,
    }
    return render_template("main/index.html", counts=counts)
