"""候选企业 views: the ranked list of a cluster's link (full page or htmx fragment), feedback on a candidate."""

from __future__ import annotations

import io
import logging
import secrets
from datetime import date

from flask import abort, current_app, flash, redirect, render_template, request, send_file, url_for
from flask_login import current_user
from flask_wtf.csrf import generate_csrf
from sqlalchemy import select

from chains.cluster_models import Cluster
from chains.enterprise_models import Enterprise
from chains.excel import XLSX_MIMETYPE, xlsx_bytes
from chains.feedback_models import FEEDBACK_LABELS, LABEL_NOT_RELEVANT, LABEL_RELEVANT, CandidateFeedback
from webapp.auth.roles import STAFF_ROLES, role_required
from webapp.candidates import bp
from webapp.candidates.export import EXPORT_HEADERS, EXPORT_ROWS, candidate_rows
from webapp.candidates.filters import KNOWN_TAGS, parse_filters, supported
from webapp.extensions import db
from webapp.leads.models import Lead
from webapp.services.cache import LruCache
from webapp.services.match import STATE_FALLBACK, CandidateQuery, MatchError, record_feedback, search, serving
from webapp.web.common import get_cluster, wants_fragment
from webapp.web.integrations import audit

logger = logging.getLogger("chainmatch.candidates")

PAGE_SIZE = 20
# The Enterprise fields a candidate's card reads (templates/_firm_card.html).
FIRM_CARD_COLUMNS = (
    Enterprise.id,
    Enterprise.is_demo,
    Enterprise.is_synthetic,
    Enterprise.capital_wan_cny,
    Enterprise.main_products,
    Enterprise.business_scope,
)
MAX_PAGE = 25  # 500 candidates deep is as far as the matcher ranks (matchsvc MAX_K)
FALLBACK_REFRESH_SECONDS = 3  # how often keyword-fallback results fetch themselves again while the index loads
FRAGMENT_CACHE_KEY = "chainmatch.candidates.fragments"
FRAGMENT_CACHE_SIZE = 256
EXPORT_WAIT = "匹配索引仍在加载，候选企业暂按关键词临时排序，请稍后再导出。"
_CSRF_PLACEHOLDER = "csrf-placeholder-" + secrets.token_hex(16)  # never in page data; replaced per request


def embedder_name() -> str:
    """The matching model line of result pages (webapp.services.match.serving.model_line)."""
    try:
        return serving.model_line(current_app._get_current_object(), db.session)
    except Exception:  # noqa: BLE001 - the footer line must never break the page
        logger.exception("embedder info unavailable")
        return ""


def _page_number() -> int:
    raw = request.args.get("page", "1")
    page = int(raw) if raw.isdigit() else 1
    return max(1, min(page, MAX_PAGE))


def _latest_feedback(cluster_id: str, link_key: str, ids: list[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = db.session.scalars(
        select(CandidateFeedback)
        .where(
            CandidateFeedback.cluster_id == cluster_id,
            CandidateFeedback.link_key == link_key,
            CandidateFeedback.enterprise_id.in_(ids),
        )
        .order_by(CandidateFeedback.id)
    )
    return {row.enterprise_id: row.label for row in rows}  # later rows win


def _open_leads(cluster_id: str, link_key: str, ids: list[int], value=Lead.id) -> dict:
    """The open lead on this link of each of these firms: its `value` column (the id, or e.g. the stage), by firm."""
    if not ids:
        return {}
    rows = db.session.execute(
        select(Lead.enterprise_id, value).where(
            Lead.cluster_id == cluster_id,
            Lead.link_key == link_key,
            Lead.enterprise_id.in_(ids),
            Lead.holds_target,
        )
    )
    return {ent: lead for ent, lead in rows}


def _results_context(cluster: Cluster, link_key: str) -> tuple[dict, int]:
    """The results' template context; the firm-card rows are read by _load_firms (not needed on a cache hit)."""
    form = parse_filters(request.args)
    page_no = _page_number()
    context = {
        "cluster": cluster,
        "link_key": link_key,
        "form": form,
        "page_no": page_no,
        "page": None,
        "error": None,
        "items": [],
        "has_next": False,
        "firms": {},
        "feedback": {},
        "leads": {},
        "feedback_labels": FEEDBACK_LABELS,
        "embedder": "",
        "page_size": PAGE_SIZE,
        "export_rows": EXPORT_ROWS,
        "fallback_state": STATE_FALLBACK,
        "fallback_refresh_seconds": FALLBACK_REFRESH_SECONDS,
    }
    status = 200
    if form.errors:
        context["error"] = "；".join(form.errors)
        status = 400
    else:
        try:
            # One extra row tells whether a next page exists.
            query = CandidateQuery(
                cluster.id, link_key, form.service_filters(), PAGE_SIZE + 1, (page_no - 1) * PAGE_SIZE
            )
            page = search(db.session, query)
        except MatchError:
            abort(404)
        except Exception:  # the page shows a Chinese notice in place rather than failing
            db.session.rollback()
            logger.exception("candidates failed for %s / %s", cluster.id, link_key)
            context["error"] = "候选企业暂时无法加载（匹配索引可能尚未构建或出错），请稍后重试。"
            status = 503
        else:
            items = list(page.items)
            context.update(page=page, items=items[:PAGE_SIZE], has_next=len(items) > PAGE_SIZE)
            ids = [c.enterprise_id for c in context["items"]]
            context["feedback"] = _latest_feedback(cluster.id, link_key, ids)
            context["leads"] = _open_leads(cluster.id, link_key, ids)
    context["embedder"] = context["embedder"] or embedder_name()
    args = form.query_args()
    context["query_args"] = args
    context["export_url"] = url_for("candidates.export", cluster_id=cluster.id, link_key=link_key, **args)
    context["page_url"] = lambda n: url_for(
        "candidates.for_link", cluster_id=cluster.id, link_key=link_key, page=n, **args
    )
    return context, status


def _load_firms(context: dict) -> None:
    ids = [c.enterprise_id for c in context["items"]]
    # Only what a firm card shows (no ORM objects, no tag load: the candidate carries its tags).
    firms = db.session.execute(select(*FIRM_CARD_COLUMNS).where(Enterprise.id.in_(ids))).all() if ids else []
    context["firms"] = {row.id: row for row in firms}


def _fragment_key(context: dict, chain) -> tuple | None:
    """The inputs of the results fragment besides the session's CSRF token; None when it is not cacheable.

    The page's own key covers the cluster, link, filters, paging, chain versions, enterprise data (watermark),
    engine and roster; the rest are this request's feedback and lead states, paging and query arguments.
    """
    page = context["page"]
    if context["error"] or page is None or page.cache_key is None:
        return None
    return (
        page.cache_key,
        context["page_no"],
        context["has_next"],
        context["embedder"],
        getattr(chain, "id", None),
        tuple(sorted(context["feedback"].items())),
        tuple(sorted(context["leads"].items())),
        repr(sorted(context["query_args"].items())),
    )


def _render_results(context: dict, chain):
    """The results fragment, from this process's cache when nothing it is rendered from changed.

    It is rendered with a per-process placeholder for the CSRF token (the only per-session part), replaced by the
    request's token on the way out.
    """
    key = _fragment_key(context, chain)
    if key is None:
        _load_firms(context)
        return render_template("candidates/_results.html", **context)
    cache = current_app.extensions.setdefault(FRAGMENT_CACHE_KEY, LruCache(FRAGMENT_CACHE_SIZE))

    def render() -> tuple[str, bool]:
        _load_firms(context)
        return render_template("candidates/_results.html", **{**context, "csrf": _CSRF_PLACEHOLDER}), True

    return cache.get_or_compute(key, render).replace(_CSRF_PLACEHOLDER, generate_csrf())


def _link_info(cluster: Cluster, link_key: str):
    """(chain, link) of the cluster's chains, or 404: read-only copies (id/name; the ChainLink attributes)."""
    from webapp.services.match.links import link_set

    links = link_set(db.session, cluster)
    link = links.links.get(link_key)
    if link is None:
        abort(404)
    return links.chain(link.chain_id), link


@bp.route("/<cluster_id>/<link_key>")
@role_required(*STAFF_ROLES)
def for_link(cluster_id: str, link_key: str):
    cluster = get_cluster(cluster_id)
    chain, link = _link_info(cluster, link_key)
    context, status = _results_context(cluster, link_key)
    context.update(chain=chain, link=link)
    if wants_fragment():
        return _render_results(context, chain), status
    _load_firms(context)
    return render_template("candidates/for_link.html", tags=KNOWN_TAGS, supported=supported, **context), status


@bp.route("/<cluster_id>/<link_key>/export.xlsx")
@role_required(*STAFF_ROLES)
def export(cluster_id: str, link_key: str):
    """The page's candidates under its filters, the first EXPORT_ROWS, as a spreadsheet."""
    cluster = get_cluster(cluster_id)
    _, link = _link_info(cluster, link_key)
    form = parse_filters(request.args)
    if form.errors:
        return render_template("errors/page.html", code=400, title="无法导出", message="；".join(form.errors)), 400
    try:
        page = search(db.session, CandidateQuery(cluster.id, link_key, form.service_filters(), EXPORT_ROWS, 0))
    except MatchError:
        abort(404)
    if page.state == STATE_FALLBACK:  # keyword order without match scores: not a list to hand out
        return render_template("errors/page.html", code=503, title="暂时无法导出", message=EXPORT_WAIT), 503
    items = list(page.items)
    stages = _open_leads(cluster.id, link_key, [c.enterprise_id for c in items], Lead.stage)
    rows = candidate_rows(db.session, items, stages)
    audit("candidates.export", "link", link_key, cluster_id=cluster.id, rows=len(rows), filters=form.query_args())
    db.session.commit()  # an export writes nothing but its audit entry
    logger.info("user %s exported %d candidates of %s / %s", current_user.id, len(rows), cluster.id, link_key)
    return send_file(
        io.BytesIO(xlsx_bytes([("候选企业", EXPORT_HEADERS, rows)])),
        mimetype=XLSX_MIMETYPE,
        as_attachment=True,
        download_name=f"候选企业_{cluster.name}_{link.name}_{date.today().isoformat()}.xlsx",
    )


@bp.route("/<cluster_id>/<link_key>/feedback", methods=["POST"])
@role_required(*STAFF_ROLES)
def feedback(cluster_id: str, link_key: str):
    """相关 / 不相关 on one candidate: recorded for the matcher's learning."""
    cluster = get_cluster(cluster_id)
    _link_info(cluster, link_key)
    label = request.form.get("label", "")
    enterprise = request.form.get("enterprise_id", "")
    if label not in (LABEL_RELEVANT, LABEL_NOT_RELEVANT) or not enterprise.isdigit():
        return render_template(
            "candidates/_feedback.html",
            error="无效的反馈",
            cluster=cluster,
            link_key=link_key,
            enterprise_id=enterprise,
            current=None,
            feedback_labels=FEEDBACK_LABELS,
        ), 400
    enterprise_id = int(enterprise)
    if db.session.get(Enterprise, enterprise_id) is None:
        abort(404)
    record_feedback(db.session, cluster.id, link_key, enterprise_id, label, current_user)
    from webapp.services.audit import record

    record("candidate.feedback", "enterprise", enterprise_id, cluster_id=cluster.id, link_key=link_key, label=label)
    db.session.commit()
    logger.info("user %s marked firm %s %s for %s/%s", current_user.id, enterprise_id, label, cluster.id, link_key)
    context = {
        "cluster": cluster,
        "link_key": link_key,
        "enterprise_id": enterprise_id,
        "current": label,
        "feedback_labels": FEEDBACK_LABELS,
        "error": None,
        "saved": True,
    }
    if wants_fragment():
        return render_template("candidates/_feedback.html", **context)
    flash(f"已标注为“{FEEDBACK_LABELS[label]}”", "success")
    return redirect(url_for("candidates.for_link", cluster_id=cluster.id, link_key=link_key))
