"""Project facts from 签约 to 落地: facts, 到位资金, visible waiting states, and what the project does to indicators."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from chains.cluster_models import ClusterIndicator
from chains.evaluation import evaluate_cluster
from webapp.leads.models import (
    EIA_CLASSES,
    STAGE_LANDED,
    STAGE_SIGNED,
    Lead,
    LeadEvent,
    LeadProject,
    ProjectFunding,
)
from webapp.leads.service import MAX_INVESTMENT_WAN, LeadError, parse_amount, parse_date

NUMBER_FIELDS = {
    "investment_wan": "投资额（万元）",
    "land_mu": "用地（亩）",
    "tax_per_mu_wan": "预计亩均税收（万元/亩）",
    "intensity_wan_per_mu": "预计投资强度（万元/亩）",
    "energy_tce": "年综合能耗（吨标准煤）",
}
DATE_FIELDS = {"signed_on": "签约日期", "started_on": "开工日期", "producing_on": "投产日期"}
PROJECT_STAGES = (STAGE_SIGNED, STAGE_LANDED)  # stages that carry a project
WHAT_IF_RULES = ("investment_intensity", "tax_per_mu")  # 投资强度, 亩均税收

STATE_SIGNED_NOT_STARTED = "签约未开工"
STATE_STARTED_NO_MONEY = "开工未到资"
STATE_BUILDING = "在建"
STATE_PRODUCING = "已投产"


def save_project(session: Session, lead: Lead, form: dict[str, Any], user_id: int | None) -> LeadProject:
    """Create or update the lead's project from form-like values (strings or numbers); every change is logged."""
    if lead.stage not in PROJECT_STAGES:
        raise LeadError("线索到达“签约”阶段后才能登记项目信息")
    project = lead.project or LeadProject(lead=lead)
    session.add(project)
    changes: dict[str, Any] = {}
    for name in NUMBER_FIELDS:
        if name in form:
            value = form[name]
            changes[name] = parse_amount(str(value)) if value is not None else None
    for name in DATE_FIELDS:
        if name in form:
            value = form[name]
            changes[name] = value if isinstance(value, date) or value is None else parse_date(value)
    if "eia_class" in form:
        eia = (form["eia_class"] or "").strip()
        if eia and eia not in EIA_CLASSES:
            raise LeadError(f"环评类别应为：{'、'.join(EIA_CLASSES)}")
        changes["eia_class"] = eia
    merged = {name: changes.get(name, getattr(project, name)) for name in DATE_FIELDS}
    if merged["signed_on"] is None and lead.stage in PROJECT_STAGES and "signed_on" in changes:
        raise LeadError("请填写签约日期")
    if merged["started_on"] and merged["signed_on"] and merged["started_on"] < merged["signed_on"]:
        raise LeadError("开工日期不能早于签约日期")
    if merged["producing_on"] and not merged["started_on"]:
        raise LeadError("请先填写开工日期")
    if merged["producing_on"] and merged["started_on"] and merged["producing_on"] < merged["started_on"]:
        raise LeadError("投产日期不能早于开工日期")
    for name, value in changes.items():
        old = getattr(project, name)
        if (old if old != "" else None) == (value if value != "" else None):
            continue
        session.add(
            LeadEvent(
                lead=lead,
                user_id=user_id,
                field=f"project.{name}",
                old=None if old in (None, "") else str(old),
                new=None if value in (None, "") else str(value),
            )
        )
        setattr(project, name, value)
    session.flush()
    return project


def add_funding(
    session: Session, lead: Lead, amount: Any, received_on: Any, note: str, user_id: int | None
) -> ProjectFunding:
    """Record a 到位资金 entry on the lead's project."""
    project = lead.project
    if project is None:
        raise LeadError("请先登记项目信息")
    value = parse_amount(str(amount)) if amount is not None else None
    if not value:
        raise LeadError("到位资金金额应大于 0")
    if value > MAX_INVESTMENT_WAN:
        raise LeadError("金额超出允许范围")
    when = received_on if isinstance(received_on, date) else parse_date(received_on or "")
    if when is None:
        raise LeadError("请填写到位日期")
    note = (note or "").strip()[:4000]
    funding = ProjectFunding(project=project, amount_wan=value, received_on=when, note=note, created_by_id=user_id)
    session.add(funding)
    session.add(LeadEvent(lead=lead, user_id=user_id, field="project.funds", old=None, new=f"{value:g} 万元（{when}）"))
    session.flush()
    return funding


@dataclass(frozen=True)
class ProjectState:
    """Where a project stands, and since how many days."""

    name: str
    days: int


def project_state(project: LeadProject | None, today: date) -> ProjectState | None:
    """签约未开工 / 开工未到资 / 在建 / 已投产, with the age of the state."""
    if project is None or project.signed_on is None:
        return None
    if project.producing_on:
        return ProjectState(STATE_PRODUCING, (today - project.producing_on).days)
    if not project.started_on:
        return ProjectState(STATE_SIGNED_NOT_STARTED, (today - project.signed_on).days)
    if not project.funds:
        return ProjectState(STATE_STARTED_NO_MONEY, (today - project.started_on).days)
    return ProjectState(STATE_BUILDING, (today - project.started_on).days)


def _latest_indicator(session: Session, cluster_id: str) -> ClusterIndicator | None:
    return session.scalars(
        select(ClusterIndicator).where(ClusterIndicator.cluster_id == cluster_id).order_by(ClusterIndicator.year.desc())
    ).first()


def with_project(ind: ClusterIndicator, project: LeadProject, actual: bool) -> ClusterIndicator:
    """A detached copy of the year's indicators with the project added (actual: 到位资金 instead of the plan)."""
    investment = project.funds_wan if actual else (project.investment_wan or 0.0)
    tax = (project.tax_per_mu_wan or 0.0) * (project.land_mu or 0.0)
    return ClusterIndicator(
        cluster_id=ind.cluster_id,
        year=ind.year,
        output_value=ind.output_value,
        revenue=ind.revenue,
        tax=(ind.tax or 0.0) + tax if (ind.tax is not None or tax) else None,
        fixed_investment=(ind.fixed_investment or 0.0) + investment
        if (ind.fixed_investment is not None or investment)
        else None,
        leading_revenue=ind.leading_revenue,
        source="what-if",
    )


def what_if(session: Session, lead: Lead) -> dict[str, Any] | None:
    """The cluster's 投资强度 and 亩均税收 rules without and with the project (planned before 落地, actual after)."""
    project = lead.project
    ind = _latest_indicator(session, lead.cluster_id)
    if project is None or ind is None:
        return None
    actual = lead.stage == STAGE_LANDED
    before = evaluate_cluster(session, lead.cluster_id)
    after = evaluate_cluster(session, lead.cluster_id, indicator=with_project(ind, project, actual))
    rows = []
    for b in before.rules:  # 投资强度 and 亩均税收 always; any other rule the project changes too
        a = after.rule(b.code)
        if b.code not in WHAT_IF_RULES and (b.value, b.passed) == (a.value, a.passed):
            continue
        rows.append(
            {
                "code": b.code,
                "name": b.name,
                "unit": b.unit,
                "threshold": b.threshold,
                "before": b.value,
                "after": a.value,
                "passed_before": b.passed,
                "passed_after": a.passed,
            }
        )
    return {
        "mode": "actual" if actual else "what-if",
        "year": ind.year,
        "rules": rows,
        "fixed_investment": [ind.fixed_investment, with_project(ind, project, actual).fixed_investment],
        "tax": [ind.tax, with_project(ind, project, actual).tax],
    }
