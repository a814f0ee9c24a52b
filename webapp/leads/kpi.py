"""考核 figures per cluster, staff member and period, counted from the register's first claims (each target once)."""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from chains.cluster_models import Cluster, RosterEntry
from chains.enterprise_models import EnterpriseTag
from webapp.leads.claims import aware
from webapp.leads.deadlines import overdue_labels
from webapp.leads.models import (
    CLAIM_FIRST,
    PIPELINE_STAGES,
    STAGE_CONTACTED,
    STAGE_LANDED,
    STAGE_SIGNED,
    STAGE_VISIT,
    Lead,
)

LEADER_ROLES = ("龙头", "链主")  # roster roles and firm tags that make a firm a 龙头/链主 target
METRICS = {
    "created": "新增线索",
    "leaders_contacted": "接洽龙头/链主企业",
    "visits": "实地考察",
    "signed": "签约项目数",
    "signed_wan": "签约投资额（万元）",
    "landed": "落地项目数",
    "funds_wan": "到位资金（万元）",
    "overdue": "逾期线索",
}
_PERIOD = re.compile(r"^(\d{4})(?:(Q[1-4])|(H[12])|-(\d{2}))?$")


class PeriodError(ValueError):
    """A period that cannot be read; the message is shown to the user (Chinese)."""


@dataclass(frozen=True)
class Period:
    label: str
    start: date
    end: date  # inclusive

    def contains(self, moment: datetime | date | None) -> bool:
        """Whether a moment falls within the period (None never does)."""
        if moment is None:
            return False
        day = moment.date() if isinstance(moment, datetime) else moment
        return self.start <= day <= self.end


def parse_period(text: str) -> Period:
    """`2026`, `2026Q4`, `2026H1` or `2026-11` → the period's first and last day."""
    match = _PERIOD.match((text or "").strip().upper())
    if not match:
        raise PeriodError("考核期格式应为 2026、2026Q4、2026H1 或 2026-11")
    year = int(match.group(1))
    if match.group(2):
        first_month, months = (int(match.group(2)[1]) - 1) * 3 + 1, 3
    elif match.group(3):
        first_month, months = (int(match.group(3)[1]) - 1) * 6 + 1, 6
    elif match.group(4):
        first_month, months = int(match.group(4)), 1
        if not 1 <= first_month <= 12:
            raise PeriodError("月份应在 01–12 之间")
    else:
        first_month, months = 1, 12
    start = date(year, first_month, 1)
    end_month = first_month + months
    end = (date(year + 1, 1, 1) if end_month > 12 else date(year, end_month, 1)) - timedelta(days=1)
    return Period(text.strip().upper(), start, end)


def current_quarter(today: date) -> str:
    """`2026Q4` for a day in October–December 2026."""
    return f"{today.year}Q{(today.month - 1) // 3 + 1}"


def register_leads(session: Session, cluster_id: str) -> list[Lead]:
    """The cluster's leads that hold the register's first claim, one per target firm (the earliest)."""
    query = (
        select(Lead)
        .where(Lead.cluster_id == cluster_id, Lead.claim == CLAIM_FIRST)
        .options(selectinload(Lead.events))
        .order_by(Lead.created_at, Lead.id)
    )
    seen: dict[int, Lead] = {}
    for lead in session.scalars(query):
        seen.setdefault(lead.enterprise_id, lead)
    return list(seen.values())


def leader_firms(session: Session) -> set[int]:
    """Firms that are a 龙头 on some roster, a cluster's chain leader, or tagged 龙头/链主."""
    ids = set(session.scalars(select(RosterEntry.enterprise_id).where(RosterEntry.role.in_(LEADER_ROLES))))
    ids |= {i for i in session.scalars(select(Cluster.chain_leader_id)) if i}
    ids |= set(session.scalars(select(EnterpriseTag.enterprise_id).where(EnterpriseTag.tag.in_(LEADER_ROLES))))
    return ids


def reached_at(lead: Lead, stage: str) -> datetime | None:
    """When the lead first reached `stage` or a later pipeline stage."""
    index = PIPELINE_STAGES.index(stage)
    if index == 0:
        return aware(lead.created_at)
    times = [
        aware(e.at)
        for e in lead.events
        if e.field == "stage" and e.new in PIPELINE_STAGES and PIPELINE_STAGES.index(e.new) >= index
    ]
    return min(times) if times else None


def stage_stays(lead: Lead) -> list[tuple[str, datetime, datetime]]:
    """(stage, entered, left) for every finished stay of the lead in a pipeline stage."""
    stays, stage, since = [], PIPELINE_STAGES[0], aware(lead.created_at)
    for event in sorted((e for e in lead.events if e.field == "stage"), key=lambda e: (aware(e.at), e.id)):
        if stage in PIPELINE_STAGES and since is not None:
            stays.append((stage, since, aware(event.at)))
        stage, since = event.new, aware(event.at)
    return stays


def _figures(leads: list[Lead], period: Period, leaders: set[int], today: date) -> dict:
    """The counted figures of a set of leads for one period."""
    figures = {key: 0 for key in METRICS}
    for lead in leads:
        figures["created"] += period.contains(aware(lead.created_at))
        if lead.enterprise_id in leaders:
            figures["leaders_contacted"] += period.contains(reached_at(lead, STAGE_CONTACTED))
        figures["visits"] += period.contains(reached_at(lead, STAGE_VISIT))
        project = lead.project
        if period.contains(reached_at(lead, STAGE_SIGNED)):
            figures["signed"] += 1
            figures["signed_wan"] += (project.investment_wan or 0.0) if project else 0.0
        figures["landed"] += period.contains(reached_at(lead, STAGE_LANDED))
        if project is not None:
            figures["funds_wan"] += sum(f.amount_wan for f in project.funds if period.contains(f.received_on))
        figures["overdue"] += bool(overdue_labels(lead, today))
    return figures


def conversion(leads: list[Lead], period: Period) -> list[dict]:
    """Of the leads that reached a stage by the period's end, the share that reached the next one."""
    out = []
    for earlier, later in zip(PIPELINE_STAGES, PIPELINE_STAGES[1:]):
        base = [lead for lead in leads if (t := reached_at(lead, earlier)) is not None and t.date() <= period.end]
        moved = [lead for lead in base if (t := reached_at(lead, later)) is not None and t.date() <= period.end]
        out.append(
            {
                "from": earlier,
                "to": later,
                "base": len(base),
                "moved": len(moved),
                "rate": round(len(moved) / len(base), 4) if base else None,
            }
        )
    return out


def median_days(leads: list[Lead], period: Period) -> dict[str, float | None]:
    """Median days spent in each stage, over stays that ended within the period."""
    stays: dict[str, list[float]] = {stage: [] for stage in PIPELINE_STAGES[:-1]}
    for lead in leads:
        for stage, entered, left in stage_stays(lead):
            if stage in stays and period.contains(left):
                stays[stage].append((left - entered).total_seconds() / 86400)
    return {stage: round(statistics.median(days), 1) if days else None for stage, days in stays.items()}


def cluster_kpi(session: Session, cluster_id: str, period: Period, today: date | None = None) -> dict:
    """Every 考核 figure of a cluster for a period: totals, per staff member, conversion, median days per stage."""
    from webapp.auth.models import User

    today = today or date.today()
    leads = register_leads(session, cluster_id)
    leaders = leader_firms(session)
    by_owner: dict[int | None, list[Lead]] = {}
    for lead in leads:
        by_owner.setdefault(lead.owner_id, []).append(lead)
    staff = []
    for owner_id, owned in sorted(by_owner.items(), key=lambda item: (item[0] is None, item[0] or 0)):
        user = session.get(User, owner_id) if owner_id else None
        name = (user.display_name or user.username) if user else "未指定负责人"
        staff.append({"user_id": owner_id, "name": name, **_figures(owned, period, leaders, today)})
    cluster = session.get(Cluster, cluster_id)
    return {
        "cluster_id": cluster_id,
        "cluster_name": cluster.name if cluster else cluster_id,
        "period": period.label,
        "start": period.start.isoformat(),
        "end": period.end.isoformat(),
        "register_leads": len(leads),
        "totals": _figures(leads, period, leaders, today),
        "staff": staff,
        "conversion": conversion(leads, period),
        "median_days": median_days(leads, period),
    }


def kpi_sheets(result: dict) -> list[tuple[str, list[str], list[list]]]:
    """The figures as workbook sheets (name, headers, rows) for chains.excel.xlsx_bytes."""
    keys = list(METRICS)
    staff_rows = [[row["name"]] + [row[k] for k in keys] for row in result["staff"]]
    staff_rows.append(["合计"] + [result["totals"][k] for k in keys])
    conv = [
        [c["from"], c["to"], c["base"], c["moved"], c["rate"] if c["rate"] is not None else ""]
        for c in result["conversion"]
    ]
    days = [[stage, value if value is not None else ""] for stage, value in result["median_days"].items()]
    return [
        ("考核汇总", ["人员"] + [METRICS[k] for k in keys], staff_rows),
        ("阶段转化", ["阶段", "下一阶段", "到达数", "转入数", "转化率"], conv),
        ("阶段用时", ["阶段", "中位天数"], days),
    ]
