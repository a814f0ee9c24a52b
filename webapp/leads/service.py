"""Lead operations: create, change stage, edit; every change is written to LeadEvent."""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from chains.chain_models import Chain
from chains.cluster_models import Cluster
from chains.enterprise_models import Enterprise
from webapp.leads import claims
from webapp.leads.models import (
    PIPELINE_STAGES,
    STAGE_ABANDONED,
    STAGE_CANDIDATE,
    STAGE_CONTACTED,
    STAGES,
    Lead,
    LeadEvent,
)
from webapp.web.integrations import audit, optional_function

logger = logging.getLogger("chainmatch.leads")

MAX_TEXT = 4000  # longest next step / note / reason accepted from a form
MAX_INVESTMENT_WAN = 100_000_000  # 万元: a sanity bound on typed investment amounts
FIELD_LABELS = {
    "created": "创建线索",
    "stage": "阶段",
    "abandon_reason": "放弃原因",
    "owner": "负责人",
    "next_step": "下一步",
    "next_step_date": "下一步日期",
    "notes": "备注",
    "feedback": "候选相关性",
    "claim": "首报登记",
    "coordination": "协调申请",
    "progress": "进展记录",
    "planned_investment_wan": "计划投资额（万元）",
    "project.investment_wan": "投资额（万元）",
    "project.land_mu": "用地（亩）",
    "project.tax_per_mu_wan": "预计亩均税收",
    "project.intensity_wan_per_mu": "预计投资强度",
    "project.energy_tce": "年综合能耗",
    "project.eia_class": "环评类别",
    "project.signed_on": "签约日期",
    "project.started_on": "开工日期",
    "project.producing_on": "投产日期",
    "project.funds": "到位资金",
}
EDITABLE_FIELDS = ("owner", "next_step", "next_step_date", "notes", "planned_investment_wan")
FEEDBACK_CONTACTED = "contacted"  # matchsvc feedback label


class LeadError(ValueError):
    """A rejected lead operation; the message is shown to the user (Chinese)."""


def _log(session: Session, lead: Lead, user_id: int | None, field: str, old: Any, new: Any) -> None:
    session.add(LeadEvent(lead=lead, user_id=user_id, field=field, old=_text(old), new=_text(new)))


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def find_open_lead(session: Session, cluster_id: str, enterprise_id: int, link_key: str | None) -> Lead | None:
    """An existing lead on the same firm for the same cluster and link, unless it was abandoned."""
    query = select(Lead).where(
        Lead.cluster_id == cluster_id,
        Lead.enterprise_id == enterprise_id,
        Lead.holds_target,
    )
    query = query.where(Lead.link_key.is_(None) if not link_key else Lead.link_key == link_key)
    return session.scalars(query).first()


def create_lead(
    session: Session,
    cluster_id: str,
    enterprise_id: int,
    user_id: int | None,
    chain_id: str | None = None,
    link_key: str | None = None,
) -> tuple[Lead, bool]:
    """Create a lead (or return the open one for the same firm and link); returns (lead, created)."""
    if session.get(Cluster, cluster_id) is None:
        raise LeadError("集聚区不存在")
    if session.get(Enterprise, enterprise_id) is None:
        raise LeadError("企业不存在")
    if chain_id and session.get(Chain, chain_id) is None:
        raise LeadError("产业链不存在")
    existing = find_open_lead(session, cluster_id, enterprise_id, link_key or None)
    if existing is not None:
        return existing, False
    lead = Lead(
        cluster_id=cluster_id,
        chain_id=chain_id or None,
        link_key=link_key or None,
        enterprise_id=enterprise_id,
        stage=STAGE_CANDIDATE,
        owner_id=user_id,
        created_by_id=user_id,
    )
    session.add(lead)
    _log(session, lead, user_id, "created", None, STAGE_CANDIDATE)
    session.flush()
    claims.assign_claim(session, lead, user_id)
    return lead, True


def needs_admin_assignment(lead: Lead) -> bool:
    """A project at or above the configured investment size waits for an administrator to assign its owner."""
    threshold = float(claims.setting("ADMIN_ASSIGN_INVESTMENT_WAN"))
    return bool(threshold) and (lead.planned_investment_wan or 0) >= threshold and lead.assigned_by_id is None


def change_stage(
    session: Session, lead: Lead, stage: str, user_id: int | None, reason: str = "", is_admin: bool = False
) -> bool:
    """Move a lead to `stage`; 放弃 needs a reason. Returns False when nothing changed."""
    if stage not in STAGES:
        raise LeadError("未知的阶段")
    if stage not in (STAGE_CANDIDATE, STAGE_ABANDONED) and not is_admin and needs_admin_assignment(lead):
        threshold = claims.setting("ADMIN_ASSIGN_INVESTMENT_WAN")
        raise LeadError(f"计划投资额达到 {threshold:g} 万元的项目须由管理员指派负责人后才能推进")
    reason = (reason or "").strip()
    if stage == STAGE_ABANDONED and not reason:
        raise LeadError("放弃线索必须填写放弃原因")
    if len(reason) > MAX_TEXT:
        raise LeadError(f"放弃原因不能超过 {MAX_TEXT} 个字符")
    if stage == lead.stage and (stage != STAGE_ABANDONED or reason == lead.abandon_reason):
        return False
    if stage != lead.stage:
        _log(session, lead, user_id, "stage", lead.stage, stage)
        lead.stage = stage
        claims.after_progress(session, lead, user_id)
    new_reason = reason if stage == STAGE_ABANDONED else ""
    if new_reason != (lead.abandon_reason or ""):
        _log(session, lead, user_id, "abandon_reason", lead.abandon_reason or None, new_reason or None)
        lead.abandon_reason = new_reason
    return True


def add_progress(session: Session, lead: Lead, text: str, user_id: int | None) -> None:
    """A dated progress entry (进展记录): counts for the stage clocks and keeps a first claim protected."""
    text = (text or "").strip()
    if not text:
        raise LeadError("请填写进展内容")
    if len(text) > MAX_TEXT:
        raise LeadError(f"内容不能超过 {MAX_TEXT} 个字符")
    _log(session, lead, user_id, "progress", None, text)
    claims.after_progress(session, lead, user_id)


def update_fields(
    session: Session, lead: Lead, changes: dict[str, Any], user_id: int | None, is_admin: bool = False
) -> list[str]:
    """Apply edits of owner / next step / date / notes / investment; returns the names of the fields that changed."""
    changed = []
    if "planned_investment_wan" in changes:
        value = changes["planned_investment_wan"]
        if value is not None and (value < 0 or value > MAX_INVESTMENT_WAN):
            raise LeadError("计划投资额应在 0 到 1 亿万元之间")
    for field, new in changes.items():
        if field not in EDITABLE_FIELDS:
            raise LeadError("该字段不可编辑")
        if isinstance(new, str) and len(new) > MAX_TEXT:
            raise LeadError(f"内容不能超过 {MAX_TEXT} 个字符")
        attr = "owner_id" if field == "owner" else field
        old = getattr(lead, attr)
        if _blank_as_none(old) == _blank_as_none(new):  # "" and None are both empty; 0 (万元) is a value
            continue
        if field == "owner":
            _log(session, lead, user_id, field, _user_label(session, old), _user_label(session, new))
        else:
            _log(session, lead, user_id, field, old, new)
        setattr(lead, attr, new)
        changed.append(field)
    if is_admin and "owner" in changed and lead.owner_id:
        lead.assigned_by_id = user_id  # an administrator's assignment (large projects need one)
    return changed


def _blank_as_none(value: Any) -> Any:
    return None if value == "" else value


def _user_label(session: Session, user_id: int | None) -> str | None:
    from webapp.auth.models import User

    user = session.get(User, user_id) if user_id else None
    return (user.display_name or user.username) if user else None


def set_feedback(session: Session, lead: Lead, value: str, user_id: int | None) -> bool:
    if value == (lead.feedback or ""):
        return False
    _log(session, lead, user_id, "feedback", lead.feedback or None, value or None)
    lead.feedback = value
    return True


def parse_date(value: str) -> date | None:
    """`YYYY-MM-DD` from a date input; empty → None; anything else → LeadError."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise LeadError("日期格式应为 YYYY-MM-DD") from None


def parse_amount(value: str) -> float | None:
    """A non-negative amount typed in a form; empty → None; anything else → LeadError."""
    value = (value or "").strip().replace(",", "")
    if not value:
        return None
    try:
        amount = float(value)
    except ValueError:
        raise LeadError("金额应为数字") from None
    if amount != amount or amount < 0 or amount > MAX_INVESTMENT_WAN:
        raise LeadError("金额超出允许范围")
    return amount


def highest_stage_reached(lead: Lead) -> int:
    """Index in PIPELINE_STAGES of the furthest stage a lead ever reached (from its history)."""
    reached = 0
    values = (
        [lead.stage]
        + [e.new for e in lead.events if e.field == "stage"]
        + [e.old for e in lead.events if e.field == "stage"]
    )
    for value in values:
        if value in PIPELINE_STAGES:
            reached = max(reached, PIPELINE_STAGES.index(value))
    return reached


def funnel_counts(leads: list[Lead]) -> list[dict]:
    """For each pipeline stage, how many leads reached it (or went further), and how many sit there now."""
    reached = [highest_stage_reached(lead) for lead in leads]
    out = []
    for i, stage in enumerate(PIPELINE_STAGES):
        out.append(
            {
                "stage": stage,
                "reached": sum(1 for r in reached if r >= i),
                "current": sum(1 for lead in leads if lead.stage == stage),
            }
        )
    return out


def after_stage_change(session: Session, lead: Lead, user: Any) -> None:
    """Audit a stage change; reaching 已接洽 on a link's candidate is a learning signal for the matcher."""
    audit("lead.stage", "lead", lead.id, cluster_id=lead.cluster_id, stage=lead.stage)
    if lead.stage == STAGE_CONTACTED and lead.link_key:
        record = optional_function("webapp.services.match", "record_feedback")
        if record is not None:
            record(session, lead.cluster_id, lead.link_key, lead.enterprise_id, FEEDBACK_CONTACTED, user)
