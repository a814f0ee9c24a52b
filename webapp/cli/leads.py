"""`chainmatch leads …`: the daily overdue digest and the shared target register from the command line."""

from __future__ import annotations

import json
import logging
import smtplib
from datetime import date
from email.message import EmailMessage

import click
from flask import current_app
from flask.cli import with_appcontext

from webapp.extensions import db

logger = logging.getLogger("chainmatch.leads")


@click.group("leads")
def leads_group() -> None:
    """招商线索: overdue digest and the shared target register."""


def send_digest(lines: list[str], today: date) -> bool:
    """E-mail the digest when SMTP_HOST and DIGEST_TO are configured; returns whether it was sent."""
    config = current_app.config
    recipients = [a.strip() for a in str(config.get("DIGEST_TO", "")).split(",") if a.strip()]
    if not config.get("SMTP_HOST") or not recipients:
        return False
    message = EmailMessage()
    message["Subject"] = f"招商线索逾期日报 {today.isoformat()}"
    message["From"] = config.get("DIGEST_FROM") or "chainmatch@localhost"
    message["To"] = ", ".join(recipients)
    message.set_content("\n".join(lines))
    with smtplib.SMTP(config["SMTP_HOST"], int(config.get("SMTP_PORT") or 25), timeout=30) as smtp:
        smtp.send_message(message)
    logger.info("digest sent to %d recipients", len(recipients))
    return True


@leads_group.command("digest")
@click.option("--date", "on", default="", help="Day of the digest, YYYY-MM-DD (default today).")
@click.option("--json", "as_json", is_flag=True, help="Print the overdue items as JSON.")
@click.option("--no-mail", is_flag=True, help="Do not e-mail even when SMTP is configured.")
@with_appcontext
def digest(on: str, as_json: bool, no_mail: bool) -> None:
    """Print the daily digest of overdue lead clocks; e-mail it when SMTP is configured.

    The overdue stage clocks (首次响应, 研判, 反馈企业, 洽谈进展, 下一步) by cluster and owner; e-mailed to CHAINMATCH_DIGEST_TO when
    CHAINMATCH_SMTP_HOST is set (never required). Run it from cron each morning.
    """
    from webapp.leads.deadlines import digest_lines, open_leads, overdue_items

    try:
        today = date.fromisoformat(on) if on else date.today()
    except ValueError:
        raise click.ClickException("日期格式应为 YYYY-MM-DD") from None
    if as_json:
        items = overdue_items(open_leads(db.session), today)
        click.echo(
            json.dumps(
                [
                    {
                        "lead_id": lead.id,
                        "cluster_id": lead.cluster_id,
                        "enterprise": lead.enterprise.name,
                        "stage": lead.stage,
                        "owner_id": lead.owner_id,
                        "overdue": [{"clock": c.name, "label": c.label, "due": c.due.isoformat()} for c in late],
                    }
                    for lead, late in items
                ],
                ensure_ascii=False,
                indent=2,
            )
        )
        return
    lines = digest_lines(db.session, today)
    click.echo("\n".join(lines))
    if not no_mail:
        try:
            if send_digest(lines, today):
                click.echo("（已发送邮件）")
        except (OSError, smtplib.SMTPException) as exc:
            logger.warning("digest e-mail failed: %s", exc)
            raise click.ClickException(f"邮件发送失败：{exc}") from None


@leads_group.command("register")
@click.option("--conflicts", is_flag=True, help="Only firms with competing (second) claims.")
@with_appcontext
def register(conflicts: bool) -> None:
    """Print the shared target register as JSON (holders, stages, ages, conflicts; never notes)."""
    from webapp.leads.claims import register_rows

    rows = register_rows(db.session, conflicts_only=conflicts)
    click.echo(
        json.dumps(
            [
                {
                    "enterprise_id": r.lead.enterprise_id,
                    "enterprise": r.lead.enterprise.name,
                    "holder_lead_id": r.lead.id,
                    "cluster_id": r.lead.cluster_id,
                    "stage": r.lead.stage,
                    "age_days": r.age_days,
                    "protected_until": r.protected_until.isoformat(),
                    "protected": r.protected,
                    "conflicts": [{"lead_id": c.id, "cluster_id": c.cluster_id, "stage": c.stage} for c in r.conflicts],
                    "pending_coordination": r.pending,
                }
                for r in rows
            ],
            ensure_ascii=False,
            indent=2,
        )
    )


@click.command("kpi")
@click.option("--cluster", "cluster_id", required=True, help="Cluster id.")
@click.option("--period", default="", help="2026, 2026Q4, 2026H1 or 2026-11 (default the current quarter).")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@click.option("--out", default="", help="Also write the figures to this .xlsx file.")
@with_appcontext
def kpi_command(cluster_id: str, period: str, as_json: bool, out: str) -> None:
    """考核 figures of a cluster for a period: per staff member and in total, conversion, median days per stage.

    Periods: 2026, 2026Q4, 2026H1, 2026-11 (default the current quarter). Leads created, 龙头/链主 firms contacted,
    visits, signed count and amount, landed count and 到位资金, overdue. Only the register's first claims count, each
    firm once.
    """
    from chains.cluster_models import Cluster
    from chains.excel import xlsx_bytes
    from webapp.leads import kpi

    if db.session.get(Cluster, cluster_id) is None:
        raise click.ClickException(f"集聚区 {cluster_id} 不存在 (unknown cluster)")
    try:
        chosen = kpi.parse_period(period or kpi.current_quarter(date.today()))
    except kpi.PeriodError as exc:
        raise click.ClickException(str(exc)) from None
    result = kpi.cluster_kpi(db.session, cluster_id, chosen)
    if out:
        with open(out, "wb") as fh:
            fh.write(xlsx_bytes(kpi.kpi_sheets(result)))
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False, indent=2))
        return
    click.echo(f"{result['cluster_name']} {result['period']}（{result['start']} 至 {result['end']}）")
    for key, label in kpi.METRICS.items():
        click.echo(f"  {label}：{result['totals'][key]:g}")


COMMANDS = [leads_group, kpi_command]
