"""考核 figures: periods, only register first claims counted once, per staff member, page, Excel, CLI and API."""

from __future__ import annotations

import io
import json
import re
from datetime import date, datetime, timezone
from html import unescape

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from tests.worlds.clusters import CHAIN, CLUSTER_A, CLUSTER_B, build_world
from webapp.extensions import db
from webapp.leads.kpi import PeriodError, cluster_kpi, parse_period
from webapp.leads.models import Lead, LeadEvent
from webapp.leads.projects import add_funding, save_project
from webapp.leads.service import change_stage, create_lead


def _at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(hour=9, tzinfo=timezone.utc)


def _user(name: str, cluster: str = CLUSTER_A) -> int:
    from chains.cluster_models import Cluster
    from webapp.auth.models import User

    user = User(username=name, display_name=name, role="staff", password_hash="x")
    user.clusters = [db.session.get(Cluster, cluster)]
    db.session.add(user)
    db.session.flush()
    return user.id


def _lead(
    cluster: str, firm: int, owner: int | None, created: str, moves: list[tuple[str, str]], link: str | None = None
) -> Lead:
    lead, _ = create_lead(db.session, cluster, firm, owner, CHAIN, link)
    lead.created_at = lead.claim_since = _at(created)
    for event in lead.events:
        event.at = _at(created)
    for stage, day in moves:
        change_stage(db.session, lead, stage, owner, is_admin=True)
        db.session.flush()
        latest = db.session.scalars(
            select(LeadEvent)
            .where(LeadEvent.lead_id == lead.id, LeadEvent.field == "stage")
            .order_by(LeadEvent.id.desc())
        ).first()
        latest.at = _at(day)
    db.session.flush()
    return lead


@pytest.fixture
def seeded(app):
    with app.app_context():
        world = build_world(db.session)
        first, second = _user("张三"), _user("李四")
        landed = _lead(
            CLUSTER_A,
            world["other"],
            first,
            "2026-10-05",
            [("已接洽", "2026-10-10"), ("实地考察", "2026-10-20"), ("签约", "2026-11-01")],
        )
        save_project(db.session, landed, {"investment_wan": 30000, "signed_on": date(2026, 11, 1)}, first)
        add_funding(db.session, landed, 5000, date(2026, 11, 15), "首期", first)
        add_funding(db.session, landed, 700, date(2026, 9, 15), "期外", first)
        change_stage(db.session, landed, "落地", first)
        db.session.flush()
        db.session.scalars(
            select(LeadEvent).where(LeadEvent.lead_id == landed.id, LeadEvent.new == "落地")
        ).one().at = _at("2026-12-01")
        _lead(CLUSTER_A, world["candidate"], second, "2026-10-02", [("已接洽", "2026-10-12")])
        _lead(CLUSTER_A, world["candidate"], second, "2026-10-03", [], link="tc-control")  # same firm: counted once
        _lead(CLUSTER_A, world["unplaced"], first, "2026-07-01", [])  # created before the period
        _lead(CLUSTER_B, world["local"][1], None, "2026-10-01", [])
        _lead(CLUSTER_A, world["local"][1], first, "2026-10-06", [])  # a second claim: not counted
        db.session.commit()
        return world


def test_periods_parse_and_reject_nonsense():
    assert parse_period("2026Q4").start == date(2026, 10, 1) and parse_period("2026q4").end == date(2026, 12, 31)
    assert parse_period("2026H1").end == date(2026, 6, 30) and parse_period("2026-02").end == date(2026, 2, 28)
    assert parse_period("2026").start == date(2026, 1, 1)
    for bad in ("2026Q5", "26Q1", "2026-13", ""):
        with pytest.raises(PeriodError):
            parse_period(bad)


def test_figures_count_register_leads_once(app, seeded):
    with app.app_context():
        result = cluster_kpi(db.session, CLUSTER_A, parse_period("2026Q4"), today=date(2026, 12, 5))
    totals = result["totals"]
    assert result["register_leads"] == 3
    assert (totals["created"], totals["leaders_contacted"], totals["visits"]) == (2, 1, 1)
    assert (totals["signed"], totals["signed_wan"], totals["landed"], totals["funds_wan"]) == (1, 30000, 1, 5000)
    by_name = {row["name"]: row for row in result["staff"]}
    assert by_name["张三"]["created"] == 1 and by_name["张三"]["signed"] == 1 and by_name["李四"]["created"] == 1
    first_step = result["conversion"][0]
    assert (first_step["base"], first_step["moved"], first_step["rate"]) == (3, 2, 0.6667)
    assert result["median_days"]["候选"] == 7.5 and result["median_days"]["签约"] == 30.0


def test_kpi_page_export_cli_and_api(app, seeded, auth, client, runner):
    auth.login_as("manager", clusters=(CLUSTER_A,))
    page = client.get(f"/leads/kpi?cluster={CLUSTER_A}&period=2026Q4")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "张三" in html and "30000" in html and "kpi-staff-chart" in html
    # The conversion chart plots percentages on an axis that ends at 100.
    spec = re.search(r'id="kpi-conversion-chart" data-chart="([^"]+)"', html).group(1)
    assert json.loads(unescape(spec))["max"] == 100
    # A period without register leads says so instead of drawing empty axes.
    empty = client.get(f"/leads/kpi?cluster={CLUSTER_A}&period=2025").get_data(as_text=True)
    assert "无图表可显示" in empty and "<canvas" not in empty
    bad = client.get(f"/leads/kpi?cluster={CLUSTER_A}&period=明年")
    assert bad.status_code == 400 and "考核期格式" in bad.get_data(as_text=True)
    assert client.get(f"/leads/kpi?cluster={CLUSTER_B}").status_code == 403
    export = client.get(f"/leads/kpi.xlsx?cluster={CLUSTER_A}&period=2026Q4")
    sheet = load_workbook(io.BytesIO(export.data))["考核汇总"]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0] == "人员" and rows[-1][0] == "合计" and rows[-1][5] == 30000
    result = runner.invoke(args=["kpi", "--cluster", CLUSTER_A, "--period", "2026Q4", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["totals"]["funds_wan"] == 5000
    assert runner.invoke(args=["kpi", "--cluster", "nope"]).exit_code != 0
    assert runner.invoke(args=["kpi", "--cluster", CLUSTER_A, "--period", "x"]).exit_code != 0
    from tests.worlds.api import Api, make_token

    api = Api(client, make_token(app, "staff", clusters=(CLUSTER_A,)))
    assert api.get(f"/clusters/{CLUSTER_A}/kpi?period=2026Q4").get_json()["totals"]["created"] == 2
    assert api.get(f"/clusters/{CLUSTER_B}/kpi").status_code == 403
    assert api.get(f"/clusters/{CLUSTER_A}/kpi?period=bad").status_code == 422
