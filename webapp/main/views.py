"""The home page: what the platform holds and where each role starts."""

from __future__ import annotations

from datetime import date

from flask import render_template
from flask_login import current_user
from sqlalchemy import func, select

from chains.chain_models import Chain
from chains.cluster_models import Cluster
from chains.enterprise_models import Enterprise
from webapp.extensions import db
from webapp.main import bp
from webapp.web.nav import nav_items


@bp.app_context_processor
def _inject_nav():
    return {"nav_items": nav_items}


@bp.route("/")
def index():
    """The marketing splash for anonymous visitors; each logged-in role's workbench."""
    if current_user.is_authenticated:
        from webapp.auth.models import ROLE_FIRM
        from webapp.main import workbench

        if current_user.role == ROLE_FIRM:
            return render_template("main/workbench_firm.html", **workbench.firm_context(current_user))
        return render_template(
            "main/workbench.html", **workbench.staff_context(current_user, date.today()), stale_maps=_stale_maps()
        )
    counts = {
        "chains": db.session.scalar(select(func.count()).select_from(Chain)) or 0,
        "clusters": db.session.scalar(select(func.count()).select_from(Cluster)) or 0,
        "enterprises": db.session.scalar(select(func.count()).select_from(Enterprise)) or 0,
    }
    return render_template("main/index.html", counts=counts)


WORKBENCH_CLUSTERS = 10  # clusters whose maps the home page checks for staleness


def _stale_maps() -> list:
    """The stale chain maps of the user's clusters (administrators: the first clusters by name)."""
    from webapp.auth.models import ROLE_ADMIN, STAFF_ROLES
    from webapp.clusters.staleness import cluster_freshness

    if not current_user.is_authenticated or current_user.role not in STAFF_ROLES:
        return []
    if current_user.role == ROLE_ADMIN:
        clusters = list(db.session.scalars(select(Cluster).order_by(Cluster.name).limit(WORKBENCH_CLUSTERS)))
    else:
        clusters = sorted(current_user.clusters, key=lambda c: c.name)[:WORKBENCH_CLUSTERS]
    return [f for cluster in clusters for f in cluster_freshness(db.session, cluster) if f.stale]
