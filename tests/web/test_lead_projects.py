"""Project facts from 签约: facts and 到位资金 with history, waiting states with ages, what-if on the indicators."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from tests.worlds.clusters import CHAIN, CLUSTER_A, CLUSTER_B, build_app_world
from webapp.extensions import db
from webapp.leads.models import Lead, LeadEvent, LeadProject
from webapp.leads.projects import project_state, what_if


@pytest.fixture
def world(world_copy):
    return world_copy(build_app_world)


def _signed_lead(app, auth, world) -> int:
    auth.login_as("staff", clusters=(CLUSTER_A,))
    auth.post("/leads/create", {"cluster_id": CLUSTER_A, "chain_id": CHAIN, "enterprise_id": world["candidate"]})
    with app.app_context():
        lead_id = db.session.scalars(select(Lead.id)).one()
    auth.post(f"/leads/{lead_id}/stage", {"stage": "签约"})
    return lead_id


def test_project_needs_a_signed_lead_and_valid_facts(app, auth, world):
    auth.login_as("staff", clusters=(CLUSTER_A,))
    auth.post("/leads/create", {"cluster_id": CLUSTER_A, "chain_id": CHAIN, "enterprise_id": world["candidate"]})
    with app.app_context():
        lead_id = db.session.scalars(select(Lead.id)).one()
    early = auth.post(f"/leads/{lead_id}/project", {"investment_wan": "1000"})
    assert early.status_code == 400 and "签约" in early.get_data(as_text=True)
    auth.post(f"/leads/{lead_id}/stage", {"stage": "签约"})
    for form, message in (
        ({"investment_wan": "很多"}, "金额应为数字"),
        ({"eia_class": "随便"}, "环评类别"),
        ({"signed_on": "2026-10-01", "started_on": "2026-09-01"}, "开工日期不能早于签约日期"),
        ({"signed_on": "2026-10-01", "producing_on": "2026-12-01"}, "请先填写开工日期"),
    ):
        response = auth.post(f"/leads/{lead_id}/project", form)
        assert response.status_code == 400 and message in response.get_data(as_text=True), form


def test_signed_to_landed_with_states_funds_and_what_if(app, auth, world, client):
    lead_id = _signed_lead(app, auth, world)
    signed = date.today() - timedelta(days=20)
    response = auth.post(
        f"/leads/{lead_id}/project",
        {
            "investment_wan": "30000",
            "land_mu": "100",
            "tax_per_mu_wan": "50",
            "intensity_wan_per_mu": "300",
            "energy_tce": "1200",
            "eia_class": "报告表",
            "signed_on": signed.isoformat(),
        },
        headers={"HX-Request": "true"},
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "签约未开工 20 天" in html
    # 投资强度: (900000 + 30000) / 3000 亩 = 310; 亩均税收: (60000 + 50 × 100) / 3000 = 21.67
    assert "300.00" in html and "310.00" in html and "20.00" in html and "21.67" in html and "测算" in html
    started = date.today() - timedelta(days=5)
    auth.post(f"/leads/{lead_id}/project", {"started_on": started.isoformat()})
    page = client.get("/leads/projects").get_data(as_text=True)
    assert "开工未到资" in page and ">5<" in page
    assert (
        auth.post(f"/leads/{lead_id}/project/funds", {"amount_wan": "0", "received_on": "2026-11-01"}).status_code
        == 400
    )
    auth.post(
        f"/leads/{lead_id}/project/funds", {"amount_wan": "12000", "received_on": started.isoformat(), "note": "首期"}
    )
    auth.post(f"/leads/{lead_id}/stage", {"stage": "落地"})
    with app.app_context():
        lead = db.session.get(Lead, lead_id)
        assert project_state(lead.project, date.today()).name == "在建"
        result = what_if(db.session, lead)
        assert result["mode"] == "actual" and result["fixed_investment"] == [900000, 912000]
        fields = {e.field for e in db.session.scalars(select(LeadEvent).where(LeadEvent.lead_id == lead_id))}
        assert {"project.investment_wan", "project.started_on", "project.funds"} <= fields
        assert db.session.get(Lead, lead_id).project.funds_wan == 12000
    assert "落地后（按到位资金）" in client.get(f"/leads/{lead_id}").get_data(as_text=True)
    filtered = client.get("/leads/projects?state=签约未开工", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "<html" not in filtered and "暂无签约项目" in filtered


def test_other_clusters_cannot_see_or_change_projects(app, auth, world, client):
    lead_id = _signed_lead(app, auth, world)
    auth.post(f"/leads/{lead_id}/project", {"investment_wan": "500", "signed_on": "2026-11-01"})
    auth.logout()
    auth.login_as("manager", clusters=(CLUSTER_B,))
    assert auth.post(f"/leads/{lead_id}/project", {"investment_wan": "1"}).status_code == 403
    assert (
        auth.post(f"/leads/{lead_id}/project/funds", {"amount_wan": "1", "received_on": "2026-11-02"}).status_code
        == 403
    )
    assert "暂无签约项目" in client.get("/leads/projects").get_data(as_text=True)
    with app.app_context():
        assert db.session.scalars(select(LeadProject)).one().investment_wan == 500
