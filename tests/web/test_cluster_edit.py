"""Clusters created and edited in the browser: fields, chains, indicators with history, roster by registry search."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from chains.cluster_models import Cluster, ClusterIndicator, RosterEntry
from tests.worlds.clusters import CHAIN, CLUSTER_A, CLUSTER_B, build_app_world
from webapp.extensions import db
from webapp.services.audit.models import AuditEntry

A = f"/clusters/{CLUSTER_A}"


@pytest.fixture
def world(world_copy):
    return world_copy(build_app_world)


def _rule_row(html: str, name: str) -> str:
    start = html.index(name)
    return html[html.rindex("<tr", 0, start) : html.index("</tr>", start)]


def test_admin_creates_a_cluster(app, auth, world, client):
    auth.login_as("admin")
    assert client.get("/clusters/new").status_code == 200
    bad = auth.post("/clusters/new", {"id": "Bad Id", "name": ""})
    assert bad.status_code == 422 and "集聚区标识必须由小写字母" in bad.get_data(as_text=True)
    response = auth.post(
        "/clusters/new",
        {
            "id": "new-zone",
            "name": "新材料园",
            "province": "山东省",
            "city": "烟台市",
            "area_mu": "1,200",
            "chains": [CHAIN],
        },
    )
    assert response.status_code == 302
    with app.app_context():
        cluster = db.session.get(Cluster, "new-zone")
        assert cluster.name == "新材料园" and cluster.area_mu == 1200 and cluster.chain_ids == [CHAIN]
        assert db.session.scalars(select(AuditEntry).where(AuditEntry.action == "cluster.create")).one()


def test_manager_edits_indicators_and_the_evaluation_follows(app, auth, world, client):
    user = auth.login_as("manager", (CLUSTER_A,))
    before = _rule_row(client.get(A).get_data(as_text=True), "主导产业集聚度")
    assert "达标" in before
    response = auth.post(
        f"{A}/indicators",
        {
            "year": "2024",
            "revenue": "1100000",
            "leading_revenue": "100000",
            "output_value": "1200000",
            "tax": "60000",
            "fixed_investment": "900000",
            "source": "统计公报",
        },
        headers={"HX-Request": "true"},
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and 'id="indicators"' in html and "<html" not in html
    assert "2024 年指标已保存" in html and "主导产业收入 800000.0 → 100000.0" in html
    after = _rule_row(client.get(A).get_data(as_text=True), "主导产业集聚度")
    assert "未达标" in after
    with app.app_context():
        entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "cluster.indicators")).one()
        assert entry.username == user and entry.detail["before"]["leading_revenue"] == 800000
    # A new year becomes the year the rules use; the history lists both saves.
    auth.post(f"{A}/indicators", {"year": "2025", "revenue": "1000", "leading_revenue": "900"})
    page = client.get(f"{A}/edit").get_data(as_text=True)
    assert page.count("<li>") >= 2 and "2025 年" in page
    assert "2025 年指标" in client.get(A).get_data(as_text=True)
    bad = auth.post(f"{A}/indicators", {"year": "24", "tax": "abc"}, follow_redirects=True).get_data(as_text=True)
    assert "年份应为四位数字" in bad and "税收必须是数字：abc" in bad
    with app.app_context():
        assert (
            len(db.session.scalars(select(ClusterIndicator).where(ClusterIndicator.cluster_id == CLUSTER_A)).all()) == 2
        )


def test_manager_edits_fields_and_chains(app, auth, world, client):
    auth.login_as("manager", (CLUSTER_A,))
    auth.post(
        f"{A}/edit", {"name": "甲集聚区（扩区）", "leading_industry": "海工装备", "area_mu": "3500", "chains": [CHAIN]}
    )
    with app.app_context():
        cluster = db.session.get(Cluster, CLUSTER_A)
        assert cluster.name == "甲集聚区（扩区）" and cluster.area_mu == 3500 and cluster.chain_ids == [CHAIN]
        entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "cluster.edit")).one()
        assert entry.detail["changed"]["leading_industry"] == ["", "海工装备"]
    assert client.get(f"/clusters/{CLUSTER_B}/edit").status_code == 403


def test_roster_add_and_remove_by_registry_search(app, auth, world, client):
    auth.login_as("manager", (CLUSTER_A,))
    found = client.get(f"{A}/roster/search?q=乙区", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert 'id="roster"' in found and "乙区企业" in found and "<html" not in found
    html = auth.post(
        f"{A}/roster", {"enterprise_id": world["other"], "role": "骨干"}, headers={"HX-Request": "true"}
    ).get_data(as_text=True)
    assert "已将 乙区企业 加入本地企业名单" in html
    again = auth.post(f"{A}/roster", {"enterprise_id": world["other"]}, headers={"HX-Request": "true"})
    assert "已在本地企业名单中" in again.get_data(as_text=True)
    auth.post(f"{A}/roster/{world['unplaced']}/remove", {})
    with app.app_context():
        ids = {
            r.enterprise_id: r.role
            for r in db.session.scalars(select(RosterEntry).where(RosterEntry.cluster_id == CLUSTER_A))
        }
        assert ids.get(world["other"]) == "骨干" and world["unplaced"] not in ids
        actions = set(db.session.scalars(select(AuditEntry.action)))
        assert {"cluster.roster_add", "cluster.roster_remove"} <= actions


def test_staff_and_firms_cannot_edit_clusters(app, auth, world, client):
    auth.login_as("staff", (CLUSTER_A,))
    assert client.get(f"{A}/edit").status_code == 403
    assert auth.post(f"{A}/indicators", {"year": "2024"}).status_code == 403
    assert client.get("/clusters/new").status_code == 403


def test_stale_maps_show_on_the_cluster_page_and_the_workbench(app, auth, world, client):
    from datetime import datetime, timedelta, timezone

    from chains.chain_models import Chain
    from chains.cluster_models import ClusterChain

    with app.app_context():
        version = db.session.get(Chain, CHAIN).current_version
        version.imported_at = datetime.now(timezone.utc) - timedelta(days=400)
        db.session.commit()
    auth.login_as("manager", (CLUSTER_A,))
    page = client.get(A).get_data(as_text=True)
    assert 'class="map-stale"' in page and "图谱已超过 180 天未复核" in page
    assert "需要复核的产业链图谱（1）" in client.get("/").get_data(as_text=True)
    from webapp.services.match import wait_for_background

    assert auth.post(f"{A}/chains/{CHAIN}/review", {}).status_code == 302
    wait_for_background(app)  # the first ranking starts the index build (a keyword fallback is no baseline)
    auth.post(f"{A}/chains/{CHAIN}/review", {})
    page = client.get(A).get_data(as_text=True)
    assert 'class="map-fresh"' in page and "map-stale" not in page
    assert "stale-maps" not in client.get("/").get_data(as_text=True)
    # The gap links' candidates then change completely: the map is stale again.
    with app.app_context():
        link = db.session.get(ClusterChain, (CLUSTER_A, CHAIN))
        snapshot = link.review_snapshot["candidates"]
        assert snapshot, "the review remembers the gap links' top candidates"
        link.review_snapshot = {"candidates": {key: [999999] for key in snapshot}}
        db.session.commit()
    assert "候选企业自上次复核以来变化超过 50%" in client.get(A).get_data(as_text=True)
    with app.app_context():
        assert len(db.session.scalars(select(AuditEntry).where(AuditEntry.action == "chain.review")).all()) == 2


def test_dashboard_flags_work_on_a_deleted_link(app, auth, world, client):
    auth.login_as("admin")
    auth.post(f"/chains/{CHAIN}/links/tc-parts/delete", {})
    page = client.get(A).get_data(as_text=True)
    assert page.count('class="needs-attention"') == 3 and "已删除" in page and "本地部件企业0" in page
