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
from webapp.clusters.integrations import audit, optional_function
from webapp.leads.models import (
    PIPELINE_STAGES,
    STAGE_ABANDONED,
    STAGE_CANDIDATE,
    STAGE_CONTACTED,
    STAGES,
    Lead,
    LeadEvent,
)

logger = logging.getLogger("chainmatch.leads")

MAX_TEXT = 4000  # longest next step / note / reason accepted from a form
FIELD_LABELS = {
    "created": "创建线索",
    "stage": "阶段",
    "abandon_reason": "放弃原因",
    "owner": "负责人",
    "next_step": "下一步",
    "next_step_date": "下一步日期",
    "notes": "备注",
    "feedback": "候选相关性",
}
EDITABLE_FIELDS = ("owner", "next_step", "next_step_date", "notes")
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
        Lead.stage != STAGE_ABANDONED,
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
    return lead, True


def change_stage(session: Session, lead: Lead, stage: str, user_id: int | None, reason: str = "") -> bool:
    """Move a lead to `stage`; 放弃 needs a reason. Returns False when nothing changed."""
    if stage not in STAGES:
        raise LeadError("未知的阶段")
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
    new_reason = reason if stage == STAGE_ABANDONED else ""
    if new_reason != (lead.abandon_reason or ""):
        _log(session, lead, user_id, "abandon_reason", lead.abandon_reason or None, new_reason or None)
        lead.abandon_reason = new_reason
    return True


def update_fields(session: Session, lead: Lead, changes: dict[str, Any], user_id: int | None) -> list[str]:
    """Apply edits of owner / next step / date / notes; returns the names of the fields that changed."""
    changed = []
    for field, new in changes.items():
        if field not in EDITABLE_FIELDS:
            raise LeadError("该字段不可编辑")
        if isinstance(new, str) and len(new) > MAX_TEXT:
            raise LeadError(f"内容不能超过 {MAX_TEXT} 个字符")
        attr = "owner_id" if field == "owner" else field
        old = getattr(lead, attr)
        if (old or None) == (new or None):
            continue
        if field == "owner":
            _log(session, lead, user_id, field, _user_label(session, old), _user_label(session, new))
        else:
            _log(session, lead, user_id, field, old, new)
        setattr(lead, attr, new)
        changed.append(field)
    return changed


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


def highest_stage_reached(lead: Lead) -> int:
    """Index in PIPELINE_STAGES of the furthest stage a lead ever reached (from its history)."""
    reached = 0
    values = [lead.stage] + [e.new for e in lead.events if e.field == "stage"] + [e.old for e in lead.events if e.field == "stage"]
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
        record = optional_function("webapp.matchsvc", "record_feedback")
        if record is not None:
            record(session, lead.cluster_id, lead.link_key, lead.enterprise_id, FEEDBACK_CONTACTED, user)
