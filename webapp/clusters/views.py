"""集聚区 views: list, dashboard, chain map (图谱) with the link panel, N lists, placement review."""

from __future__ import annotations

import logging

from flask import abort, render_template, url_for
from flask_login import current_user
from sqlalchemy import select
from werkzeug.routing import BuildError

from chains.chain_models import Chain
from chains.chainmap_parse import SLUG_RE
from chains.cluster_models import Cluster
from chains.evaluation import evaluate_cluster
from chains.gaps import STATUSES, analyze_chain
from webapp.auth.roles import STAFF_ROLES, role_required
from webapp.clusters import bp
from webapp.clusters.data import (
    PANEL_CANDIDATES,
    RECENT_ACTIVITY,
    STATUS_HELP,
    chain_map,
    descendants,
    link_firms,
    percent,
    rule_chart,
    status_counts,
)
from webapp.clusters.staleness import cluster_freshness
from webapp.extensions import db
from webapp.leads.attention import attention_items
from webapp.leads.models import Lead, LeadEvent
from webapp.leads.service import FIELD_LABELS
from webapp.web import nav
from webapp.web.common import get_cluster, vary_on_htmx, wants_fragment
from webapp.web.integrations import optional_function

logger = logging.getLogger("chainmatch.clusters")


nav.register("clusters.index", "集聚区", *STAFF_ROLES)


def get_chain(cluster: Cluster, chain_id: str) -> Chain:
    chain = db.session.get(Chain, chain_id)
    if chain is None or chain_id not in cluster.chain_ids:
        abort(404)
    return chain


def chain_names_of(cluster: Cluster) -> dict[str, str]:
    ids = cluster.chain_ids
    if not ids:
        return {}
    return {c.id: c.name for c in db.session.scalars(select(Chain).where(Chain.id.in_(ids)))}


def candidates_url(cluster_id: str, link_key: str) -> str | None:
    """URL of the full candidates page, once that page exists."""
    try:
        return url_for("candidates.for_link", cluster_id=cluster_id, link_key=link_key)
    except BuildError:
        return None


bp.after_request(vary_on_htmx)  # the same URL returns a fragment or a full page


@bp.route("/")
@role_required(*STAFF_ROLES)
def index():
    chains = {c.id: c.name for c in db.session.scalars(select(Chain))}
    return render_template("clusters/index.html", clusters=current_user.working_clusters(), chains=chains)


@bp.route("/<cluster_id>")
@role_required(*STAFF_ROLES)
def dashboard(cluster_id: str):
    cluster = get_cluster(cluster_id)
    evaluation = evaluate_cluster(db.session, cluster_id)
    chain_rows = []
    for chain_id in cluster.chain_ids:
        gap = analyze_chain(db.session, cluster_id, chain_id)
        chain_rows.append(
            {
                "gap": gap,
                "counts": status_counts(gap),
                "local_rate": percent(gap.rollup.local_rate),
                "weighted_rate": percent(gap.rollup.weighted_local_rate),
            }
        )
    activity = db.session.execute(
        select(LeadEvent, Lead)
        .join(Lead, Lead.id == LeadEvent.lead_id)
        .where(Lead.cluster_id == cluster_id)
        .order_by(LeadEvent.at.desc(), LeadEvent.id.desc())
        .limit(RECENT_ACTIVITY)
    ).all()
    attention = [item for cid in cluster.chain_ids for item in attention_items(db.session, cid, [cluster_id])]
    return render_template(
        "clusters/dashboard.html",
        cluster=cluster,
        evaluation=evaluation,
        chart=rule_chart(evaluation.rules),
        chain_rows=chain_rows,
        statuses=STATUSES,
        activity=activity,
        field_labels=FIELD_LABELS,
        chain_names=chain_names_of(cluster),
        freshness=cluster_freshness(db.session, cluster),
        attention=attention,
    )


def link_panel_urls(cluster_id: str, chain_id: str):
    """url_for('clusters.link_panel', …) for many links of one chain: built once, then one concatenation per
    link (link ids are slugs, which need no quoting; any other key goes through url_for)."""
    base = url_for("clusters.link_panel", cluster_id=cluster_id, chain_id=chain_id, link_key="x")[:-1]

    def link_url(link_key: str) -> str:
        if SLUG_RE.match(link_key):
            return base + link_key
        return url_for("clusters.link_panel", cluster_id=cluster_id, chain_id=chain_id, link_key=link_key)

    return link_url


def _map_context(cluster: Cluster, chain: Chain) -> dict:
    gap, columns, by_key = chain_map(db.session, cluster.id, chain.id)
    return {
        "cluster": cluster,
        "chain": chain,
        "gap": gap,
        "columns": columns,
        "by_key": by_key,
        "statuses": STATUSES,
        "status_help": STATUS_HELP,
        "local_rate": percent(gap.rollup.local_rate),
        "chain_names": chain_names_of(cluster),
        "link_url": link_panel_urls(cluster.id, chain.id),
    }


@bp.route("/<cluster_id>/chains/<chain_id>")
@role_required(*STAFF_ROLES)
def chain_view(cluster_id: str, chain_id: str):
    cluster = get_cluster(cluster_id)
    chain = get_chain(cluster, chain_id)
    return render_template("clusters/chain_map.html", panel=None, **_map_context(cluster, chain))


def _panel_context(cluster: Cluster, chain: Chain, link_key: str, by_key: dict, gap) -> dict:
    link = by_key.get(link_key)
    if link is None:
        abort(404)
    link_gap = next((g for g in gap.links if g.link_id == link_key), None)
    context = {
        "link": link,
        "link_gap": link_gap,
        "parent": by_key.get(link.parent_key) if link.parent_key else None,
        "sublinks": descendants(by_key, link_key),
        "firms": link_firms(db.session, cluster.id, link_key),
        "candidates": None,
        "candidates_error": None,
        "candidates_note": "",
        "limit": PANEL_CANDIDATES,
        "candidates_url": candidates_url(cluster.id, link_key),
        "cluster": cluster,
        "chain": chain,
    }
    find = optional_function("webapp.services.match", "candidates")
    if find is None:
        context["candidates_error"] = "匹配服务尚未就绪，暂无候选企业。"
    else:
        try:
            page = find(db.session, cluster.id, link_key, {}, PANEL_CANDIDATES, 0)
            context["candidates"] = list(page.items)
            context["candidates_note"] = page.message  # e.g. keyword fallback while the index builds
        except LookupError as exc:  # matchsvc.MatchError: the link is not matchable for this cluster
            context["candidates_error"] = str(exc)
        except Exception:  # the panel must still show the link when the matcher fails
            logger.exception("candidates failed for %s / %s", cluster.id, link_key)
            context["candidates_error"] = "候选企业暂时无法加载，请稍后重试。"
    return context


@bp.route("/<cluster_id>/chains/<chain_id>/links/<link_key>")
@role_required(*STAFF_ROLES)
def link_panel(cluster_id: str, chain_id: str, link_key: str):
    cluster = get_cluster(cluster_id)
    chain = get_chain(cluster, chain_id)
    if wants_fragment():
        gap, _, by_key = chain_map(db.session, cluster_id, chain_id)
        return render_template("clusters/_link_panel.html", p=_panel_context(cluster, chain, link_key, by_key, gap))
    context = _map_context(cluster, chain)
    panel = _panel_context(cluster, chain, link_key, context["by_key"], context["gap"])
    return render_template("clusters/chain_map.html", panel=panel, **context)
