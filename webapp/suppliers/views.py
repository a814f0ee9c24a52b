"""供需对接 views: supplier finder, shortlist and 申请对接 for firm users; request handling for cluster staff."""

from __future__ import annotations

import logging

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from chains.chain_models import Chain
from chains.enterprise_models import Enterprise
from webapp.auth.models import ROLE_ADMIN, ROLE_FIRM
from webapp.auth.roles import STAFF_ROLES, require_cluster_access, role_required
from webapp.candidates.views import embedder_name
from webapp.extensions import db
from webapp.services.match.profiles import link_query_for, link_terms
from webapp.suppliers import bp, service
from webapp.suppliers.access import firm_clusters, need_links
from webapp.suppliers.models import OPEN_STATUSES, REQUEST_STATUSES, MatchmakingRequest, SupplierShortlist
from webapp.suppliers.ranking import LOCAL_FIRST_DEFAULT, Need, rank_suppliers
from webapp.suppliers.service import FORBIDDEN, MAX_NEED_TEXT, NOT_FOUND, MatchmakingError
from webapp.web import nav
from webapp.web.common import wants_fragment

logger = logging.getLogger("chainmatch.suppliers")

MAX_NEEDS = 5  # needs searched at once
MAX_TEXT = MAX_NEED_TEXT  # free-text need
FIELD_LABELS = {"created": "提交申请", "status": "状态", "note": "处理备注"}

nav.register("suppliers.index", "供需对接", ROLE_FIRM)
nav.register("suppliers.requests", "对接申请", *STAFF_ROLES)


def _requester() -> Enterprise | None:
    return db.session.get(Enterprise, current_user.enterprise_id) if current_user.enterprise_id else None


def _needs_from_args(options, clusters) -> tuple[list[Need], list[str]]:
    """Needs chosen in the form: checked upstream links (only the firm's own) and free text."""
    by_value = {o.value: o for o in options}
    needs, errors = [], []
    for value in request.args.getlist("need"):
        option = by_value.get(value)
        if option is None:
            errors.append("所选需求环节不属于您的产业链")
            continue
        links = {link.key: link for link in _chain_links(option.chain.id)}
        needs.append(
            Need(
                option.value,
                f"{option.chain.name} · {option.link.name}",
                link_query_for(option.chain, links, option.link),
                option.cluster.id,
                option.chain.id,
                option.link.key,
                tuple(link_terms(option.link)),
            )
        )
    text = (request.args.get("q") or "").strip()[:MAX_TEXT]
    if text:
        cluster_id = request.args.get("cluster") or (clusters[0].id if clusters else "")
        if cluster_id not in {c.id for c in clusters}:
            errors.append("请选择您所在的集聚区")
        else:
            needs.append(Need("text", text, text, cluster_id, terms=(text,)))
    if len(needs) > MAX_NEEDS:
        errors.append(f"一次最多检索 {MAX_NEEDS} 项需求，已取前 {MAX_NEEDS} 项")
        needs = needs[:MAX_NEEDS]
    return needs, errors


def _chain_links(chain_id: str):
    from chains.chainmap_io import current_links

    return current_links(db.session, chain_id)


def _finder_context() -> dict:
    requester = _requester()
    clusters = firm_clusters(db.session, current_user)
    options = need_links(db.session, clusters)
    local_first = request.args.get("local_first") == "1" if request.args.get("f") else LOCAL_FIRST_DEFAULT
    needs, errors = _needs_from_args(options, clusters) if requester else ([], [])
    results = []
    if requester and needs and not any("不属于" in e for e in errors):
        province = requester.province or (clusters[0].province if clusters else "")
        city = requester.city or (clusters[0].city if clusters else "")
        app = current_app._get_current_object()
        for need in needs:
            try:
                results.append(rank_suppliers(db.session, app, need, requester, province, city, local_first))
            except Exception:
                db.session.rollback()
                logger.exception("supplier search failed")
                errors.append("供应商检索暂时不可用（匹配索引可能尚未构建），请稍后重试。")
                break
    shortlist = list(
        db.session.scalars(
            select(SupplierShortlist)
            .where(SupplierShortlist.user_id == current_user.id)
            .order_by(SupplierShortlist.id.desc())
        )
    )
    my_requests = []
    if requester:
        my_requests = list(
            db.session.scalars(
                select(MatchmakingRequest)
                .where(MatchmakingRequest.requester_id == requester.id)
                .order_by(MatchmakingRequest.id.desc())
            )
        )
    open_keys = {
        (r.supplier_id, r.cluster_id, r.link_key or "", "" if r.link_key else r.need_text)
        for r in my_requests
        if r.status in OPEN_STATUSES
    }
    return {
        "requester": requester,
        "clusters": clusters,
        "options": options,
        "needs": needs,
        "results": results,
        "errors": errors,
        "local_first": local_first,
        "checked": set(request.args.getlist("need")),
        "q": (request.args.get("q") or "").strip()[:MAX_TEXT],
        "cluster_arg": request.args.get("cluster", ""),
        "shortlist": shortlist,
        "shortlisted": {s.supplier_id for s in shortlist},
        "my_requests": my_requests,
        "open_keys": open_keys,
        "embedder": embedder_name(),
    }


@bp.route("/")
@role_required(ROLE_FIRM)
def index():
    context = _finder_context()
    status = 400 if context["errors"] and not context["results"] else 200
    if wants_fragment() and request.args.get("f"):
        return render_template("suppliers/_results.html", **context), status
    return render_template("suppliers/index.html", **context), status


@bp.route("/shortlist", methods=["POST"])
@role_required(ROLE_FIRM)
def shortlist():
    supplier = request.form.get("supplier_id", "")
    if not supplier.isdigit() or db.session.get(Enterprise, int(supplier)) is None:
        abort(400)
    supplier_id = int(supplier)
    row = db.session.scalar(
        select(SupplierShortlist).where(
            SupplierShortlist.user_id == current_user.id, SupplierShortlist.supplier_id == supplier_id
        )
    )
    if request.form.get("action") == "remove":
        if row is not None:
            db.session.delete(row)
        on_list = False
    else:
        if row is None:
            db.session.add(
                SupplierShortlist(
                    user_id=current_user.id,
                    supplier_id=supplier_id,
                    need_text=(request.form.get("need_text") or "")[:MAX_TEXT],
                )
            )
        on_list = True
    db.session.commit()
    if wants_fragment():
        return render_template(
            "suppliers/_shortlist_button.html",
            supplier_id=supplier_id,
            on_list=on_list,
            need_text=request.form.get("need_text", ""),
        )
    flash("已加入候选清单" if on_list else "已移出候选清单", "success")
    return redirect(url_for("suppliers.index"))


def _abort_on(exc: MatchmakingError) -> None:
    """Not found (or another firm's) is a 404, another cluster's a 403, as for any page."""
    if exc.kind == NOT_FOUND:
        abort(404)
    if exc.kind == FORBIDDEN:
        abort(403)


def _get_request(request_id: int) -> MatchmakingRequest:
    try:
        return service.find_request(db.session, current_user, request_id)
    except MatchmakingError as exc:
        _abort_on(exc)
        raise


@bp.route("/requests/new", methods=["POST"])
@role_required(ROLE_FIRM)
def create_request():
    """申请对接: ask the cluster to connect this firm with a supplier for a need (idempotent while open)."""
    supplier = request.form.get("supplier_id", "")
    try:
        req, created = service.create_request(
            db.session,
            current_user,
            int(supplier) if supplier.isdigit() else None,
            request.form.get("cluster_id", ""),
            request.form.get("link_key"),
            request.form.get("need_text") or "",
            request.form.get("note") or "",
        )
    except MatchmakingError as exc:
        _abort_on(exc)
        return _request_error(exc.message)
    if created:
        db.session.commit()
        logger.info("firm user %s filed matchmaking request %s", current_user.id, req.id)
    message = "已提交对接申请，集聚区工作人员将尽快处理" if created else "已有进行中的对接申请"
    if wants_fragment():
        return render_template("suppliers/_request_done.html", req=req, message=message), 201 if created else 200
    flash(message, "success" if created else "warning")
    return redirect(url_for("suppliers.request_detail", request_id=req.id))


def _request_error(message: str):
    if wants_fragment():
        return render_template("suppliers/_request_done.html", req=None, message=message, error=True), 400
    return render_template("errors/page.html", code=400, title="无法提交对接申请", message=message), 400


def _staff_query(status: str, cluster_id: str):
    query = service.visible_requests(current_user)
    if status in REQUEST_STATUSES:
        query = query.where(MatchmakingRequest.status == status)
    if cluster_id:
        require_cluster_access(cluster_id)
        query = query.where(MatchmakingRequest.cluster_id == cluster_id)
    return query.order_by(MatchmakingRequest.updated_at.desc(), MatchmakingRequest.id.desc())


@bp.route("/requests")
@role_required(*STAFF_ROLES)
def requests():
    status = request.args.get("status", "")
    cluster_id = request.args.get("cluster", "").strip()
    rows = list(db.session.scalars(_staff_query(status, cluster_id)).unique())
    if current_user.role == ROLE_ADMIN:
        from chains.cluster_models import Cluster

        clusters = list(db.session.scalars(select(Cluster).order_by(Cluster.name)))
    else:
        clusters = sorted(current_user.clusters, key=lambda c: c.name)
    return render_template(
        "suppliers/requests.html",
        rows=rows,
        statuses=REQUEST_STATUSES,
        status=status,
        clusters=clusters,
        cluster_id=cluster_id,
    )


@bp.route("/requests/<int:request_id>")
@role_required(ROLE_FIRM, *STAFF_ROLES)
def request_detail(request_id: int):
    req = _get_request(request_id)
    chain = db.session.get(Chain, req.chain_id) if req.chain_id else None
    return render_template(
        "suppliers/request_detail.html",
        req=req,
        chain=chain,
        statuses=REQUEST_STATUSES,
        field_labels=FIELD_LABELS,
        can_edit=current_user.role != ROLE_FIRM,
    )


@bp.route("/requests/<int:request_id>/status", methods=["POST"])
@role_required(*STAFF_ROLES)
def change_status(request_id: int):
    req = _get_request(request_id)
    note = request.form.get("note") if "note" in request.form else None
    try:
        changed = service.change_status(db.session, req, request.form.get("status", ""), current_user.id, note)
    except MatchmakingError as exc:
        if wants_fragment():
            return render_template(
                "suppliers/_request_row.html", r=req, statuses=REQUEST_STATUSES, error=exc.message
            ), 400
        return render_template("errors/page.html", code=400, title="无法更新状态", message=exc.message), 400
    db.session.commit()
    if wants_fragment():
        return render_template(
            "suppliers/_request_row.html", r=req, statuses=REQUEST_STATUSES, error=None, saved=changed
        )
    flash(f"状态已更新为“{req.status}”" if changed else "没有变化", "success")
    return redirect(url_for("suppliers.request_detail", request_id=req.id))
