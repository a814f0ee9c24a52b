"""Stage clocks: first response, assessment, feedback to the firm, negotiation progress and the next-step date."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from chains.db import utcnow
from webapp.leads.claims import aware, setting
from webapp.leads.models import (
    CLOSED_STAGES,
    PIPELINE_STAGES,
    STAGE_CANDIDATE,
    STAGE_CONTACTED,
    STAGE_NEGOTIATION,
    STAGE_VISIT,
    Lead,
)

CLOCK_LABELS = {
    "first_response": "首次响应",
    "assessment": "研判",
    "firm_feedback": "反馈企业",
    "progress": "洽谈进展",
    "next_step": "下一步",
}


@dataclass(frozen=True)
class Clock:
    """One running deadline of a lead."""

    name: str
    due: date
    overdue: bool

    @property
    def label(self) -> str:
        return CLOCK_LABELS[self.name]


def add_workdays(start: date, days: int) -> date:
    """The date `days` working days (Mon–Fri) after `start`."""
    current = start
    while days > 0:
        current += timedelta(days=1)
        if current.weekday() < 5:
            days -= 1
    return current


def _at(value: datetime | None) -> datetime:
    """An event time; one not yet flushed happened now."""
    return aware(value) or utcnow()


def _entered(lead: Lead, stage: str) -> datetime:
    """When the lead last entered `stage` (its creation for 候选)."""
    times = [_at(e.at) for e in lead.events if e.field == "stage" and e.new == stage]
    return max(times) if times else _at(lead.created_at)


def lead_clocks(lead: Lead, today: date | None = None) -> list[Clock]:
    """The deadlines still running on an open lead, overdue ones flagged."""
    today = today or utcnow().date()
    if lead.stage in CLOSED_STAGES:
        return []
    created = _at(lead.created_at)
    assigned = max([created] + [_at(e.at) for e in lead.events if e.field == "owner"])
    progress = [_at(e.at) for e in lead.events if e.field == "progress"]
    moves = [_at(e.at) for e in lead.events if e.field == "stage"]
    clocks: list[tuple[str, date]] = []
    if lead.stage == STAGE_CANDIDATE and lead.owner_id and not any(t > assigned for t in progress + moves):
        clocks.append(("first_response", add_workdays(assigned.date(), int(setting("FIRST_RESPONSE_WORKDAYS")))))
    if not lead.feedback and PIPELINE_STAGES.index(lead.stage) < PIPELINE_STAGES.index(STAGE_VISIT):
        clocks.append(("assessment", created.date() + timedelta(days=int(setting("ASSESSMENT_DAYS")))))
    if lead.stage == STAGE_CONTACTED:
        entered = _entered(lead, STAGE_CONTACTED)
        if not any(t > entered for t in progress):
            clocks.append(("firm_feedback", entered.date() + timedelta(days=int(setting("FIRM_FEEDBACK_DAYS")))))
    if lead.stage == STAGE_NEGOTIATION:
        last = max([_entered(lead, STAGE_NEGOTIATION)] + progress)
        clocks.append(("progress", last.date() + timedelta(days=int(setting("NEGOTIATION_PROGRESS_DAYS")))))
    if lead.next_step_date is not None:
        clocks.append(("next_step", lead.next_step_date))
    return [Clock(name, due, due < today) for name, due in clocks]


def overdue_clocks(lead: Lead, today: date | None = None) -> list[Clock]:
    """The lead's clocks that have run out."""
    return [c for c in lead_clocks(lead, today) if c.overdue]


def overdue_labels(lead: Lead, today: date | None = None) -> list[str]:
    """Names of the lead's overdue clocks (首次响应, 研判, 反馈企业, 洽谈进展, 下一步); empty when none ran out.

    An open lead with a stage clock or its next-step date run out is overdue (docs/workflow.md). Templates call it
    as `overdue_labels(lead, today)` (a global of the leads blueprint).
    """
    return [clock.label for clock in overdue_clocks(lead, today)]


def open_leads(session: Session, cluster_ids: set[str] | None = None, owner_id: int | None = None) -> list[Lead]:
    """Open leads, optionally of some clusters or one owner, with their history loaded."""
    query = select(Lead).where(Lead.stage.not_in(CLOSED_STAGES)).options(selectinload(Lead.events))
    if cluster_ids is not None:
        query = query.where(Lead.cluster_id.in_(cluster_ids or {""}))
    if owner_id is not None:
        query = query.where(Lead.owner_id == owner_id)
    return list(session.scalars(query.order_by(Lead.cluster_id, Lead.id)))


def overdue_items(leads: list[Lead], today: date | None = None) -> list[tuple[Lead, list[Clock]]]:
    """(lead, its overdue clocks) for the leads with at least one."""
    out = []
    for lead in leads:
        late = overdue_clocks(lead, today)
        if late:
            out.append((lead, late))
    return out


def digest_lines(session: Session, today: date | None = None) -> list[str]:
    """The daily digest: every overdue item, by cluster and owner (plain text, Chinese)."""
    today = today or utcnow().date()
    items = overdue_items(open_leads(session), today)
    lines = [f"招商线索逾期日报 {today.isoformat()}：共 {len(items)} 条线索逾期"]
    current = None
    for lead, late in sorted(items, key=lambda it: (it[0].cluster.name, it[0].owner_id or 0, it[0].id)):
        if lead.cluster.name != current:
            current = lead.cluster.name
            lines.append(f"【{current}】")
        owner = (lead.owner.display_name or lead.owner.username) if lead.owner else "未指定负责人"
        what = "；".join(f"{c.label}应于 {c.due.isoformat()} 完成（逾期 {(today - c.due).days} 天）" for c in late)
        lines.append(f"  #{lead.id} {lead.enterprise.name}（{lead.stage}，负责人：{owner}）— {what}")
    return lines
