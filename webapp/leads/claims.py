"""The shared target register (首报首谈): first claims across clusters, their protection, coordination requests."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

from flask import current_app, has_app_context
from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload

from chains.db import utcnow
from chains.enterprise_models import Enterprise
from webapp import config as rules
from webapp.leads.models import (
    CLAIM_FIRST,
    CLAIM_SECOND,
    CLOSED_STAGES,
    COORD_APPROVED,
    COORD_PENDING,
    COORD_REJECTED,
    CoordinationRequest,
    Lead,
    LeadEvent,
)

logger = logging.getLogger("chainmatch.leads")

PROGRESS_FIELDS = ("created", "stage", "progress", "claim")  # events that count as progress on a lead
MAX_REASON = 4000


class ClaimError(ValueError):
    """A rejected register operation; the message is shown to the user (Chinese)."""


def setting(key: str) -> float:
    """A workflow rule from the app config, or its default outside an app."""
    default = getattr(rules, key)
    return current_app.config.get(key, default) if has_app_context() else default


def aware(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes for timezone columns: read them as UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


def related_enterprise_ids(session: Session, enterprise: Enterprise) -> dict[int, str]:
    """Firms that count as the same target: same firm or credit code, same normalised name, same group → reason."""
    related: dict[int, str] = {enterprise.id: "同一企业"}
    if enterprise.credit_code:
        for eid in session.scalars(select(Enterprise.id).where(Enterprise.credit_code == enterprise.credit_code)):
            related.setdefault(eid, "统一社会信用代码相同")
    if enterprise.name_norm:
        for eid in session.scalars(select(Enterprise.id).where(Enterprise.name_norm == enterprise.name_norm)):
            related.setdefault(eid, "企业名称相同")
    root = enterprise.parent_id or enterprise.id
    group = select(Enterprise.id).where(or_(Enterprise.id == root, Enterprise.parent_id == root))
    if enterprise.parent_id or session.scalar(select(Enterprise.id).where(Enterprise.parent_id == root).limit(1)):
        for eid in session.scalars(group):
            related.setdefault(eid, "同一集团")
    return related


def last_progress(lead: Lead) -> datetime:
    """When the lead last progressed: its claim start, a stage change or a progress entry."""
    times = [aware(lead.claim_since), aware(lead.created_at)]
    times += [aware(e.at) or utcnow() for e in lead.events if e.field in PROGRESS_FIELDS]
    return max(t for t in times if t is not None)


def protection_ends(lead: Lead) -> date:
    """The last day the claim is protected if nothing else happens."""
    return (last_progress(lead) + timedelta(days=int(setting("CLAIM_PROTECTION_DAYS")))).date()


def is_protected(lead: Lead, today: date | None = None) -> bool:
    """An open first claim whose protection period has not run out."""
    today = today or utcnow().date()
    return lead.claim == CLAIM_FIRST and lead.stage not in CLOSED_STAGES and protection_ends(lead) >= today


def competing_leads(session: Session, lead: Lead) -> list[tuple[Lead, str]]:
    """Open leads of other clusters on the same target, with why they match (oldest first)."""
    related = related_enterprise_ids(session, lead.enterprise)
    query = (
        select(Lead)
        .where(
            Lead.enterprise_id.in_(related),
            Lead.cluster_id != lead.cluster_id,
            Lead.stage.not_in(CLOSED_STAGES),
            Lead.id != (lead.id or 0),
        )
        .options(selectinload(Lead.events))
        .order_by(Lead.created_at, Lead.id)
    )
    return [(other, related[other.enterprise_id]) for other in session.scalars(query)]


def holder_of(session: Session, lead: Lead, today: date | None = None) -> tuple[Lead, str] | None:
    """The protected first claim another cluster holds on this lead's target, if any."""
    for other, reason in competing_leads(session, lead):
        if is_protected(other, today):
            return other, reason
    return None


def log_claim(session: Session, lead: Lead, user_id: int | None, old: str | None, new: str) -> None:
    """Record a change of the lead's claim in its history."""
    session.add(LeadEvent(lead=lead, user_id=user_id, field="claim", old=old, new=new))


def assign_claim(session: Session, lead: Lead, user_id: int | None) -> tuple[Lead, str] | None:
    """Mark a new lead first or second claim; returns (holder, reason) when another cluster holds the target."""
    found = holder_of(session, lead)
    if found is None:
        lead.claim, lead.claim_of_id, lead.claim_since = CLAIM_FIRST, None, utcnow()
        for lapsed, _ in competing_leads(session, lead):  # first claims whose protection ran out give way
            if lapsed.claim == CLAIM_FIRST:
                log_claim(session, lapsed, user_id, CLAIM_FIRST, CLAIM_SECOND)
                lapsed.claim, lapsed.claim_of_id = CLAIM_SECOND, lead.id
                logger.info("lead %s lost its lapsed first claim to lead %s", lapsed.id, lead.id)
            elif lapsed.claim == CLAIM_SECOND:
                lapsed.claim_of_id = lead.id
        return None
    holder, reason = found
    lead.claim, lead.claim_of_id, lead.claim_since = CLAIM_SECOND, holder.id, None
    log_claim(session, lead, user_id, None, CLAIM_SECOND)
    logger.info("lead %s is a second claim on lead %s (%s)", lead.id, holder.id, reason)
    return found


def conflicts_of(session: Session, holder: Lead) -> list[Lead]:
    """Open second claims pointing at this first claim."""
    return list(
        session.scalars(
            select(Lead)
            .where(Lead.claim_of_id == holder.id, Lead.claim == CLAIM_SECOND, Lead.stage.not_in(CLOSED_STAGES))
            .order_by(Lead.id)
        )
    )


def pending_request(session: Session, lead: Lead) -> CoordinationRequest | None:
    """The lead's 协调申请 awaiting a decision, if any."""
    return session.scalars(
        select(CoordinationRequest).where(
            CoordinationRequest.lead_id == lead.id, CoordinationRequest.status == COORD_PENDING
        )
    ).first()


def request_coordination(session: Session, lead: Lead, user_id: int | None, reason: str) -> CoordinationRequest:
    """File a 协调申请 for a second claim against the lead holding its target."""
    reason = (reason or "").strip()
    if lead.claim != CLAIM_SECOND or lead.claim_of_id is None:
        raise ClaimError("只有第二报线索可以提出协调申请")
    if lead.stage in CLOSED_STAGES:
        raise ClaimError("线索已结束，无需协调")
    if not reason:
        raise ClaimError("请填写协调理由")
    if len(reason) > MAX_REASON:
        raise ClaimError(f"协调理由不能超过 {MAX_REASON} 个字符")
    if pending_request(session, lead) is not None:
        raise ClaimError("该线索已有待裁定的协调申请")
    request = CoordinationRequest(
        lead_id=lead.id, holder_lead_id=lead.claim_of_id, requested_by_id=user_id, reason=reason, status=COORD_PENDING
    )
    session.add(request)
    session.add(LeadEvent(lead=lead, user_id=user_id, field="coordination", old=None, new="提出协调申请"))
    session.flush()
    return request


def decide(session: Session, request: CoordinationRequest, approve: bool, user_id: int | None, note: str) -> None:
    """An administrator's decision: approve moves the first claim to the requesting lead, reject keeps it."""
    note = (note or "").strip()
    if request.status != COORD_PENDING:
        raise ClaimError("该协调申请已裁定")
    if len(note) > MAX_REASON:
        raise ClaimError(f"裁定说明不能超过 {MAX_REASON} 个字符")
    request.status = COORD_APPROVED if approve else COORD_REJECTED
    request.decision_note, request.decided_by_id, request.decided_at = note, user_id, utcnow()
    lead, holder = request.lead, request.holder_lead
    outcome = "批准：改由本线索首谈" if approve else "驳回：维持原首报"
    session.add(LeadEvent(lead=lead, user_id=user_id, field="coordination", old=None, new=outcome))
    if approve:
        transfer_claim(session, lead, holder, user_id)
    elif holder is not None:
        session.add(LeadEvent(lead=holder, user_id=user_id, field="coordination", old=None, new=outcome))


def transfer_claim(session: Session, lead: Lead, holder: Lead | None, user_id: int | None) -> None:
    """Make `lead` the first claim; the old holder and every second claim on it now point at `lead`."""
    log_claim(session, lead, user_id, lead.claim, CLAIM_FIRST)
    lead.claim, lead.claim_of_id, lead.claim_since = CLAIM_FIRST, None, utcnow()
    if holder is None:
        return
    for other in conflicts_of(session, holder):
        if other.id != lead.id:
            other.claim_of_id = lead.id
    log_claim(session, holder, user_id, holder.claim, CLAIM_SECOND)
    holder.claim, holder.claim_of_id = CLAIM_SECOND, lead.id
    session.add(
        LeadEvent(lead=holder, user_id=user_id, field="coordination", old=None, new="批准：首谈权转至其他集聚区")
    )


def after_progress(session: Session, lead: Lead, user_id: int | None) -> None:
    """Claims follow progress: a second claim whose holder lapsed or closed takes over; a closed first claim
    hands over to its oldest open second claim."""
    if lead.claim == CLAIM_SECOND and lead.stage not in CLOSED_STAGES:
        holder = session.get(Lead, lead.claim_of_id) if lead.claim_of_id else None
        if holder is None or not is_protected(holder):
            transfer_claim(
                session, lead, holder if holder is not None and holder.stage not in CLOSED_STAGES else None, user_id
            )
            logger.info("lead %s took over the first claim (holder %s lapsed or closed)", lead.id, lead.claim_of_id)
    elif lead.claim == CLAIM_FIRST and lead.stage not in CLOSED_STAGES:
        found = holder_of(session, lead)  # a reopened lead whose target another cluster took over meanwhile
        if found is not None:
            log_claim(session, lead, user_id, CLAIM_FIRST, CLAIM_SECOND)
            lead.claim, lead.claim_of_id = CLAIM_SECOND, found[0].id
    elif lead.claim == CLAIM_FIRST and lead.stage in CLOSED_STAGES:
        waiting = conflicts_of(session, lead)
        if waiting:
            successor = waiting[0]
            log_claim(session, successor, user_id, successor.claim, CLAIM_FIRST)
            successor.claim, successor.claim_of_id, successor.claim_since = CLAIM_FIRST, None, utcnow()
            for other in waiting[1:]:
                other.claim_of_id = successor.id
            logger.info("lead %s closed; lead %s now holds the first claim", lead.id, successor.id)


@dataclass
class RegisterRow:
    """One claimed target on the register: public facts only, never a cluster's notes."""

    lead: Lead
    age_days: int
    protected_until: date
    protected: bool
    conflicts: list[Lead] = field(default_factory=list)
    pending: int = 0


def register_rows(
    session: Session, cluster_id: str | None = None, conflicts_only: bool = False, today: date | None = None
) -> list[RegisterRow]:
    """Every open first claim with its age, protection and the second claims competing with it."""
    today = today or utcnow().date()
    query = (
        select(Lead)
        .where(Lead.claim == CLAIM_FIRST, Lead.stage.not_in(CLOSED_STAGES))
        .options(selectinload(Lead.events))
        .order_by(Lead.created_at, Lead.id)
    )
    holders = list(session.scalars(query))
    seconds: dict[int, list[Lead]] = {}
    for other in session.scalars(select(Lead).where(Lead.claim == CLAIM_SECOND, Lead.stage.not_in(CLOSED_STAGES))):
        seconds.setdefault(other.claim_of_id or 0, []).append(other)
    pending: dict[int, int] = {}
    for holder_id in session.scalars(
        select(CoordinationRequest.holder_lead_id).where(CoordinationRequest.status == COORD_PENDING)
    ):
        pending[holder_id or 0] = pending.get(holder_id or 0, 0) + 1
    rows = []
    for lead in holders:
        conflicts = seconds.get(lead.id, [])
        if cluster_id and lead.cluster_id != cluster_id and all(c.cluster_id != cluster_id for c in conflicts):
            continue
        if conflicts_only and not conflicts:
            continue
        since = aware(lead.claim_since) or aware(lead.created_at)
        ends = protection_ends(lead)
        rows.append(
            RegisterRow(
                lead=lead,
                age_days=(today - since.date()).days,
                protected_until=ends,
                protected=ends >= today,
                conflicts=conflicts,
                pending=pending.get(lead.id, 0),
            )
        )
    return rows


def public_view(lead: Lead) -> dict:
    """What any staff member may see of another cluster's lead: who, since when, which stage — no notes."""
    owner = lead.owner
    return {
        "lead_id": lead.id,
        "cluster_id": lead.cluster_id,
        "cluster_name": lead.cluster.name,
        "enterprise_id": lead.enterprise_id,
        "enterprise_name": lead.enterprise.name,
        "owner_name": (owner.display_name or owner.username) if owner else "",
        "stage": lead.stage,
        "claim": lead.claim,
        "since": aware(lead.claim_since) or aware(lead.created_at),
    }
