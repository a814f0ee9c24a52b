"""`chainmatch report CLUSTER_ID --chain CHAIN_ID --out FILE.docx`: the 招商分析报告 as a Word document."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from webapp.extensions import db


@click.command("report")
@click.argument("cluster_id")
@click.option("--chain", "chain_id", required=True, help="Chain id (one of the cluster's chains).")
@click.option("--out", required=True, help="Output .docx file.")
@click.option("--period", default="", help="考核 period, e.g. 2026Q4 (default the current quarter).")
@with_appcontext
def report_command(cluster_id: str, chain_id: str, out: str, period: str) -> None:
    """Write the 招商分析报告 of CLUSTER_ID's chain (summary, rules, gaps, N lists, candidates, pipeline, 考核).

    A Word document (python-docx), in Chinese: cluster summary and policy-rule table, the chain map's gaps by stage
    (chart), the N lists, the top candidates of the biggest gap links with their reasons, the lead pipeline (chart)
    and signed projects, and the 考核 figures. The cluster page has the same report as a download button.
    """
    from webapp.leads import kpi
    from webapp.reports.docx_report import build_report
    from webapp.services import match as matchsvc

    try:
        chosen = kpi.parse_period(period) if period else None
    except kpi.PeriodError as exc:
        raise click.ClickException(str(exc)) from None
    matchsvc.sync(db.session)  # the CLI may wait for the match index so the candidate tables are filled
    try:
        data = build_report(db.session, cluster_id, chain_id, chosen)
    except KeyError:
        raise click.ClickException(
            f"集聚区 {cluster_id} 或其产业链 {chain_id} 不存在 (unknown cluster or chain)"
        ) from None
    with open(out, "wb") as fh:
        fh.write(data)
    click.echo(f"已生成报告：{out}（{len(data)} 字节）")


COMMANDS = [report_command]
