"""首报首谈: first and second claims across clusters, protection, coordination requests, admin assignment."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from chains.db import utcnow
from chains.enterprise_models import Enterprise
from tests.worlds.clusters import CHAIN, CLUSTER_A, CLUSTER_B, XSS_NAME, build_app_world
from webapp.extensions import db
from webapp.leads.models import CLAIM_FIRST, CLAIM_SECOND, CoordinationRequest, Lead, LeadEvent

SECRET = "甲区内部备注：企业老板下周来访"


@pytest.fixture
def world(world_copy):
    return world_copy(build_app_world)


def _create(auth, firm: int, cluster: str, **kwargs):
    return auth.post("/leads/create", {"cluster_id": cluster, "chain_id": CHAIN, "enterprise_id": firm}, **kwargs)


def _lead(app, cluster: str, firm: int | None = None) -> Lead:
    with app.app_context():
        query = select(Lead).where(Lead.cluster_id == cluster)
        if firm is not None:
            query = query.where(Lead.enterprise_id == firm)
        lead = db.session.scalars(query.order_by(Lead.id.desc())).first()
        db.session.expunge_all()
        return lead


def _first_claim_in_a(app, auth, world, firm_key="candidate") -> Lead:
    """Staff of cluster A create a lead with private notes; then log out."""
    auth.login_as("staff", clusters=(CLUSTER_A,))
    _create(auth, world[firm_key], CLUSTER_A)
    lead = _lead(app, CLUSTER_A)
    auth.post(f"/leads/{lead.id}/edit", {"notes": SECRET, "next_step": SECRET})
    auth.post(f"/leads/{lead.id}/stage", {"stage": "已接洽"})
    auth.logout()
    return lead


def test_second_claim_sees_the_holder_but_not_its_notes(app, auth, world, client):
    first = _first_claim_in_a(app, auth, world)
    auth.login_as("staff", clusters=(CLUSTER_B,))
    response = _create(auth, world["candidate"], CLUSTER_B, follow_redirects=True)
    html = response.get_data(as_text=True)
    assert "甲集聚区" in html and "第二报" in html and "已接洽" in html
    assert SECRET not in html
    second = _lead(app, CLUSTER_B)
    assert second.claim == CLAIM_SECOND and second.claim_of_id == first.id
    assert _lead(app, CLUSTER_A).claim == CLAIM_FIRST
    register = client.get("/leads/register").get_data(as_text=True)
    assert "甲集聚区" in register and "乙集聚区" in register and SECRET not in register
    assert f'href="/leads/{first.id}"' not in register  # cluster B may not open cluster A's lead
    assert f'href="/firms/{first.enterprise_id}"' in register  # but may read the firm's profile
    assert client.get(f"/firms/{first.enterprise_id}").status_code == 200
    assert client.get(f"/leads/{first.id}").status_code == 403
    fragment = client.get("/leads/register?conflicts=1", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "<html" not in fragment and "乙集聚区" in fragment and SECRET not in fragment
    assert XSS_NAME not in register and "&lt;script&gt;" in register  # the firm name is escaped


def test_same_name_and_same_group_count_as_the_same_target(app, auth, world):
    with app.app_context():
        original = db.session.get(Enterprise, world["local"][0])
        twin = Enterprise(name=original.name, name_norm=original.name_norm, city="另一城市")
        parent = Enterprise(name="某集团有限公司", name_norm="某集团")
        db.session.add_all([twin, parent])
        db.session.flush()
        db.session.get(Enterprise, world["unplaced"]).parent_id = parent.id
        subsidiary = Enterprise(name="某集团子公司", name_norm="某集团子公司", parent_id=parent.id)
        db.session.add(subsidiary)
        db.session.commit()
        twin_id, subsidiary_id = twin.id, subsidiary.id
    auth.login_as("staff", clusters=(CLUSTER_A,))
    _create(auth, world["local"][0], CLUSTER_A)
    _create(auth, world["unplaced"], CLUSTER_A)
    auth.logout()
    auth.login_as("manager", clusters=(CLUSTER_B,))
    _create(auth, twin_id, CLUSTER_B)
    assert _lead(app, CLUSTER_B, twin_id).claim == CLAIM_SECOND
    _create(auth, subsidiary_id, CLUSTER_B)
    second = _lead(app, CLUSTER_B, subsidiary_id)
    assert second.claim == CLAIM_SECOND and second.claim_of_id == _lead(app, CLUSTER_A, world["unplaced"]).id


def test_a_claim_without_progress_for_the_protection_period_lapses(app, auth, world):
    first = _first_claim_in_a(app, auth, world)
    with app.app_context():
        lead = db.session.get(Lead, first.id)
        old = utcnow() - timedelta(days=app.config["CLAIM_PROTECTION_DAYS"] + 1)
        lead.created_at = lead.claim_since = old
        for event in lead.events:
            event.at = old
        db.session.commit()
    auth.login_as("staff", clusters=(CLUSTER_B,))
    _create(auth, world["candidate"], CLUSTER_B)
    assert _lead(app, CLUSTER_B).claim == CLAIM_FIRST
    lapsed = _lead(app, CLUSTER_A)
    assert lapsed.claim == CLAIM_SECOND and lapsed.claim_of_id == _lead(app, CLUSTER_B).id


def test_coordination_request_and_admin_decision(app, auth, world, client):
    first = _first_claim_in_a(app, auth, world)
    auth.login_as("staff", clusters=(CLUSTER_B,))
    _create(auth, world["candidate"], CLUSTER_B)
    second = _lead(app, CLUSTER_B)
    empty = auth.post(f"/leads/{second.id}/coordination", {"reason": " "})
    assert empty.status_code == 400 and "请填写协调理由" in empty.get_data(as_text=True)
    ok = auth.post(
        f"/leads/{second.id}/coordination", {"reason": "企业已与乙区签署意向书"}, headers={"HX-Request": "true"}
    )
    assert ok.status_code == 200 and "协调申请待裁定" in ok.get_data(as_text=True)
    again = auth.post(f"/leads/{second.id}/coordination", {"reason": "再次申请"})
    assert again.status_code == 400 and "已有待裁定" in again.get_data(as_text=True)
    with app.app_context():
        request_id = db.session.scalars(select(CoordinationRequest.id)).one()
    assert auth.post(f"/leads/coordination/{request_id}/decide", {"decision": "approve"}).status_code == 403
    auth.logout()
    auth.login_as("staff", clusters=(CLUSTER_A,))
    holder_side = client.get("/leads/coordination").get_data(as_text=True)
    assert (
        "乙集聚区" in holder_side and "企业已与乙区签署意向书" not in holder_side
    )  # the requester's reason stays private
    auth.logout()
    auth.login_as("admin")
    page = client.get("/leads/coordination").get_data(as_text=True)
    assert "企业已与乙区签署意向书" in page and "批准" in page
    bad = auth.post(f"/leads/coordination/{request_id}/decide", {"decision": "maybe"})
    assert bad.status_code == 400 and "请选择批准或驳回" in bad.get_data(as_text=True)
    decided = auth.post(
        f"/leads/coordination/{request_id}/decide",
        {"decision": "approve", "note": "乙区进展更实"},
        headers={"HX-Request": "true"},
    )
    assert decided.status_code == 200 and "已批准" in decided.get_data(as_text=True)
    assert auth.post(f"/leads/coordination/{request_id}/decide", {"decision": "reject"}).status_code == 400
    assert _lead(app, CLUSTER_B).claim == CLAIM_FIRST
    demoted = _lead(app, CLUSTER_A)
    assert demoted.claim == CLAIM_SECOND and demoted.claim_of_id == second.id
    with app.app_context():
        filed = db.session.get(CoordinationRequest, request_id)
        assert filed.status == "approved" and filed.decided_by_id and filed.decision_note == "乙区进展更实"
        fields = {e.field for e in db.session.scalars(select(LeadEvent).where(LeadEvent.lead_id == first.id))}
        assert {"claim", "coordination"} <= fields


def test_abandoning_the_first_claim_hands_it_to_the_second(app, auth, world):
    first = _first_claim_in_a(app, auth, world)
    auth.login_as("staff", clusters=(CLUSTER_B,))
    _create(auth, world["candidate"], CLUSTER_B)
    auth.logout()
    auth.login_as("staff", clusters=(CLUSTER_A,))
    auth.post(f"/leads/{first.id}/stage", {"stage": "放弃", "abandon_reason": "企业选择外省"})
    assert _lead(app, CLUSTER_B).claim == CLAIM_FIRST
    auth.post(f"/leads/{first.id}/stage", {"stage": "已接洽"})  # reopened: the claim stays with cluster B
    reopened = _lead(app, CLUSTER_A)
    assert reopened.claim == CLAIM_SECOND and reopened.claim_of_id == _lead(app, CLUSTER_B).id


def test_large_projects_wait_for_an_admin_assignment(app, auth, world, client):
    auth.login_as("staff", clusters=(CLUSTER_A,))
    _create(auth, world["candidate"], CLUSTER_A)
    lead = _lead(app, CLUSTER_A)
    threshold = app.config["ADMIN_ASSIGN_INVESTMENT_WAN"]
    assert auth.post(f"/leads/{lead.id}/edit", {"planned_investment_wan": "abc"}).status_code == 400
    auth.post(f"/leads/{lead.id}/edit", {"planned_investment_wan": str(threshold)})
    refused = auth.post(f"/leads/{lead.id}/stage", {"stage": "已接洽"})
    assert refused.status_code == 400 and "须由管理员指派负责人" in refused.get_data(as_text=True)
    staff_id = _lead(app, CLUSTER_A).owner_id
    auth.logout()
    auth.login_as("admin")
    auth.post(f"/leads/{lead.id}/edit", {"owner_id": "", "planned_investment_wan": str(threshold)})
    auth.post(f"/leads/{lead.id}/edit", {"owner_id": str(staff_id)})
    assert _lead(app, CLUSTER_A).assigned_by_id is not None
    auth.logout()
    auth.login_as("staff", clusters=(CLUSTER_A,))
    assert auth.post(f"/leads/{lead.id}/stage", {"stage": "已接洽"}).status_code == 302


def test_progress_entry_is_recorded_and_needs_text(app, auth, world):
    auth.login_as("staff", clusters=(CLUSTER_A,))
    _create(auth, world["candidate"], CLUSTER_A)
    lead = _lead(app, CLUSTER_A)
    assert auth.post(f"/leads/{lead.id}/progress", {"text": ""}).status_code == 400
    response = auth.post(f"/leads/{lead.id}/progress", {"text": "电话沟通扩产计划"}, headers={"HX-Request": "true"})
    assert response.status_code == 200 and "电话沟通扩产计划" in response.get_data(as_text=True)
    auth.logout()
    auth.login_as("staff", clusters=(CLUSTER_B,))
    assert auth.post(f"/leads/{lead.id}/progress", {"text": "越权"}).status_code == 403


def test_set_parent_command_records_the_group(app, world, runner):
    with app.app_context():
        child, parent = (db.session.get(Enterprise, world[k]) for k in ("unplaced", "other"))
        child.credit_code = "91370200MA3C5X1234"
        db.session.commit()
    result = runner.invoke(args=["firms", "set-parent", "91370200MA3C5X1234", str(world["other"])])
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert db.session.get(Enterprise, world["unplaced"]).parent_id == world["other"]
    assert runner.invoke(args=["firms", "set-parent", str(world["other"]), str(world["unplaced"])]).exit_code != 0
    assert runner.invoke(args=["firms", "set-parent", "nope"]).exit_code != 0
    assert runner.invoke(args=["firms", "set-parent", str(world["unplaced"])]).exit_code == 0
    with app.app_context():
        assert db.session.get(Enterprise, world["unplaced"]).parent_id is None
