"""Cross-tenant probes: staff and managers of cluster A, and chain-leader firms, guessing ids of other tenants' data.

Staff and manager are assigned to cluster A only; firm acts for cluster A's chain leader, firm_b for cluster B's.
Every probe must be refused (403, or 404 so the id's existence does not leak) and change nothing.
"""

from __future__ import annotations

import pytest

from tests.worlds.security import BACKENDS, CHAIN, CLUSTER_A, CLUSTER_B, build
from webapp.extensions import db

REFUSED = (403, 404)
CLUSTER_ROLES = ("staff", "manager")


@pytest.fixture(scope="module", params=BACKENDS)
def world(request, tmp_path_factory):
    built, cleanup = build(request.param, tmp_path_factory.mktemp(f"tenant-{request.param}"))
    yield built
    cleanup()


def _cluster_b_pages(world) -> list[str]:
    ids, b = world.ids, CLUSTER_B
    base = f"/clusters/{b}/chains/{CHAIN}"
    return [
        f"/clusters/{b}",
        base,
        f"{base}/links/tc-service",
        f"{base}/lists",
        f"{base}/lists/export.xlsx",
        f"{base}/lists/{ids['list_type_b']}/export.csv",
        f"{base}/lists/{ids['list_type_b']}/history",
        f"/clusters/{b}/placement",
        f"/clusters/{b}/placement/status",
        f"/candidates/{b}/tc-service",
        f"/leads/{ids['lead_b']}",
        f"/suppliers/requests/{ids['request_b']}",
        f"/clusters/{b}/edit",
        f"/clusters/{b}/roster/search?q=乙区",
    ]


@pytest.mark.parametrize("role", CLUSTER_ROLES)
def test_cluster_user_cannot_read_another_clusters_pages(world, role):
    client = world.clients[role]
    for path in _cluster_b_pages(world):
        assert client.get(path).status_code in REFUSED, path
    # Their own cluster's pages work (the refusals above are about the tenant, not the page).
    assert client.get(f"/clusters/{CLUSTER_A}/chains/{CHAIN}/lists").status_code == 200
    assert client.get(f"/leads/{world.ids['lead_a']}").status_code == 200


@pytest.mark.parametrize("role", CLUSTER_ROLES)
def test_cluster_user_cannot_change_another_clusters_data(world, role):
    from chains.list_models import ListEntry
    from webapp.leads.models import Lead
    from webapp.suppliers.models import MatchmakingRequest

    ids, b = world.ids, CLUSTER_B
    probes = [
        (f"/leads/{ids['lead_b']}/stage", {"stage": "已接洽"}),
        (f"/leads/{ids['lead_b']}/edit", {"notes": "改写", "next_step": "改写"}),
        (f"/leads/{ids['lead_b']}/feedback", {"value": "relevant"}),
        (f"/leads/{ids['lead_b']}/progress", {"text": "改写"}),
        (f"/leads/{ids['lead_b']}/project", {"investment_wan": "1"}),
        (f"/leads/{ids['lead_b']}/project/funds", {"amount_wan": "1", "received_on": "2026-11-01"}),
        (f"/leads/{ids['lead_b']}/coordination", {"reason": "改写"}),
        (f"/leads/coordination/{ids['request_b']}/decide", {"decision": "approve"}),
        (
            "/leads/create",
            {"cluster_id": b, "enterprise_id": ids["candidate"], "chain_id": CHAIN, "link_key": "tc-service"},
        ),
        (f"/clusters/{b}/chains/{CHAIN}/lists/refresh", {}),
        (f"/clusters/{b}/chains/{CHAIN}/lists/entries/{ids['entry_b']}/pin", {}),
        # Cluster A in the path, cluster B's entry id: the entry must still be refused.
        (f"/clusters/{CLUSTER_A}/chains/{CHAIN}/lists/entries/{ids['entry_b']}/pin", {}),
        (f"/clusters/{b}/placement/run", {}),
        (f"/clusters/{b}/placement/confirm", {"enterprise_id": ids["other"], "action": "confirm"}),
        (f"/candidates/{b}/tc-service/feedback", {"enterprise_id": ids["candidate"], "value": "relevant"}),
        (f"/suppliers/requests/{ids['request_b']}/status", {"status": "已完成", "note": "改写"}),
        (f"/clusters/{b}/edit", {"name": "改写"}),
        (f"/clusters/{b}/indicators", {"year": "2024", "tax": "1"}),
        (f"/clusters/{b}/roster", {"enterprise_id": ids["candidate"], "role": "配套"}),
        (f"/clusters/{b}/roster/{ids['other']}/remove", {}),
        (f"/clusters/{b}/chains/{CHAIN}/review", {}),
    ]
    for path, data in probes:
        assert world.post(role, path, data).status_code in REFUSED, path
    with world.app.app_context():
        lead = db.session.get(Lead, ids["lead_b"])
        assert lead.stage == "候选" and lead.notes == "乙区线索" and lead.feedback == ""
        assert not db.session.get(ListEntry, ids["entry_b"]).pinned
        assert db.session.get(MatchmakingRequest, ids["request_b"]).status == "待处理"
        assert db.session.scalar(db.select(db.func.count()).select_from(Lead).where(Lead.cluster_id == b)) == 1
        from chains.cluster_models import Cluster

        cluster_b = db.session.get(Cluster, b)
        assert cluster_b.name == "乙集聚区" and not cluster_b.indicators and len(cluster_b.roster) == 1


@pytest.mark.parametrize("role", CLUSTER_ROLES)
def test_cluster_user_lists_and_exports_hold_only_their_clusters(world, role):
    client = world.clients[role]
    for path in (
        "/leads/",
        "/leads/table",
        "/suppliers/requests",
        "/clusters/",
        "/",
        "/chains/",
        f"/chains/{CHAIN}/versions",
    ) + ((f"/chains/{CHAIN}/edit",) if role == "manager" else ()):
        html = client.get(path).get_data(as_text=True)
        assert "乙区线索" not in html and "乙区需求" not in html and "乙集聚区" not in html, path
    # The shared register names cluster B's claims but never its notes or next steps.
    for path in ("/leads/register", f"/leads/register?cluster={CLUSTER_B}", "/leads/coordination"):
        html = client.get(path).get_data(as_text=True)
        assert "乙区线索" not in html, path
    # Filtering the board by another cluster shows nothing of it either.
    html = client.get(f"/leads/table?cluster={CLUSTER_B}").get_data(as_text=True)
    assert "乙区线索" not in html
    export = client.get(f"/leads/export.xlsx?cluster={CLUSTER_B}")
    assert export.status_code in (200, 403)
    if export.status_code == 200:
        from io import BytesIO

        from openpyxl import load_workbook

        cells = [str(c.value) for row in load_workbook(BytesIO(export.data)).active.iter_rows() for c in row]
        assert "待归位企业" not in cells  # lead B's firm


@pytest.mark.parametrize("role", CLUSTER_ROLES)
def test_cluster_user_api_token_is_confined_to_their_clusters(world, role):
    ids, b = world.ids, CLUSTER_B
    reads = [
        f"/api/v1/leads/{ids['lead_b']}",
        f"/api/v1/clusters/{b}",
        f"/api/v1/clusters/{b}/gaps",
        f"/api/v1/clusters/{b}/evaluation",
        f"/api/v1/clusters/{b}/chains/{CHAIN}/lists",
        f"/api/v1/clusters/{b}/links/tc-service/candidates",
        f"/api/v1/requests/{ids['request_b']}",
    ]
    for path in reads:
        assert world.api(role, "GET", path).status_code in REFUSED, path
    writes = [
        ("PATCH", f"/api/v1/leads/{ids['lead_b']}", {"notes": "改写"}),
        ("POST", f"/api/v1/leads/{ids['lead_b']}/stage", {"stage": "已接洽"}),
        ("POST", "/api/v1/leads", {"cluster_id": b, "enterprise_id": ids["candidate"]}),
        ("POST", f"/api/v1/clusters/{b}/chains/{CHAIN}/lists/refresh", {}),
        (
            "POST",
            f"/api/v1/clusters/{b}/feedback",
            {"enterprise_id": ids["candidate"], "link_key": "tc-service", "label": "relevant"},
        ),
        ("POST", f"/api/v1/requests/{ids['request_b']}/status", {"status": "已完成"}),
    ]
    for method, path, body in writes:
        assert world.api(role, method, path, json=body).status_code in REFUSED, path
    listed = world.api(role, "GET", "/api/v1/leads").get_json()
    assert {item["cluster_id"] for item in listed["items"]} <= {CLUSTER_A}
    clusters = world.api(role, "GET", "/api/v1/clusters").get_json()
    items = clusters["items"] if isinstance(clusters, dict) else clusters
    assert {c["id"] for c in items} == {CLUSTER_A}


def test_firm_cannot_read_leads_lists_exports_or_history(world):
    ids = world.ids
    client = world.clients["firm"]
    paths = [
        f"/leads/{ids['lead_a']}",
        "/leads/",
        "/leads/table",
        "/leads/export.xlsx",
        f"/clusters/{CLUSTER_A}/chains/{CHAIN}/lists",
        f"/clusters/{CLUSTER_A}/chains/{CHAIN}/lists/export.xlsx",
        f"/clusters/{CLUSTER_A}/chains/{CHAIN}/lists/{ids['list_type_a']}/history",
        f"/clusters/{CLUSTER_A}/chains/{CHAIN}/lists/{ids['list_type_a']}/export.csv",
        f"/firms/{ids['candidate']}",
        f"/firms/{ids['leader_a']}",
        "/imports/",
        f"/imports/{ids['job']}",
        "/audit/",
        "/suppliers/requests",
    ]
    for path in paths:
        assert client.get(path).status_code in REFUSED, path
    for path in [
        f"/api/v1/leads/{ids['lead_a']}",
        "/api/v1/leads",
        f"/api/v1/enterprises/{ids['leader_a']}",
        f"/api/v1/clusters/{CLUSTER_A}/chains/{CHAIN}/lists",
        f"/api/v1/clusters/{CLUSTER_A}",
    ]:
        assert world.api("firm", "GET", path).status_code in REFUSED, path


def test_firm_sees_only_its_own_matchmaking_requests(world):
    from webapp.suppliers.models import MatchmakingRequest

    ids = world.ids
    own, other = ids["request_a"], ids["request_b"]
    assert world.clients["firm"].get(f"/suppliers/requests/{own}").status_code == 200
    assert world.clients["firm"].get(f"/suppliers/requests/{other}").status_code in REFUSED
    assert world.clients["firm_b"].get(f"/suppliers/requests/{own}").status_code in REFUSED
    assert world.api("firm", "GET", f"/api/v1/requests/{other}").status_code in REFUSED
    assert world.api("firm_b", "GET", f"/api/v1/requests/{own}").status_code in REFUSED
    listed = world.api("firm", "GET", "/api/v1/requests").get_json()
    assert [item["id"] for item in listed["items"]] == [own]
    assert "乙区需求" not in world.clients["firm"].get("/suppliers/").get_data(as_text=True)
    # A firm may not handle requests (its own or others'), nor file one for a cluster it does not lead.
    assert world.post("firm", f"/suppliers/requests/{own}/status", {"status": "已完成"}).status_code == 403
    assert (
        world.api("firm", "POST", f"/api/v1/requests/{other}/status", json={"status": "已完成"}).status_code in REFUSED
    )
    response = world.post(
        "firm",
        "/suppliers/requests/new",
        {"supplier_id": ids["candidate"], "cluster_id": CLUSTER_B, "need_text": "越权申请"},
    )
    assert response.status_code in REFUSED
    response = world.api(
        "firm",
        "POST",
        "/api/v1/requests",
        json={"supplier_id": ids["candidate"], "cluster_id": CLUSTER_B, "need_text": "越权申请"},
    )
    assert response.status_code in REFUSED + (422,)
    with world.app.app_context():
        assert db.session.get(MatchmakingRequest, other).status == "待处理"
        assert not db.session.scalars(
            db.select(MatchmakingRequest).where(MatchmakingRequest.need_text == "越权申请")
        ).all()


def test_admin_is_not_confined(world):
    """Control: the same probes succeed for an admin, so the refusals above come from tenancy."""
    ids = world.ids
    assert world.clients["admin"].get(f"/leads/{ids['lead_b']}").status_code == 200
    assert world.clients["admin"].get(f"/clusters/{CLUSTER_B}/chains/{CHAIN}/lists").status_code == 200
    assert world.api("admin", "GET", f"/api/v1/leads/{ids['lead_b']}").status_code == 200
