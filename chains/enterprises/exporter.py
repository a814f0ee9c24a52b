"""Export the enterprise registry as CSV or XLSX in the import's Chinese header format (re-importable).

Cells that begin with = + - @ (or a tab/CR) are prefixed with an apostrophe so spreadsheet programs do not
evaluate them as formulas (CSV/formula injection); the importer strips that apostrophe again.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any, Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session

from chains.enterprise_models import Enterprise
from chains.enterprises.capital import format_capital
from chains.excel import safe_cell

EXPORT_BATCH = 2000

EXPORT_HEADER = [
    "外部编号",
    "企业名称",
    "统一社会信用代码",
    "登记状态",
    "成立日期",
    "注册资本",
    "省份",
    "城市",
    "区县",
    "注册地址",
    "法定代表人",
    "电话",
    "邮箱",
    "网址",
    "国标行业代码",
    "所属行业",
    "经营范围",
    "主营产品",
    "企业标签",
    "参保人数",
    "营业收入",
    "曾用名",
    "国家",
    "数据说明",
]


def _number(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.6f}".rstrip("0").rstrip(".")


def _rows(session: Session) -> Iterator[list[Any]]:
    last_id = 0
    while True:
        batch = session.scalars(
            select(Enterprise).where(Enterprise.id > last_id).order_by(Enterprise.id).limit(EXPORT_BATCH)
        ).all()
        if not batch:
            return
        for e in batch:
            industry_code = e.industry_section + (e.industry_class or e.industry_group or e.industry_division)
            yield [
                e.external_id or "",
                e.name,
                e.credit_code or "",
                e.status_raw or e.status,
                e.founded_on.isoformat() if e.founded_on else "",
                format_capital(e.capital_amount, e.capital_currency),
                e.province,
                e.city,
                e.district,
                e.address,
                e.legal_representative,
                e.phone,
                e.email,
                e.website,
                industry_code,
                e.industry_name,
                e.business_scope,
                e.main_products,
                "；".join(e.tag_names),
                "" if e.employees is None else str(e.employees),
                _number(e.revenue_wan) + ("万元" if e.revenue_wan is not None else ""),
                "；".join(e.former_names or []),
                e.country,
                e.data_note,
            ]
        last_id = batch[-1].id
        for e in batch:
            session.expunge(e)  # keep memory flat on large registries


def export_enterprises(session: Session, path: str | os.PathLike[str]) -> int:
    """Write every enterprise to `path` (.csv: UTF-8 with BOM; .xlsx); returns the number of rows."""
    suffix = Path(path).suffix.lower()
    count = 0
    if suffix == ".csv":
        with open(path, "w", encoding="utf-8-sig", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(EXPORT_HEADER)
            for row in _rows(session):
                writer.writerow([safe_cell(c) for c in row])
                count += 1
    elif suffix == ".xlsx":
        from openpyxl import Workbook

        workbook = Workbook(write_only=True)
        sheet = workbook.create_sheet("企业")
        sheet.append(EXPORT_HEADER)
        for row in _rows(session):
            # Everything is written as text, so openpyxl never turns a leading '=' into a formula.
            sheet.append([safe_cell(c) for c in row])
            count += 1
        workbook.save(path)
    else:
        raise ValueError(f"不支持的导出格式“{suffix}”：请使用 .csv 或 .xlsx")
    return count
