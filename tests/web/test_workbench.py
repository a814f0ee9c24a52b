"""Home page as each role's workbench: overdue items, queues waiting for the user, biggest gaps; splash for visitors."""

from __future__ import annotations

from datetime import timedelta

import pytest

from chains.db import utcnow
from tests.worlds.clusters import CHAIN, CLUSTER_A, CLUSTER_B, build_app_world
from webapp.extensions import db
from webapp.leads.service import change_stage, create_lead


@pytest.fixture
def world(world_copy):
    return world_copy(build_app_world)


def _late_lead(app, world, cluster: str, firm: int, owner: int | None) -> int:
    with app.app_context():
        lead, _ = create_lead(db.session, cluster, firm, owner, CHAIN)
        change_stage(db.session, lead, "已接洽", owner, is_admin=True)
        db.session.flush()
        then = utcnow() - timedelta(days=10)
        lead.created_at = lead.claim_since = then
        for event in lead.events:
            event.at = then
        db.session.commit()
        return lead.id


def _user_id(app, username: str) -> int:
    from sqlalchemy import select

    from webapp.auth.models import User

    with app.app_context():
        return db.session.scalars(select(User.id).where(User.username == username)).one()


def test_anonymous_visitors_get_the_splash(client, world):
    html = client.get("/").get_data(as_text=True)
    assert "登录开始使用" in html and "工作台" not in html


def test_staff_workbench_shows_own_overdue_queues_and_gaps(app, auth, client, world):
    name = auth.login_as("staff", clusters=(CLUSTER_A,))
    mine = _late_lead(app, world, CLUSTER_A, world["candidate"], _user_id(app, name))
    _late_lead(app, world, CLUSTER_A, world["unplaced"], None)  # not the staff member's own
    _late_lead(app, world, CLUSTER_B, world["other"], None)  # another cluster
    html = client.get("/").get_data(as_text=True)
    assert "工作台" in html and "登录开始使用" not in html
    assert f'href="/leads/{mine}"' in html and "反馈企业" in html
    assert "待归位企业" not in html.split('id="wb-overdue"')[1].split("</section>")[0]
    assert "乙区企业" not in html and "乙集聚区" not in html
    assert "集聚区最大缺口" in html and f"/candidates/{CLUSTER_A}/" in html
    assert "1 家企业待归位" in html  # the cluster's unplaced roster firm


def test_manager_sees_the_clusters_overdue_and_admin_the_coordination_queue(app, auth, client, world):
    _late_lead(app, world, CLUSTER_A, world["unplaced"], None)
    auth.login_as("manager", clusters=(CLUSTER_A,))
    assert "待归位企业" in client.get("/").get_data(as_text=True).split('id="wb-waiting"')[0]
    auth.logout()
    with app.app_context():
        second, _ = create_lead(db.session, CLUSTER_B, world["unplaced"], None, CHAIN)
        from webapp.leads.claims import request_coordination

        request_coordination(db.session, second, None, "乙区已签意向")
        db.session.commit()
    auth.login_as("admin")
    html = client.get("/").get_data(as_text=True)
    assert "没有待裁定的协调申请" not in html and "乙集聚区 申请" in html


def test_firm_workbench_lists_its_requests(app, auth, client, world):
    auth.login_as("firm", enterprise_id=world["other"])
    html = client.get("/").get_data(as_text=True)
    assert "我的对接申请" in html and "逾期事项" not in html
