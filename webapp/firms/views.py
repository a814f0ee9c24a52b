"""企业检索 views: search with filters (full page or htmx fragment) and the enterprise page."""

from __future__ import annotations

import logging

from flask import abort, current_app, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from chains.chain_models import Chain, ChainLink
from chains.cluster_models import Cluster, LinkAssignment, RosterEntry
from chains.enterprise_models import Enterprise, EnterpriseChange
from webapp.auth.models import ROLE_ADMIN
from webapp.auth.roles import STAFF_ROLES, role_required
from webapp.candidates.filters import KNOWN_TAGS, parse_filters, supported
from webapp.candidates.views import embedder_name
from webapp.extensions import db
from webapp.firms import bp
from webapp.firms.search import LinkFit, links_fitting, search_firms
from webapp.leads.models import Lead
from webapp.services.match import look_alikes, serving
from webapp.web import nav
from webapp.web.common import wants_fragment

logger = logging.getLogger("chainmatch.firms")

PAGE_SIZE = 20
MAX_PAGE = 25
MAX_QUERY = 500  # characters of a search text
LOOK_ALIKES = 8
NOTICE_INDEX_LOADING = "匹配索引正在加载，适配环节和相似企业将在就绪后显示，请稍后刷新本页。"
FITTING_LINKS = 6
CHANGES_SHOWN = 100

nav.register("firms.index", "企业检索", *STAFF_ROLES)

# Profile fields shown on the enterprise page, in order.
PROFILE_FIELDS = (
    ("credit_code", "统一社会信用代码"),
    ("external_id", "外部编号"),
    ("status", "登记状态"),
    ("status_raw", "登记状态（原文）"),
    ("founded_on", "成立日期"),
    ("capital_amount", "注册资本（万）"),
    ("capital_currency", "币种"),
    ("capital_wan_cny", "注册资本折合（万元人民币）"),
    ("province", "省份"),
    ("city", "城市"),
    ("district", "区县"),
    ("address", "地址"),
    ("legal_representative", "法定代表人"),
    ("phone", "电话"),
    ("email", "邮箱"),
    ("website", "网址"),
    ("country", "国家/地区"),
    ("industry_class", "国标行业代码"),
    ("industry_name", "所属行业"),
    ("main_products", "主营产品"),
    ("business_scope", "经营范围"),
    ("employees", "参保人数"),
    ("revenue_wan", "营业收入（万元）"),
    ("former_names", "曾用名"),
    ("source_file", "来源文件"),
    ("as_of", "数据日期"),
    ("data_note", "数据说明"),
)


def _page_number() -> int:
    raw = request.args.get("page", "1")
    return max(1, min(int(raw) if raw.isdigit() else 1, MAX_PAGE))


@bp.route("/")
@role_required(*STAFF_ROLES)
def index():
    form = parse_filters(request.args, {"exclude_cluster_firms": False})
    q = (request.args.get("q") or "").strip()[:MAX_QUERY]
    page_no = _page_number()
    context = {
        "form": form,
        "q": q,
        "page_no": page_no,
        "result": None,
        "error": None,
        "tags": KNOWN_TAGS,
        "supported": supported,
        "cluster": None,
        "embedder": "",
    }
    status = 200
    if form.errors:
        context["error"] = "；".join(form.errors)
        status = 400
    elif q:
        try:
            context["result"] = search_firms(
                db.session,
                current_app._get_current_object(),
                q,
                form.service_filters(),
                PAGE_SIZE,
                (page_no - 1) * PAGE_SIZE,
            )
        except Exception:
            db.session.rollback()
            logger.exception("firm search failed")
            context["error"] = "检索暂时不可用（匹配索引可能尚未构建或出错），请稍后重试。"
            status = 503
    context["embedder"] = embedder_name()
    args = {"q": q, **form.query_args()}
    context["page_url"] = lambda n: url_for("firms.index", page=n, **args)
    template = "firms/_results.html" if wants_fragment() else "firms/index.html"
    return render_template(template, **context), status


def _visible_cluster_ids() -> set[str] | None:
    return None if current_user.role == ROLE_ADMIN else current_user.cluster_ids()


def _chain_ids_for_user() -> list[str]:
    """Chains whose links a firm is matched against: the user's clusters' chains (admin: every chain)."""
    if current_user.role == ROLE_ADMIN:
        return list(db.session.scalars(select(Chain.id).order_by(Chain.id)))
    ids: list[str] = []
    for cluster in current_user.clusters:
        ids.extend(c for c in cluster.chain_ids if c not in ids)
    return ids


def _lead_choices(fits: list[LinkFit], leads: list[Lead]) -> list[dict]:
    """Per fitting link: the leads the user's clusters already hold on it for this firm, and the clusters that may
    still add one (`Lead.holds_target`: the rule `find_open_lead` applies when one is created)."""
    clusters = current_user.working_clusters()
    held = {(lead.cluster_id, lead.link_key): lead for lead in leads if lead.holds_target}
    choices = []
    for fit in fits:
        developing = [c for c in clusters if fit.chain.id in c.chain_ids]
        choices.append(
            {
                "leads": [held[(c.id, fit.link_key)] for c in developing if (c.id, fit.link_key) in held],
                "clusters": [c for c in developing if (c.id, fit.link_key) not in held],
            }
        )
    return choices


def _link_names(keys: set[str]) -> dict[str, str]:
    """Names of links (current chain versions) by key."""
    if not keys:
        return {}
    rows = db.session.execute(
        select(ChainLink.key, ChainLink.name)
        .join(Chain, Chain.current_version_id == ChainLink.version_id)
        .where(ChainLink.key.in_(keys))
    )
    return dict(rows.all())


@bp.route("/<int:enterprise_id>")
@role_required(*STAFF_ROLES)
def detail(enterprise_id: int):
    ent = db.session.get(Enterprise, enterprise_id)
    if ent is None:
        abort(404)
    app = current_app._get_current_object()
    notices = []
    ready = serving.engine_ready(app)  # before the calls below, which start loading an index that is not ready
    try:
        fits = links_fitting(db.session, app, ent, _chain_ids_for_user(), FITTING_LINKS)
    except Exception:
        logger.exception("link fit failed for firm %s", enterprise_id)
        fits, notices = [], notices + ["适配环节暂时无法计算，请稍后重试。"]
    try:
        similar = look_alikes(db.session, enterprise_id, LOOK_ALIKES)
    except Exception:
        db.session.rollback()
        logger.exception("look-alikes failed for firm %s", enterprise_id)
        similar, notices = [], notices + ["相似企业暂时无法加载（匹配索引可能尚未构建），请稍后重试。"]
    if not ready and not similar:
        notices.append(NOTICE_INDEX_LOADING)
    visible = _visible_cluster_ids()
    lead_query = select(Lead).where(Lead.enterprise_id == enterprise_id).order_by(Lead.updated_at.desc())
    roster_query = select(RosterEntry).where(RosterEntry.enterprise_id == enterprise_id)
    placed_query = select(LinkAssignment).where(LinkAssignment.enterprise_id == enterprise_id)
    if visible is not None:
        lead_query = lead_query.where(Lead.cluster_id.in_(visible or {""}))
        roster_query = roster_query.where(RosterEntry.cluster_id.in_(visible or {""}))
        placed_query = placed_query.where(LinkAssignment.cluster_id.in_(visible or {""}))
    leads = list(db.session.scalars(lead_query).unique())
    roster = list(db.session.scalars(roster_query))
    cluster_names = {c.id: c.name for c in db.session.scalars(select(Cluster))}
    changes = list(
        db.session.scalars(
            select(EnterpriseChange)
            .where(EnterpriseChange.enterprise_id == enterprise_id)
            .order_by(EnterpriseChange.changed_at.desc(), EnterpriseChange.id.desc())
            .limit(CHANGES_SHOWN)
        )
    )
    link_names = _link_names({lead.link_key for lead in leads if lead.link_key})
    return render_template(
        "firms/detail.html",
        ent=ent,
        fields=PROFILE_FIELDS,
        fits=fits,
        lead_choices=_lead_choices(fits, leads),
        similar=similar,
        leads=leads,
        roster=roster,
        placed=list(db.session.scalars(placed_query)),
        cluster_names=cluster_names,
        changes=changes,
        link_names=link_names,
        notices=notices,
        embedder=embedder_name(),
        field_labels=dict(PROFILE_FIELDS),
    )
