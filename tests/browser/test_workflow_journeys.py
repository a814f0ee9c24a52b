"""Real-browser journeys of the lead workflow: a coordination request decided by an administrator, and the workbench."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.browser.conftest import PASSWORD, login, screenshot

pytestmark = pytest.mark.browser

SECRET = "首报方内部备注-浏览器"


def _user(server, name: str, role: str, clusters: tuple[str, ...]) -> None:
    from chains.cluster_models import Cluster
    from webapp.auth.models import User
    from webapp.extensions import db

    with server.app.app_context():
        if db.session.scalars(select(User).where(User.username == name)).first() is None:
            user = User(username=name, display_name=name, role=role)
            user.set_password(PASSWORD)
            user.clusters = [db.session.get(Cluster, c) for c in clusters]
            db.session.add(user)
            db.session.commit()
        db.session.remove()
    server.users[name] = name


def _other_cluster(server) -> str:
    from chains.cluster_models import Cluster
    from webapp.extensions import db

    with server.app.app_context():
        other = db.session.scalars(
            select(Cluster.id).where(Cluster.id != server.cluster_id).order_by(Cluster.id)
        ).first()
        db.session.remove()
        return other


def _firm_without_leads(server, offset: int) -> int:
    from chains.enterprise_models import Enterprise
    from webapp.extensions import db
    from webapp.leads.models import Lead

    with server.app.app_context():
        taken = select(Lead.enterprise_id)
        firm = db.session.scalars(
            select(Enterprise.id).where(Enterprise.id.not_in(taken)).order_by(Enterprise.id).offset(offset)
        ).first()
        db.session.remove()
        return firm


def test_second_claim_requests_coordination_and_admin_approves(page, live_server):
    from webapp.extensions import db
    from webapp.leads.service import create_lead, update_fields

    other = _other_cluster(live_server)
    _user(live_server, "browser-staff-b", "staff", (other,))
    _user(live_server, "browser-admin", "admin", ())
    firm = _firm_without_leads(live_server, 0)
    with live_server.app.app_context():
        first, _ = create_lead(db.session, live_server.cluster_id, firm, None)
        update_fields(db.session, first, {"notes": SECRET}, None)
        second, _ = create_lead(db.session, other, firm, None)
        db.session.commit()
        second_id = second.id
        db.session.remove()
    login(page, live_server, "browser-staff-b")
    page.goto(f"{live_server.url}/leads/{second_id}")
    claim = page.locator("#lead-claim")
    assert "第二报" in claim.inner_text() and "首报" in claim.inner_text()
    assert SECRET not in page.content()
    page.fill("#lead-claim textarea[name=reason]", "企业已与本区签署投资意向书")
    page.click("#lead-claim button:has-text('提出协调申请')")
    page.locator("#lead-claim", has_text="协调申请待裁定").wait_for()
    page.goto(f"{live_server.url}/leads/register")
    assert SECRET not in page.content() and "待裁定协调 1" in page.inner_text("#register-table")
    page.context.clear_cookies()
    login(page, live_server, "browser-admin")
    page.goto(f"{live_server.url}/")
    page.locator("#wb-waiting a", has_text=re.compile(".+")).first.wait_for()
    page.goto(f"{live_server.url}/leads/coordination")
    row = page.locator("tr", has_text="企业已与本区签署投资意向书")
    row.locator("input[name=note]").fill("意向书在先，改由申请方首谈")
    row.locator("button:has-text('批准')").click()  # htmx swaps the list
    page.locator("#coordination-list", has_text="已批准").wait_for()
    page.goto(f"{live_server.url}/leads/{second_id}")
    assert "首报登记：首报" in page.inner_text("#lead-claim")
    assert not page.js_errors, page.js_errors
    screenshot(page, "e_coordination_approved", "#lead-claim")


def test_staff_workbench_shows_overdue_and_clears_it_with_progress(page, live_server):
    from chains.db import utcnow
    from webapp.auth.models import User
    from webapp.extensions import db
    from webapp.leads.service import change_stage, create_lead

    firm = _firm_without_leads(live_server, 1)
    with live_server.app.app_context():
        staff = db.session.scalars(select(User).where(User.username == live_server.users["staff"])).one()
        lead, _ = create_lead(db.session, live_server.cluster_id, firm, staff.id)
        change_stage(db.session, lead, "已接洽", staff.id)
        db.session.flush()
        then = utcnow() - timedelta(days=10)
        lead.created_at = lead.claim_since = then
        for event in lead.events:
            event.at = then
        db.session.commit()
        lead_id, name = lead.id, lead.enterprise.name
        db.session.remove()
    login(page, live_server, "staff")
    page.goto(f"{live_server.url}/")
    overdue = page.locator("#wb-overdue")
    assert "工作台" in page.inner_text("h1") and name in overdue.inner_text() and "反馈企业" in overdue.inner_text()
    assert page.locator("#wb-gaps a", has_text="查看候选企业").count() > 0
    overdue.locator("a", has_text=name).first.click()
    page.wait_for_url(re.compile(rf"/leads/{lead_id}$"))
    assert "反馈企业" in page.inner_text("#lead-claim")
    page.fill("textarea[name=text]", "已向企业反馈园区政策")
    page.click("button:has-text('记录进展')")
    page.locator("table.history", has_text="已向企业反馈园区政策").wait_for()
    assert "反馈企业" not in page.inner_text("#lead-claim")
    page.goto(f"{live_server.url}/")
    page.locator("#wb-gaps a", has_text="查看候选企业").first.click()
    page.wait_for_url(re.compile(r"/candidates/"))
    assert not page.js_errors, page.js_errors
    screenshot(page, "f_workbench_candidates")
