"""Stage clocks: working days, each clock's start and reset, configuration, overdue on pages, the digest command."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest

from chains.db import utcnow
from tests.conftest import make_app
from tests.worlds.clusters import CHAIN, CLUSTER_A, build_app_world, build_world
from webapp.extensions import db
from webapp.leads.deadlines import add_workdays, lead_clocks
from webapp.leads.models import Lead
from webapp.leads.service import add_progress, change_stage, create_lead, set_feedback


@pytest.fixture
def world(world_copy):
    return world_copy(build_app_world)


def _aged_lead(app, world, days: int, stage: str | None = None, firm: str = "candidate") -> int:
    """A lead created `days` ago (its history moved back too), optionally moved to `stage` then."""
    with app.app_context():
        firm_id = world[firm][0] if isinstance(world[firm], list) else world[firm]
        lead, _ = create_lead(db.session, CLUSTER_A, firm_id, None, CHAIN)
        lead.owner_id = None
        if stage:
            change_stage(db.session, lead, stage, None, is_admin=True)
        db.session.flush()
        then = utcnow() - timedelta(days=days)
        lead.created_at = lead.claim_since = then
        for event in lead.events:
            event.at = then
        db.session.commit()
        return lead.id


def _clock_names(app, lead_id: int, today: date | None = None) -> dict[str, bool]:
    with app.app_context():
        return {c.name: c.overdue for c in lead_clocks(db.session.get(Lead, lead_id), today)}


def test_working_days_skip_the_weekend():
    friday = date(2026, 12, 4)
    assert add_workdays(friday, 1) == date(2026, 12, 7)
    assert add_workdays(friday, 3) == date(2026, 12, 9)
    assert add_workdays(date(2026, 12, 7), 1) == date(2026, 12, 8)


def test_clocks_start_run_out_and_reset(app, world):
    fresh = _aged_lead(app, world, 0)
    assert _clock_names(app, fresh) == {"assessment": False}  # no owner yet: no first-response clock
    old = _aged_lead(app, world, 5, firm="unplaced")
    assert _clock_names(app, old) == {"assessment": True}
    with app.app_context():
        set_feedback(db.session, db.session.get(Lead, old), "relevant", None)
        db.session.commit()
    assert _clock_names(app, old) == {}
    contacted = _aged_lead(app, world, 8, "已接洽", firm="other")
    assert _clock_names(app, contacted)["firm_feedback"] is True
    with app.app_context():
        add_progress(db.session, db.session.get(Lead, contacted), "已向企业反馈园区政策", None)
        db.session.commit()
    assert "firm_feedback" not in _clock_names(app, contacted)
    talking = _aged_lead(app, world, 15, "洽谈", firm="local")
    assert _clock_names(app, talking) == {"progress": True}
    with app.app_context():
        add_progress(db.session, db.session.get(Lead, talking), "第二轮洽谈", None)
        db.session.commit()
    assert _clock_names(app, talking) == {"progress": False}


def test_first_response_counts_working_days_from_assignment(app, world):
    with app.app_context():
        user = _user(app)
        lead, _ = create_lead(db.session, CLUSTER_A, world["candidate"], user, CHAIN)
        db.session.commit()
        created = lead.created_at.date()
        clocks = {c.name: c for c in lead_clocks(lead, created)}
        assert clocks["first_response"].due == add_workdays(created, 1) and not clocks["first_response"].overdue
        late = {c.name: c.overdue for c in lead_clocks(lead, add_workdays(created, 1) + timedelta(days=1))}
        assert late["first_response"] is True
        change_stage(db.session, lead, "已接洽", user)
        assert "first_response" not in {c.name for c in lead_clocks(lead, created + timedelta(days=30))}


def _user(app) -> int:
    from webapp.auth.models import User

    user = User(username="owner", role="staff", password_hash="x")
    db.session.add(user)
    db.session.flush()
    return user.id


def test_clock_lengths_are_configuration(database_url, tmp_path):
    app = make_app(database_url, tmp_path, FIRM_FEEDBACK_DAYS=30, ASSESSMENT_DAYS=60)
    try:
        with app.app_context():
            world = build_world(db.session)
        contacted = _aged_lead(app, world, 8, "已接洽")
        assert _clock_names(app, contacted) == {"assessment": False, "firm_feedback": False}
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def test_overdue_items_show_on_the_pages_with_their_names(app, auth, world, client):
    late = _aged_lead(app, world, 8, "已接洽")
    _aged_lead(app, world, 0, firm="unplaced")
    auth.login_as("manager", clusters=(CLUSTER_A,))
    table = client.get("/leads/table?overdue=1").get_data(as_text=True)
    assert "逾期：研判、反馈企业" in table and "待归位企业" not in table
    detail = client.get(f"/leads/{late}").get_data(as_text=True)
    assert "办理时限" in detail and "反馈企业" in detail and "overdue-badge" in detail


def test_digest_command_prints_and_mails_when_configured(app, world, runner, monkeypatch):
    late = _aged_lead(app, world, 8, "已接洽")
    result = runner.invoke(args=["leads", "digest", "--no-mail"])
    assert result.exit_code == 0, result.output
    assert "共 1 条线索逾期" in result.output and "甲集聚区" in result.output and "反馈企业" in result.output
    as_json = json.loads(runner.invoke(args=["leads", "digest", "--json"]).output)
    assert as_json[0]["lead_id"] == late and {c["clock"] for c in as_json[0]["overdue"]} == {
        "assessment",
        "firm_feedback",
    }
    assert runner.invoke(args=["leads", "digest", "--date", "not-a-date"]).exit_code != 0
    sent = []

    class Smtp:  # a recording SMTP server stand-in; the database stays real
        def __init__(self, host, port, timeout):
            sent.append((host, port))

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def send_message(self, message):
            sent.append(message["To"])

    monkeypatch.setattr("smtplib.SMTP", Smtp)
    app.config.update(SMTP_HOST="mail.example", DIGEST_TO="a@example, b@example")
    mailed = runner.invoke(args=["leads", "digest"])
    assert mailed.exit_code == 0 and "已发送邮件" in mailed.output
    assert sent == [("mail.example", 25), "a@example, b@example"]


def test_register_command_lists_claims_as_json(app, world, runner):
    _aged_lead(app, world, 3)
    rows = json.loads(runner.invoke(args=["leads", "register"]).output)
    assert rows[0]["cluster_id"] == CLUSTER_A and rows[0]["age_days"] == 3 and "notes" not in rows[0]
    assert json.loads(runner.invoke(args=["leads", "register", "--conflicts"]).output) == []
