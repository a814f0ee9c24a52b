"""The candidates of a link as a spreadsheet (导出 Excel): the list staff take to visits and meetings."""

from __future__ import annotations

from typing import Any, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from chains.enterprise_models import Enterprise
from chains.enterprises.rows import DEMO_MARK, SYNTHETIC_MARK
from webapp.services.match.results import Candidate

EXPORT_ROWS = 200  # candidates in one export: ten pages, more than a gap's visit list ever holds
EXPORT_HEADERS = [
    "排名",
    "企业名称",
    "匹配度",
    "证据",
    "匹配理由",
    "地区",
    "登记状态",
    "企业标签",
    "主营产品",
    "所属行业",
    "注册资本（万元）",
    "成立日期",
    "法定代表人",
    "电话",
    "邮箱",
    "本环节招商线索",
    "数据标注",
]


def data_mark(firm: Enterprise | None) -> str:
    """演示数据 / 合成数据, as the pages badge such firms."""
    if firm is None:
        return ""
    return SYNTHETIC_MARK if firm.is_synthetic else DEMO_MARK if firm.is_demo else ""


def candidate_rows(session: Session, items: Sequence[Candidate], lead_stages: dict[int, str]) -> list[list[Any]]:
    """One row per candidate, in rank order; `lead_stages`: the stage of the open lead on this link, by firm."""
    ids = [c.enterprise_id for c in items]
    firms = {e.id: e for e in session.scalars(select(Enterprise).where(Enterprise.id.in_(ids)))} if ids else {}
    rows = []
    for c in items:
        firm = firms.get(c.enterprise_id)
        rows.append(
            [
                c.rank,
                c.name,
                c.match_score,
                c.evidence_label,
                "；".join(c.explanation),
                c.region,
                c.status,
                "、".join(c.tags),
                firm.main_products if firm else "",
                firm.industry_name if firm else "",
                firm.capital_wan_cny if firm else None,
                firm.founded_on if firm else None,
                firm.legal_representative if firm else "",
                firm.phone if firm else "",
                firm.email if firm else "",
                lead_stages.get(c.enterprise_id, ""),
                data_mark(firm),
            ]
        )
    return rows
