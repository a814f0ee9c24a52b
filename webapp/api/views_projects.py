"""签约项目 (project facts of a signed lead): read with state and what-if, update, add 到位资金."""

from __future__ import annotations

from datetime import date

from webapp.api import bp
from webapp.api.core import api_user, operation
from webapp.api.errors import ApiError
from webapp.api.schemas_register import FundingInput, KpiQuery, ProjectInput, ProjectOut
from webapp.api.views_leads import _lead
from webapp.auth.models import STAFF_ROLES
from webapp.extensions import db
from webapp.leads import projects
from webapp.leads.models import Lead
from webapp.leads.service import LeadError
from webapp.web.integrations import audit

TAGS = ["签约项目"]


def _project_dict(lead: Lead) -> dict:
    project = lead.project
    if project is None:
        raise ApiError(404, "该线索尚未登记项目信息。")
    state = projects.project_state(project, date.today())
    data = {name: getattr(project, name) for name in (*projects.NUMBER_FIELDS, *projects.DATE_FIELDS, "eia_class")}
    data.update(
        lead_id=lead.id,
        funds_wan=project.funds_wan,
        funds=project.funds,
        state=state.name if state else None,
        state_days=state.days if state else None,
        what_if=projects.what_if(db.session, lead),
    )
    return data


@bp.get("/leads/<int:lead_id>/project")
@operation(
    "线索的项目信息（状态及其天数；对集聚区投资强度、亩均税收的影响测算）",
    tags=TAGS,
    roles=STAFF_ROLES,
    response=ProjectOut,
)
def get_project(lead_id: int):
    return _project_dict(_lead(lead_id))


@bp.put("/leads/<int:lead_id>/project")
@operation(
    "登记或修改项目信息（线索须已到“签约”或“落地”）",
    tags=TAGS,
    roles=STAFF_ROLES,
    body=ProjectInput,
    response=ProjectOut,
)
def put_project(lead_id: int, body: dict):
    lead = _lead(lead_id)
    try:
        projects.save_project(db.session, lead, body, api_user().id)
    except LeadError as exc:
        db.session.rollback()
        raise ApiError(422, str(exc)) from None
    audit("lead.project", "lead", lead.id, cluster_id=lead.cluster_id)
    db.session.commit()
    return _project_dict(lead)


@bp.post("/leads/<int:lead_id>/project/funds")
@operation("记录到位资金", tags=TAGS, roles=STAFF_ROLES, body=FundingInput, response=ProjectOut, status=201)
def post_funds(lead_id: int, body: dict):
    lead = _lead(lead_id)
    try:
        projects.add_funding(db.session, lead, body["amount_wan"], body["received_on"], body["note"], api_user().id)
    except LeadError as exc:
        db.session.rollback()
        raise ApiError(422, str(exc)) from None
    audit("lead.project_funds", "lead", lead.id, cluster_id=lead.cluster_id)
    db.session.commit()
    return _project_dict(lead)


@bp.get("/clusters/<cluster_id>/kpi")
@operation(
    "集聚区考核数据（period：2026、2026Q4、2026H1 或 2026-11，默认本季度）",
    tags=["考核"],
    roles=STAFF_ROLES,
    query=KpiQuery,
)
def get_kpi(cluster_id: str, query: dict):
    from flask import jsonify

    from chains.cluster_models import Cluster
    from webapp.api.core import require_cluster
    from webapp.leads import kpi

    require_cluster(cluster_id)
    if db.session.get(Cluster, cluster_id) is None:
        raise ApiError(404, f"集聚区 {cluster_id} 不存在。")
    try:
        period = kpi.parse_period(query.get("period") or kpi.current_quarter(date.today()))
    except kpi.PeriodError as exc:
        raise ApiError(422, str(exc), {"query": {"period": [str(exc)]}}) from None
    return jsonify(kpi.cluster_kpi(db.session, cluster_id, period))
