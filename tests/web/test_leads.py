"""招商线索: create, stage changes with history, 放弃 needs a reason, overdue, export, access control, escaping."""

from __future__ import annotations

import io
from datetime import date, timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from tests.worlds.clusters import (
    CHAIN,
    CLUSTER_A,
    CLUSTER_B,
    XSS_NAME,
    XSS_NOTE,
    assert_htmx_indicators,
    build_app_world,
)
from webapp.extensions import db
from webapp.leads.models import Lead, LeadEvent


@pytest.fixture
def world(world_copy):
    return world_copy(build_app_world)


def _create(auth, world, cluster=CLUSTER_A, firm_key="candidate", link="tc-control", **kwargs):
    return auth.post(
        "/leads/create",
        {"cluster_id": cluster, "chain_id": CHAIN, "link_key": link, "enterprise_id": world[firm_key]},
        **kwargs,
    )


def _only_lead(app) -> int:
    with app.app_context():
        return db.session.scalars(select(Lead.id)).one()


def test_create_then_three_stage_changes_are_in_the_history(app, auth, world, client):
    auth.login_as("staff", clusters=(CLUSTER_A,))
    response = _create(auth, world)
    assert response.status_code == 302
    lead_id = _only_lead(app)
    for stage in ("已接洽", "实地考察", "洽谈"):
        assert auth.post(f"/leads/{lead_id}/stage", {"stage": stage}).status_code == 302
    with app.app_context():
        events = db.session.scalars(select(LeadEvent).where(LeadEvent.lead_id == lead_id).order_by(LeadEvent.id)).all()
        stage_moves = [(e.old, e.new) for e in events if e.field == "stage"]
        assert stage_moves == [("候选", "已接洽"), ("已接洽", "实地考察"), ("实地考察", "洽谈")]
        assert events[0].field == "created" and all(e.user_id for e in events)
        assert db.session.get(Lead, lead_id).stage == "洽谈"
    html = client.get(f"/leads/{lead_id}").get_data(as_text=True)
    assert "变更记录" in html and html.count("<td>阶段</td>") == 3
    assert assert_htmx_indicators(html) == 4  # stage, feedback, edit, progress forms


def test_lead_page_shows_the_firm_and_links_to_its_profile(app, auth, world, client):
    auth.login_as("staff", clusters=(CLUSTER_A,))
    _create(auth, world, firm_key="unplaced")
    html = client.get(f"/leads/{_only_lead(app)}").get_data(as_text=True)
    summary = html[html.find('class="small lead-firm"') :][:600]
    assert f'href="/firms/{world["unplaced"]}"' in summary
    assert "山东省青岛市" in summary and "存续" in summary and "主营产品：控制系统 软件" in summary
    assert client.get(f"/firms/{world['unplaced']}").status_code == 200


def test_board_without_leads_says_how_to_add_one_instead_of_an_empty_funnel(app, auth, world, client):
    auth.login_as("staff", clusters=(CLUSTER_A,))
    empty = client.get("/leads/").get_data(as_text=True)
    assert 'id="funnel-chart"' not in empty and "加入招商线索" in empty
    _create(auth, world)
    board = client.get("/leads/").get_data(as_text=True)
    assert 'id="funnel-chart"' in board and 'class="muted no-leads"' not in board
    filtered = client.get("/leads/", query_string={"stage": "签约"}).get_data(as_text=True)
    assert 'id="funnel-chart"' not in filtered and "没有符合条件的线索" in filtered


def test_creating_the_same_lead_twice_keeps_one(app, auth, world):
    auth.login_as("staff", clusters=(CLUSTER_A,))
    _create(auth, world)
    response = _create(auth, world, headers={"HX-Request": "true"})
    assert response.status_code == 200 and "已有进行中的招商线索" in response.get_data(as_text=True)
    with app.app_context():
        assert len(db.session.scalars(select(Lead)).all()) == 1


def test_htmx_create_returns_a_fragment(app, auth, world):
    auth.login_as("manager", clusters=(CLUSTER_A,))
    response = _create(auth, world, headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    assert response.status_code == 201
    assert "已加入招商线索" in html and "<html" not in html


def test_abandon_without_reason_is_rejected_in_chinese(app, auth, world):
    auth.login_as("staff", clusters=(CLUSTER_A,))
    _create(auth, world)
    lead_id = _only_lead(app)
    response = auth.post(f"/leads/{lead_id}/stage", {"stage": "放弃", "abandon_reason": "  "})
    assert response.status_code == 400
    assert "放弃线索必须填写放弃原因" in response.get_data(as_text=True)
    htmx = auth.post(f"/leads/{lead_id}/stage", {"stage": "放弃"}, headers={"HX-Request": "true"})
    assert htmx.status_code == 400 and "放弃线索必须填写放弃原因" in htmx.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Lead, lead_id).stage == "候选"
    ok = auth.post(f"/leads/{lead_id}/stage", {"stage": "放弃", "abandon_reason": "企业无扩产计划"})
    assert ok.status_code == 302
    with app.app_context():
        lead = db.session.get(Lead, lead_id)
        assert lead.stage == "放弃" and lead.abandon_reason == "企业无扩产计划"


def test_overdue_next_step_is_highlighted(app, auth, world, client):
    auth.login_as("staff", clusters=(CLUSTER_A,))
    _create(auth, world)
    _create(auth, world, firm_key="unplaced")
    with app.app_context():
        late, future = db.session.scalars(select(Lead).order_by(Lead.id)).all()
        late_id = late.id
    yesterday = (date.today() - timedelta(days=1)).isoformat()
    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    assert (
        auth.post(f"/leads/{late_id}/edit", {"next_step": "电话回访", "next_step_date": yesterday}).status_code == 302
    )
    auth.post(f"/leads/{late_id + 1}/edit", {"next_step": "上门拜访", "next_step_date": tomorrow})
    board = client.get("/leads/").get_data(as_text=True)
    assert board.count('class="lead-card overdue"') == 1 and "逾期" in board
    table = client.get("/leads/table?overdue=1").get_data(as_text=True)
    assert "电话回访" in table and "上门拜访" not in table and 'class="overdue"' in table
    with app.app_context():
        fields = {e.field for e in db.session.scalars(select(LeadEvent).where(LeadEvent.lead_id == late_id))}
        assert {"next_step", "next_step_date"} <= fields


def test_export_reads_back_with_chinese_headers_and_escaped_formulas(app, auth, world, client):
    auth.login_as("staff", clusters=(CLUSTER_A,))
    _create(auth, world)
    lead_id = _only_lead(app)
    auth.post(f"/leads/{lead_id}/edit", {"notes": '=HYPERLINK("http://x")'})
    response = client.get("/leads/export.xlsx")
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(response.data)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:3] == ("线索编号", "企业名称", "集聚区")
    header, first = rows[0], rows[1]
    assert first[1] == XSS_NAME and first[header.index("阶段")] == "候选"
    notes = rows[1][rows[0].index("备注")]
    assert not notes.startswith("=")


def test_export_is_a_call_list_with_the_firms_registered_contacts(app, auth, world, client):
    from chains.enterprise_models import Enterprise

    with app.app_context():
        firm = db.session.get(Enterprise, world["unplaced"])
        firm.legal_representative, firm.phone, firm.email = "王五", "0532-66668888", "=cmd|' /c calc'!A1"
        db.session.commit()
    auth.login_as("staff", clusters=(CLUSTER_A,))
    _create(auth, world, firm_key="unplaced")
    rows = list(load_workbook(io.BytesIO(client.get("/leads/export.xlsx").data)).active.iter_rows(values_only=True))
    contacts = dict(zip(rows[0], rows[1]))
    assert (contacts["企业名称"], contacts["法定代表人"], contacts["电话"]) == ("待归位企业", "王五", "0532-66668888")
    assert not contacts["邮箱"].startswith("=")  # a formula-like cell is escaped like every other


def test_manager_of_another_cluster_gets_403(app, auth, world, client):
    auth.login_as("staff", clusters=(CLUSTER_A,))
    _create(auth, world)
    lead_id = _only_lead(app)
    auth.logout()
    auth.login_as("manager", clusters=(CLUSTER_B,))
    assert client.get(f"/leads/{lead_id}").status_code == 403
    assert auth.post(f"/leads/{lead_id}/stage", {"stage": "已接洽"}).status_code == 403
    assert client.get(f"/leads/export.xlsx?cluster={CLUSTER_A}").status_code == 403
    assert _create(auth, world).status_code == 403
    # Unfiltered views only show the manager's own clusters.
    sheet = load_workbook(io.BytesIO(client.get("/leads/export.xlsx").data)).active
    assert sheet.max_row == 1
    assert XSS_NAME not in client.get("/leads/").get_data(as_text=True)


def test_firm_role_gets_403_everywhere(app, auth, world, client):
    auth.login_as("staff", clusters=(CLUSTER_A,))
    _create(auth, world)
    lead_id = _only_lead(app)
    auth.logout()
    auth.login_as("firm")
    for path in ("/leads/", "/leads/table", f"/leads/{lead_id}", "/leads/export.xlsx"):
        assert client.get(path).status_code == 403, path
    assert auth.post(f"/leads/{lead_id}/stage", {"stage": "已接洽"}).status_code == 403
    assert _create(auth, world).status_code == 403


def test_post_without_csrf_token_is_rejected(app, auth, world, client):
    auth.login_as("staff", clusters=(CLUSTER_A,))
    _create(auth, world)
    lead_id = _only_lead(app)
    response = client.post(f"/leads/{lead_id}/stage", data={"stage": "已接洽"})
    assert response.status_code == 400 and "CSRF" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Lead, lead_id).stage == "候选"


def test_firm_name_and_note_render_escaped(app, auth, world, client):
    auth.login_as("staff", clusters=(CLUSTER_A,))
    _create(auth, world)
    lead_id = _only_lead(app)
    auth.post(f"/leads/{lead_id}/edit", {"notes": XSS_NOTE, "next_step": XSS_NOTE})
    for path in (f"/leads/{lead_id}", "/leads/", "/leads/table"):
        html = client.get(path).get_data(as_text=True)
        assert XSS_NAME not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html, path
        assert "<img src=x" not in html, path


def test_feedback_and_contact_reach_the_matcher(app, auth, world, client):
    from chains.feedback_models import CandidateFeedback

    auth.login_as("staff", clusters=(CLUSTER_A,))
    _create(auth, world)
    lead_id = _only_lead(app)
    assert auth.post(f"/leads/{lead_id}/feedback", {"value": "relevant"}).status_code == 302
    auth.post(f"/leads/{lead_id}/stage", {"stage": "已接洽"})
    with app.app_context():
        assert db.session.get(Lead, lead_id).feedback == "relevant"
        assert any(e.field == "feedback" for e in db.session.get(Lead, lead_id).events)
        rows = db.session.scalars(select(CandidateFeedback).order_by(CandidateFeedback.id)).all()
        assert [(r.cluster_id, r.link_key, r.enterprise_id, r.label) for r in rows] == [
            (CLUSTER_A, "tc-control", world["candidate"], "relevant"),
            (CLUSTER_A, "tc-control", world["candidate"], "contacted"),
        ]


def test_owner_must_be_able_to_see_the_cluster(app, auth, world, client):
    outsider = auth.create_user("outsider", "staff", clusters=(CLUSTER_B,))
    colleague = auth.create_user("colleague", "manager", clusters=(CLUSTER_A,))
    auth.login_as("staff", clusters=(CLUSTER_A,))
    _create(auth, world)
    lead_id = _only_lead(app)
    detail = client.get(f"/leads/{lead_id}").get_data(as_text=True)
    assert f'<option value="{colleague}"' in detail and f'<option value="{outsider}"' not in detail
    refused = auth.post(f"/leads/{lead_id}/edit", {"owner_id": str(outsider)})
    assert refused.status_code == 400 and "负责人必须是有权访问该集聚区的账号" in refused.get_data(as_text=True)
    assert auth.post(f"/leads/{lead_id}/edit", {"owner_id": str(colleague)}).status_code == 302
    with app.app_context():
        lead = db.session.get(Lead, lead_id)
        assert lead.owner_id == colleague
        owner_event = [e for e in lead.events if e.field == "owner"][-1]
        assert owner_event.new == "colleague"
    table = client.get(f"/leads/table?owner={colleague}").get_data(as_text=True)
    assert "&lt;script&gt;" in table


def test_create_rejects_links_outside_the_chain_and_bad_ids(app, auth, world):
    auth.login_as("admin")
    response = _create(auth, world, link="other-chain-link")
    assert response.status_code == 400 and "该环节不属于所选产业链" in response.get_data(as_text=True)
    huge = auth.post("/leads/create", {"cluster_id": CLUSTER_A, "enterprise_id": "9" * 30})
    assert huge.status_code == 400
    assert (
        auth.post("/leads/create", {"cluster_id": "no-such-cluster", "enterprise_id": world["candidate"]}).status_code
        == 404
    )
    with app.app_context():
        assert db.session.scalars(select(Lead)).all() == []
