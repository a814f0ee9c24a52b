"""N张清单 as tables: each list's columns, its rows as shown, and exports (.xlsx/.csv files, download bytes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from chains.excel import csv_text, write_csv, write_xlsx, xlsx_bytes
from chains.lists import (
    LIST_KEY_TECH,
    LIST_LEADERS,
    LIST_PROJECTS,
    LIST_STRONG_LINKS,
    LIST_SUPPLIERS,
    LIST_TARGETS,
    LIST_TYPES,
    LIST_WEAK_LINKS,
    get_list,
)

# (data key, Chinese header) per list; 置顶 and 备注 are appended to every export.
COLUMNS: dict[str, list[tuple[str, str]]] = {
    LIST_LEADERS: [
        ("name", "企业名称"),
        ("role", "角色"),
        ("links", "所在环节"),
        ("industry", "所属行业"),
        ("region", "所在地区"),
        ("revenue_wan", "营业收入（万元）"),
        ("tags", "企业标签"),
    ],
    LIST_SUPPLIERS: [
        ("name", "企业名称"),
        ("links", "配套环节"),
        ("stages", "环节阶段"),
        ("industry", "所属行业"),
        ("region", "所在地区"),
        ("revenue_wan", "营业收入（万元）"),
        ("tags", "企业标签"),
    ],
    LIST_WEAK_LINKS: [
        ("name", "环节"),
        ("stage", "阶段"),
        ("parent", "上级环节"),
        ("status", "状态"),
        ("firms", "本地企业数"),
        ("key_tech", "卡脖子环节"),
        ("keywords", "关键词"),
    ],
    LIST_STRONG_LINKS: [
        ("name", "环节"),
        ("stage", "阶段"),
        ("status", "状态"),
        ("firms", "本地企业数"),
        ("revenue_wan", "本地企业营业收入合计（万元）"),
        ("top_firms", "代表企业"),
    ],
    LIST_TARGETS: [
        ("name", "企业名称"),
        ("link", "目标环节"),
        ("region", "所在地区"),
        ("industry", "所属行业"),
        ("tags", "企业标签"),
        ("added_by", "添加人"),
        ("added_at", "添加时间"),
    ],
    LIST_PROJECTS: [
        ("name", "项目名称"),
        ("enterprise", "实施企业"),
        ("link", "所属环节"),
        ("investment_wan", "投资额（万元）"),
        ("status", "项目状态"),
        ("year", "年份"),
    ],
    LIST_KEY_TECH: [
        ("name", "环节"),
        ("stage", "阶段"),
        ("key_tech_note", "技术说明"),
        ("covered", "本地是否覆盖"),
        ("firms", "本地企业数"),
        ("status", "状态"),
    ],
}


def list_table(session: Session, cluster_id: str, chain_id: str, list_type: str) -> tuple[list[str], list[list[Any]]]:
    """Chinese headers and rows of one list, as shown (序号 first, 置顶 and 备注 last)."""
    cols = COLUMNS[list_type]
    headers = ["序号"] + [h for _, h in cols] + ["置顶", "备注"]
    rows = []
    for n, entry in enumerate(get_list(session, cluster_id, chain_id, list_type), start=1):
        rows.append([n] + [entry.data.get(k) for k, _ in cols] + ["是" if entry.pinned else "", entry.note])
    return headers, rows


def export_lists(
    session: Session, cluster_id: str, chain_id: str, path: str, list_types: list[str] | None = None
) -> list[str]:
    """Write lists to `path`: .xlsx (one sheet per list) or .csv (one list; several lists → one
    file per list named `<stem>-<list>.csv`). Returns the written paths."""
    types = list_types or list(LIST_TYPES)
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix == ".xlsx":
        write_xlsx(target, [(LIST_TYPES[t], *list_table(session, cluster_id, chain_id, t)) for t in types])
        return [str(target)]
    if suffix == ".csv":
        if len(types) == 1:
            write_csv(target, *list_table(session, cluster_id, chain_id, types[0]))
            return [str(target)]
        written = []
        for t in types:
            out = target.with_name(f"{target.stem}-{t}.csv")
            write_csv(out, *list_table(session, cluster_id, chain_id, t))
            written.append(str(out))
        return written
    raise ValueError(f"不支持的导出格式：{suffix or path}（请使用 .xlsx 或 .csv）")


def list_xlsx_bytes(session: Session, cluster_id: str, chain_id: str, list_types: list[str] | None = None) -> bytes:
    """Workbook bytes (one sheet per list) for a download response."""
    types = list_types or list(LIST_TYPES)
    return xlsx_bytes([(LIST_TYPES[t], *list_table(session, cluster_id, chain_id, t)) for t in types])


def list_csv_text(session: Session, cluster_id: str, chain_id: str, list_type: str) -> str:
    return csv_text(*list_table(session, cluster_id, chain_id, list_type))
