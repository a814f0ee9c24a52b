"""Clusters created and edited in the browser: fields, chains, yearly indicators with history, roster.

Administrators create clusters; administrators and the cluster's managers edit them. Every change is audited;
the indicator history is read back from the audit log (`cluster.indicators` entries with the values before and
after). Forms work without JavaScript (redirect back); with htmx the indicators and roster sections swap in place.
"""

from __future__ import annotations

import logging
import re

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import func, or_, select

from chains.chain_models import Chain
from chains.chainmap_parse import SLUG_RE
from chains.cluster_models import INDICATOR_FIELDS, ROSTER_ROLES, Cluster, RosterEntry
from chains.enterprise_models import Enterprise
from webapp.auth.models import ROLE_ADMIN, ROLE_MANAGER
from webapp.auth.roles import role_required
from webapp.clusters import bp
from webapp.extensions import db
from webapp.services.audit.models import AuditEntry
from webapp.web.common import get_cluster, wants_fragment
from webapp.web.integrations import audit

logger = logging.getLogger("chainmatch.clusters")

EDIT_ROLES = (ROLE_ADMIN, ROLE_MANAGER)
TEXT_FIELDS = {
    "name": ("名称", 255),
    "province": ("省份", 32),
    "city": ("城市", 64),
    "district": ("区县", 64),
    "leading_industry": ("主导产业", 128),
    "cluster_type": ("类型", 64),
    "description": ("简介", 4000),
}
AREA_FIELDS = {"area_mu": "面积（亩）", "area_km2": "面积（平方公里）"}
SEARCH_LIMIT = 20
HISTORY_LIMIT = 50
YEAR_RE = re.compile(r"^(19|20)\d\d$")


def _number(text: str, label: str, errors: list[str]) -> float | None:
    text = (text or "").replace(",", "").replace("，", "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        errors.append(f"{label}必须是数字：{text}")
        return None
    if value < 0:
        errors.append(f"{label}不能为负数")
    return value


def _fields_from_form(cluster: Cluster, errors: list[str]) -> None:
    """Apply the basic fields and chains of the form to `cluster`, collecting Chinese errors."""
    for name, (label, size) in TEXT_FIELDS.items():
        value = request.form.get(name, "").strip()
        if name == "name" and not value:
            errors.append("集聚区名称不能为空")
        setattr(cluster, name, value[:size])
    for name, label in AREA_FIELDS.items():
        setattr(cluster, name, _number(request.form.get(name, ""), label, errors))
    chain_ids = request.form.getlist("chains")
    known = set(db.session.scalars(select(Chain.id).where(Chain.id.in_(chain_ids)))) if chain_ids else set()
    if set(chain_ids) - known:
        errors.append("所选产业链不存在")
    cluster.set_chains([c for c in chain_ids if c in known])


def indicator_history(cluster_id: str) -> list[AuditEntry]:
    """Indicator changes of a cluster, newest first (from the audit log)."""
    return list(
        db.session.scalars(
            select(AuditEntry)
            .where(AuditEntry.cluster_id == cluster_id, AuditEntry.action == "cluster.indicators")
            .order_by(AuditEntry.id.desc())
            .limit(HISTORY_LIMIT)
        )
    )


def edit_context(
    cluster: Cluster,
    results: list[Enterprise] | None = None,
    query: str = "",
    errors: list[str] | None = None,
    message: str = "",
) -> dict:
    """What the edit page and its fragments show."""
    chains = list(db.session.scalars(select(Chain).order_by(Chain.name)))
    return {
        "cluster": cluster,
        "chains": chains,
        "chain_names": {c.id: c.name for c in chains},
        "fields": INDICATOR_FIELDS,
        "history": indicator_history(cluster.id),
        "roles": ROSTER_ROLES,
        "roster": sorted(
            cluster.roster,
            key=lambda r: (ROSTER_ROLES.index(r.role) if r.role in ROSTER_ROLES else 9, r.enterprise.name),
        ),
        "results": results,
        "query": query,
        "errors": errors or [],
        "message": message,
        "text_fields": TEXT_FIELDS,
        "area_fields": AREA_FIELDS,
    }


def _editable(cluster_id: str) -> Cluster:
    return get_cluster(cluster_id)  # managers: 403 unless the cluster is theirs; role checked by the decorator


@bp.route("/new", methods=["GET", "POST"])
@role_required(ROLE_ADMIN)
def create():
    errors: list[str] = []
    cluster = Cluster(id="", name="")
    if request.method == "POST":
        cluster_id = request.form.get("id", "").strip().lower()
        if not SLUG_RE.match(cluster_id):
            errors.append("集聚区标识必须由小写字母、数字和连字符组成")
        elif db.session.get(Cluster, cluster_id) is not None:
            errors.append(f"集聚区标识 {cluster_id} 已存在")
        cluster.id = cluster_id
        _fields_from_form(cluster, errors)
        if not errors:
            db.session.add(cluster)
            audit("cluster.create", "cluster", cluster.id, cluster_id=cluster.id, name=cluster.name)
            db.session.commit()
            logger.info("user %s created cluster %s", current_user.id, cluster.id)
            flash(f"已创建集聚区 {cluster.name}。", "success")
            return redirect(url_for("clusters.edit", cluster_id=cluster.id))
        db.session.expunge_all()
    chains = list(db.session.scalars(select(Chain).order_by(Chain.name)))
    return render_template(
        "clusters/new.html",
        cluster=cluster,
        chains=chains,
        errors=errors,
        text_fields=TEXT_FIELDS,
        area_fields=AREA_FIELDS,
    ), 422 if errors else 200


@bp.route("/<cluster_id>/edit", methods=["GET", "POST"])
@role_required(*EDIT_ROLES)
def edit(cluster_id: str):
    cluster = _editable(cluster_id)
    if request.method == "POST":
        errors: list[str] = []
        before = {name: getattr(cluster, name) for name in (*TEXT_FIELDS, *AREA_FIELDS)} | {"chains": cluster.chain_ids}
        _fields_from_form(cluster, errors)
        if errors:
            db.session.rollback()
            for text in errors:
                flash(text, "error")
        else:
            after = {name: getattr(cluster, name) for name in (*TEXT_FIELDS, *AREA_FIELDS)} | {
                "chains": cluster.chain_ids
            }
            changed = {k: [before[k], after[k]] for k in after if before[k] != after[k]}
            if changed:
                audit("cluster.edit", "cluster", cluster_id, cluster_id=cluster_id, changed=changed)
            db.session.commit()
            flash("集聚区信息已保存。" if changed else "内容没有变化。", "success")
        return redirect(url_for("clusters.edit", cluster_id=cluster_id))
    return render_template("clusters/edit.html", **edit_context(cluster))


@bp.route("/<cluster_id>/indicators", methods=["POST"])
@role_required(*EDIT_ROLES)
def save_indicators(cluster_id: str):
    cluster = _editable(cluster_id)
    errors: list[str] = []
    year_text = request.form.get("year", "").strip()
    year = int(year_text) if YEAR_RE.match(year_text) else None
    if year is None:
        errors.append("年份应为四位数字，如 2024")
    values = {name: _number(request.form.get(name, ""), label, errors) for name, label in INDICATOR_FIELDS.items()}
    message = ""
    if not errors:
        before, after = cluster.set_indicator(year, values, request.form.get("source", ""))
        if before != after:
            audit(
                "cluster.indicators",
                "cluster",
                cluster_id,
                cluster_id=cluster_id,
                year=year,
                before=before,
                after=after,
            )
            message = f"{year} 年指标已保存，政策规则评价已按新指标重新计算。"
        else:
            message = f"{year} 年指标没有变化。"
        db.session.commit()
        logger.info("user %s saved indicators %s of %s", current_user.id, year, cluster_id)
    else:
        db.session.rollback()
    if wants_fragment():
        return render_template("clusters/_indicators.html", **edit_context(cluster, errors=errors, message=message))
    for text in errors:
        flash(text, "error")
    if message:
        flash(message, "success")
    return redirect(url_for("clusters.edit", cluster_id=cluster_id) + "#indicators")


def _search(text: str) -> list[Enterprise]:
    text = text.strip()
    if not text:
        return []
    pattern = f"%{text.replace('%', '').replace('_', '')}%"
    return list(
        db.session.scalars(
            select(Enterprise)
            .where(
                or_(
                    Enterprise.name.ilike(pattern),
                    Enterprise.credit_code == text.upper(),
                    Enterprise.external_id == text,
                )
            )
            .order_by(func.length(Enterprise.name), Enterprise.id)
            .limit(SEARCH_LIMIT)
        )
    )


@bp.route("/<cluster_id>/roster/search")
@role_required(*EDIT_ROLES)
def roster_search(cluster_id: str):
    cluster = _editable(cluster_id)
    query = request.args.get("q", "")[:100]
    context = edit_context(cluster, results=_search(query), query=query)
    if wants_fragment():
        return render_template("clusters/_roster.html", **context)
    return render_template("clusters/edit.html", **context)


@bp.route("/<cluster_id>/roster", methods=["POST"])
@role_required(*EDIT_ROLES)
def roster_add(cluster_id: str):
    cluster = _editable(cluster_id)
    firm = db.session.get(Enterprise, request.form.get("enterprise_id", type=int) or 0)
    role = request.form.get("role", "配套")
    errors, message = [], ""
    if firm is None:
        errors.append("未找到该企业")
    elif role not in ROSTER_ROLES:
        errors.append("企业角色应为龙头、骨干或配套")
    elif any(r.enterprise_id == firm.id for r in cluster.roster):
        errors.append(f"{firm.name} 已在本地企业名单中")
    else:
        cluster.roster.append(RosterEntry(enterprise_id=firm.id, role=role))
        audit("cluster.roster_add", "enterprise", firm.id, cluster_id=cluster_id, role=role, name=firm.name)
        db.session.commit()
        message = f"已将 {firm.name} 加入本地企业名单（{role}），请在“企业归位”中把它放到环节上。"
    return _roster_answer(cluster, errors, message)


@bp.route("/<cluster_id>/roster/<int:enterprise_id>/remove", methods=["POST"])
@role_required(*EDIT_ROLES)
def roster_remove(cluster_id: str, enterprise_id: int):
    cluster = _editable(cluster_id)
    entry = next((r for r in cluster.roster if r.enterprise_id == enterprise_id), None)
    if entry is None:
        abort(404)
    name = entry.enterprise.name
    cluster.roster.remove(entry)
    audit("cluster.roster_remove", "enterprise", enterprise_id, cluster_id=cluster_id, name=name)
    db.session.commit()
    return _roster_answer(cluster, [], f"已将 {name} 移出本地企业名单（已有的环节归位保留）。")


def _roster_answer(cluster: Cluster, errors: list[str], message: str):
    if wants_fragment():
        return render_template("clusters/_roster.html", **edit_context(cluster, errors=errors, message=message))
    for text in errors:
        flash(text, "error")
    if message:
        flash(message, "success")
    return redirect(url_for("clusters.edit", cluster_id=cluster.id) + "#roster")


@bp.route("/<cluster_id>/chains/<chain_id>/review", methods=["POST"])
@role_required(*EDIT_ROLES)
def review_map(cluster_id: str, chain_id: str):
    from webapp.clusters.staleness import record_review

    cluster = _editable(cluster_id)
    link = next((c for c in cluster.chains if c.chain_id == chain_id), None)
    if link is None:
        abort(404)
    record_review(db.session, link, current_user.username)
    audit("chain.review", "chain", chain_id, cluster_id=cluster_id)
    db.session.commit()
    logger.info("user %s reviewed the map %s of %s", current_user.id, chain_id, cluster_id)
    flash("已记录图谱复核，并保存了各缺口环节当前的候选企业，用于判断图谱是否过时。", "success")
    return redirect(url_for("clusters.dashboard", cluster_id=cluster_id) + "#freshness")
