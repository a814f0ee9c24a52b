"""招商分析报告 as a Word document (python-docx): cluster summary and policy rules, gaps by stage, the N lists,
top candidates per gap link with reasons, the lead pipeline and the 考核 figures, with charts as images."""

from __future__ import annotations

import io
import logging
from datetime import date
from typing import Any, Sequence

from docx import Document
from docx.shared import Cm, Pt
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from chains.chain_models import Chain
from chains.cluster_models import Cluster
from chains.evaluation import evaluate_cluster
from chains.gaps import STATUS_BLANK, STATUS_WEAK, STATUSES, analyze_chain
from chains.list_export import list_table
from chains.lists import LIST_TYPES
from webapp.leads import kpi
from webapp.leads.models import PIPELINE_STAGES, Lead
from webapp.leads.service import funnel_counts
from webapp.reports.charts import PALETTE, stacked_bars

logger = logging.getLogger("chainmatch.reports")

GAP_LINKS = 5  # gap links whose candidates the report lists
CANDIDATES_PER_LINK = 5
LIST_ROWS = 20  # rows per N list in the report
STATUS_COLORS = dict(zip(STATUSES, PALETTE))  # 空白 red, 薄弱 orange, 一般 grey, 优势 green
FONT = "宋体"


def _table(doc: Any, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A bordered table with a bold header row."""
    table = doc.add_table(rows=1, cols=len(headers))
    table.style = "Table Grid"
    for cell, text in zip(table.rows[0].cells, headers):
        cell.text = str(text)
        for run in cell.paragraphs[0].runs:
            run.bold = True
    for row in rows:
        cells = table.add_row().cells
        for cell, value in zip(cells, row):
            cell.text = _fmt(value)


def _fmt(value: Any) -> str:
    """A cell value as Chinese report text."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    return str(value)


def _picture(doc: Any, png: bytes, caption: str) -> None:
    """A chart image with its caption (the caption carries the labels)."""
    doc.add_picture(io.BytesIO(png), width=Cm(15))
    doc.add_paragraph(caption).runs[0].italic = True


def _with_note(explanation: str, note: str) -> str:
    return f"{explanation}{note}。" if note else explanation


def _summary(doc: Any, session: Session, cluster: Cluster, chain: Chain) -> None:
    """Section 1: where the cluster is and how it scores on the policy rules."""
    doc.add_heading("一、集聚区概况与政策规则评价", level=1)
    place = "".join(x for x in (cluster.province, cluster.city) if x)
    doc.add_paragraph(
        f"{cluster.name}位于{place or '（未登记地区）'}，类型：{cluster.cluster_type or '—'}，"
        f"面积：{_fmt(cluster.area_mu)} 亩。本报告分析产业链：{chain.name}。"
    )
    evaluation = evaluate_cluster(session, cluster.id)
    passed = {True: "达标", False: "未达标", None: "缺数据"}
    rows = [
        [
            r.name,
            r.value,
            r.unit,
            r.threshold,
            passed[r.passed],
            _with_note(r.explanation, evaluation.alternative_note(r)),
        ]
        for r in evaluation.rules
    ]
    doc.add_paragraph(f"政策规则评价（{evaluation.year or '无'} 年指标）：")
    _table(doc, ["指标", "数值", "单位", "门槛", "结论", "说明"], rows)


def _gaps(doc: Any, session: Session, cluster: Cluster, chain: Chain) -> list:
    """Section 2: link statuses by stage (chart and table); returns the blank and weak leaf links."""
    doc.add_heading("二、产业链图谱缺口（按环节阶段）", level=1)
    gap = analyze_chain(session, cluster.id, chain.id)
    stages = list(gap.stages)
    groups = [[gap.stages[s].counts.get(status, 0) for status in STATUSES] for s in stages]
    _picture(
        doc,
        stacked_bars(groups, [STATUS_COLORS[s] for s in STATUSES]),
        "图1 各阶段环节状态（自下而上："
        + "、".join(f"{s}（{c}）" for s, c in zip(STATUSES, PALETTE))
        + "；横轴依次为："
        + "、".join(stages)
        + "）",
    )
    _table(
        doc,
        ["阶段"] + list(STATUSES) + ["本地企业数"],
        [[s] + [gap.stages[s].counts.get(status, 0) for status in STATUSES] + [gap.stages[s].firms] for s in stages],
    )
    rate = gap.rollup.local_rate
    doc.add_paragraph(f"本地配套率：{'—' if rate is None else f'{rate * 100:.1f}%'}。")
    weak = [link for link in gap.links if link.is_leaf and link.status in (STATUS_BLANK, STATUS_WEAK)]
    weak.sort(key=lambda link: (link.status != STATUS_BLANK, not link.key_tech, link.firm_count, link.name))
    if weak:
        doc.add_paragraph("空白与薄弱环节：")
        _table(
            doc,
            ["阶段", "环节", "状态", "卡脖子", "本地企业数"],
            [[link.stage, link.name, link.status, link.key_tech, link.firm_count] for link in weak],
        )
    return weak


def _lists(doc: Any, session: Session, cluster: Cluster, chain: Chain) -> None:
    """Section 3: the N lists, first rows of each."""
    doc.add_heading("三、N张清单", level=1)
    for list_type, label in LIST_TYPES.items():
        headers, rows = list_table(session, cluster.id, chain.id, list_type)
        doc.add_heading(f"{label}（{len(rows)} 项）", level=2)
        if rows:
            _table(doc, headers[:-2], [r[:-2] for r in rows[:LIST_ROWS]])
            if len(rows) > LIST_ROWS:
                doc.add_paragraph(f"（仅列出前 {LIST_ROWS} 项，完整清单见系统导出。）")
        else:
            doc.add_paragraph("暂无。")


def _candidates(doc: Any, session: Session, cluster: Cluster, weak: list) -> None:
    """Section 4: top candidates of the biggest gap links with their reasons."""
    from webapp.services import match as matchsvc

    doc.add_heading("四、重点缺口环节的候选企业", level=1)
    if not weak:
        doc.add_paragraph("没有空白或薄弱环节。")
        return
    for link in weak[:GAP_LINKS]:
        doc.add_heading(f"{link.name}（{link.status}）", level=2)
        try:
            page = matchsvc.candidates(session, cluster.id, link.link_id, None, k=CANDIDATES_PER_LINK)
        except matchsvc.MatchError as exc:
            doc.add_paragraph(f"无法检索候选企业：{exc}")
            continue
        if page.message:
            doc.add_paragraph(page.message)
        if page.items:
            _table(
                doc,
                ["排名", "企业", "地区", "匹配度", "推荐理由"],
                [[c.rank, c.name, c.region, c.match_score, "；".join(c.explanation)] for c in page.items],
            )
        else:
            doc.add_paragraph("暂无候选企业。")


def _pipeline(doc: Any, session: Session, cluster: Cluster, chain: Chain) -> None:
    """Section 5: the lead funnel (chart and table) and the signed projects."""
    doc.add_heading("五、招商线索进展", level=1)
    leads = list(
        session.scalars(
            select(Lead)
            .where(Lead.cluster_id == cluster.id, Lead.chain_id == chain.id)
            .options(selectinload(Lead.events))
        )
    )
    funnel = funnel_counts(leads)
    _picture(
        doc,
        stacked_bars(
            [[row["current"], max(row["reached"] - row["current"], 0)] for row in funnel], ["#0b5cad", "#9fb3c8"]
        ),
        "图2 线索漏斗（深色：当前处于该阶段；浅色：已越过该阶段；横轴依次为：" + "、".join(PIPELINE_STAGES) + "）",
    )
    _table(doc, ["阶段", "到达该阶段", "当前处于该阶段"], [[r["stage"], r["reached"], r["current"]] for r in funnel])
    signed = [lead for lead in leads if lead.project is not None]
    if signed:
        doc.add_paragraph("签约项目：")
        _table(
            doc,
            ["企业", "阶段", "投资额（万元）", "用地（亩）", "签约日期", "开工日期", "到位资金（万元）"],
            [
                [
                    lead.enterprise.name,
                    lead.stage,
                    lead.project.investment_wan,
                    lead.project.land_mu,
                    lead.project.signed_on,
                    lead.project.started_on,
                    lead.project.funds_wan,
                ]
                for lead in signed
            ],
        )


def _kpi(doc: Any, session: Session, cluster: Cluster, period: kpi.Period) -> None:
    """Section 6: the 考核 figures of the period."""
    doc.add_heading(f"六、考核情况（{period.label}）", level=1)
    result = kpi.cluster_kpi(session, cluster.id, period)
    for sheet_name, headers, rows in kpi.kpi_sheets(result):
        doc.add_paragraph(sheet_name)
        _table(doc, headers, rows)


def build_report(
    session: Session, cluster_id: str, chain_id: str, period: kpi.Period | None = None, today: date | None = None
) -> bytes:
    """The whole 招商分析报告 as .docx bytes; KeyError for an unknown cluster or a chain not in the cluster."""
    cluster, chain = session.get(Cluster, cluster_id), session.get(Chain, chain_id)
    if cluster is None or chain is None or chain_id not in cluster.chain_ids:
        raise KeyError(f"{cluster_id}/{chain_id}")
    today = today or date.today()
    period = period or kpi.parse_period(kpi.current_quarter(today))
    doc = Document()
    style = doc.styles["Normal"]
    style.font.name, style.font.size = FONT, Pt(10.5)
    style.element.rPr.rFonts.set("{http://schemas.openxmlformats.org/wordprocessingml/2006/main}eastAsia", FONT)
    doc.add_heading(f"{cluster.name}·{chain.name}招商分析报告", level=0)
    doc.add_paragraph(f"生成日期：{today.isoformat()}　数据来源：产业链精准招商匹配平台")
    _summary(doc, session, cluster, chain)
    weak = _gaps(doc, session, cluster, chain)
    _lists(doc, session, cluster, chain)
    _candidates(doc, session, cluster, weak)
    _pipeline(doc, session, cluster, chain)
    _kpi(doc, session, cluster, period)
    buffer = io.BytesIO()
    doc.save(buffer)
    logger.info("report built for cluster %s chain %s (%d bytes)", cluster_id, chain_id, buffer.tell())
    return buffer.getvalue()
