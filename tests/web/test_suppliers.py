"""供需对接: supplier ranking with the local-first toggle, shortlist, requests and who may see them."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from tests.worlds.candidates import CLUSTER, OTHER_CLUSTER, STEEL, XSS_NAME, copy_seeded
from webapp.extensions import db
from webapp.suppliers.models import MatchmakingRequest, SupplierShortlist


@pytest.fixture
def world(app, world_copy):
    return copy_seeded(app, world_copy)


def _supplier_ids(html: str) -> list[int]:
    return [
        int(i) for i in re.findall(r'name="supplier_id" value="(\d+)">\s*<input type="hidden" name="cluster_id"', html)
    ]


def _find(client, **args):
    return client.get("/suppliers/", query_string={"f": "1", **args}, headers={"HX-Request": "true"})


def test_finder_lists_upstream_needs_and_ranks_local_first(client, auth, world):
    auth.login_as("firm", enterprise_id=world["leader"])
    page = client.get("/suppliers/").get_data(as_text=True)
    assert f'value="{CLUSTER}|{STEEL}"' in page and f'value="{CLUSTER}|mc-weld"' in page
    assert f'value="{CLUSTER}|mc-engine"' not in page  # 中游 link, supplies nothing
    need = f"{CLUSTER}|{STEEL}"
    local = _supplier_ids(_find(client, need=need, local_first="1").get_data(as_text=True))
    plain = _supplier_ids(_find(client, need=need).get_data(as_text=True))
    assert world["leader"] not in local  # never itself
    shandong = {world["local"], world["province"], world["city"]}
    # Toggle on: same city first (青岛), then same province (济南), then the rest.
    head = local[:3]
    assert set(head) == shandong
    assert local.index(world["province"]) > max(local.index(world["local"]), local.index(world["city"]))
    # A barely related neighbour does not jump ahead of real makers of the needed product.
    assert world["weak_local"] not in local[: local.index(world["far"])]
    # Toggle off: pure relevance, the same firms in a different order.
    assert set(plain) == set(local) and plain != local
    text = _find(client, q="焊丝 焊条", local_first="1").get_data(as_text=True)
    assert world["welder"] in _supplier_ids(text) and "<html" not in text


def test_needs_of_other_clusters_are_refused(client, auth, world):
    auth.login_as("firm", enterprise_id=world["leader"])
    response = _find(client, need=f"{OTHER_CLUSTER}|{STEEL}")
    assert response.status_code == 400 and "不属于您的产业链" in response.get_data(as_text=True)
    refused = auth.post(
        "/suppliers/requests/new", {"supplier_id": str(world["far"]), "cluster_id": OTHER_CLUSTER, "link_key": STEEL}
    )
    assert refused.status_code == 403


def test_request_flow_and_visibility(app, client, auth, world):
    auth.login_as("firm", enterprise_id=world["leader"], username="leader-user")
    shortlisted = auth.post(
        "/suppliers/shortlist",
        {"supplier_id": str(world["far"]), "need_text": "船用钢板"},
        headers={"HX-Request": "true"},
    )
    assert shortlisted.status_code == 200 and "移出候选清单" in shortlisted.get_data(as_text=True)
    form = {"supplier_id": str(world["far"]), "cluster_id": CLUSTER, "link_key": STEEL, "note": "急需高强度船板"}
    first = auth.post("/suppliers/requests/new", form, headers={"HX-Request": "true"})
    assert first.status_code == 201 and "已提交对接申请" in first.get_data(as_text=True)
    assert auth.post("/suppliers/requests/new", form, headers={"HX-Request": "true"}).status_code == 200
    with app.app_context():
        reqs = list(db.session.scalars(select(MatchmakingRequest)))
        assert db.session.scalar(select(func.count()).select_from(SupplierShortlist)) == 1
    assert len(reqs) == 1 and reqs[0].status == "待处理" and reqs[0].requester_id == world["leader"]
    req_id = reqs[0].id
    own = client.get("/suppliers/").get_data(as_text=True)
    assert f"#{req_id}" in own and "待处理" in own
    assert client.get("/suppliers/requests").status_code == 403  # the staff list is not for firms
    assert auth.post(f"/suppliers/requests/{req_id}/status", {"status": "已完成"}).status_code == 403
    auth.logout()

    # Another firm user sees nothing of it.
    auth.login_as("firm", enterprise_id=world["other_leader"])
    assert client.get(f"/suppliers/requests/{req_id}").status_code == 404
    assert f"#{req_id}" not in client.get("/suppliers/").get_data(as_text=True)
    assert client.get("/leads/").status_code == 403
    assert client.get(f"/clusters/{CLUSTER}").status_code == 403
    auth.logout()

    # Staff of another cluster neither.
    auth.login_as("staff", clusters=(OTHER_CLUSTER,))
    assert f"#{req_id}" not in client.get("/suppliers/requests").get_data(as_text=True)
    assert client.get(f"/suppliers/requests/{req_id}").status_code == 403
    auth.logout()

    # The cluster's staff handle it; the firm then sees the new status.
    auth.login_as("staff", clusters=(CLUSTER,))
    listing = client.get("/suppliers/requests").get_data(as_text=True)
    assert f"#{req_id}" in listing and "青岛北海造船有限公司" in listing
    assert client.post(f"/suppliers/requests/{req_id}/status", data={"status": "对接中"}).status_code == 400  # no CSRF
    changed = auth.post(
        f"/suppliers/requests/{req_id}/status",
        {"status": "对接中", "note": "已联系供应商"},
        headers={"HX-Request": "true"},
    )
    assert changed.status_code == 200 and "已保存" in changed.get_data(as_text=True)
    detail = client.get(f"/suppliers/requests/{req_id}").get_data(as_text=True)
    assert "待处理 → 对接中" in detail
    auth.logout()
    auth.login(username="leader-user")
    own = client.get(f"/suppliers/requests/{req_id}").get_data(as_text=True)
    assert "对接中" in own and "已联系供应商" in own


def test_csrf_and_escaping(app, client, auth, world):
    auth.login_as("firm", enterprise_id=world["leader"])
    response = client.post(
        "/suppliers/requests/new", data={"supplier_id": str(world["far"]), "cluster_id": CLUSTER, "link_key": STEEL}
    )
    assert response.status_code == 400
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(MatchmakingRequest)) == 0
    html = _find(client, q="船用钢板 焊丝").get_data(as_text=True)
    assert world["xss"] in _supplier_ids(html)
    assert XSS_NAME not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_ui_and_api_share_the_request_rules(app, client, auth, world):
    """One implementation behind both channels: a request filed in the UI is the open one the API finds, an
    empty need is refused by both, and an unknown status is refused by both without logging or auditing."""
    from tests.worlds.api import Api, make_token
    from webapp.services.audit.models import AuditEntry
    from webapp.suppliers.models import MatchmakingEvent

    def history(req_id: int) -> tuple[list[str], list[str], tuple[str, str]]:
        with app.app_context():
            req = db.session.get(MatchmakingRequest, req_id)
            events = [
                e.field
                for e in db.session.scalars(
                    select(MatchmakingEvent).where(MatchmakingEvent.request_id == req_id).order_by(MatchmakingEvent.id)
                )
            ]
            audits = [
                a.action
                for a in db.session.scalars(
                    select(AuditEntry)
                    .where(AuditEntry.object_type == "matchmaking_request", AuditEntry.object_id == str(req_id))
                    .order_by(AuditEntry.id)
                )
            ]
            return events, audits, (req.status, req.note)

    fragment = {"HX-Request": "true"}
    api_client = app.test_client()
    auth.login_as("firm", enterprise_id=world["leader"])
    firm_api = Api(api_client, make_token(app, "firm", enterprise_id=world["leader"]))
    form = {"supplier_id": str(world["far"]), "cluster_id": CLUSTER, "link_key": STEEL}
    assert auth.post("/suppliers/requests/new", form, headers=fragment).status_code == 201
    again = firm_api.post("/requests", json={"supplier_id": world["far"], "cluster_id": CLUSTER, "link_key": STEEL})
    assert again.status_code == 200, again.get_json()
    req_id = again.get_json()["id"]
    no_need = auth.post(
        "/suppliers/requests/new", {"supplier_id": str(world["far"]), "cluster_id": CLUSTER}, headers=fragment
    )
    assert no_need.status_code == 400 and "请填写对接需求" in no_need.get_data(as_text=True)
    error = firm_api.post("/requests", json={"supplier_id": world["far"], "cluster_id": CLUSTER}).get_json()["error"]
    assert error["code"] == "validation_error" and error["details"] == {"body": {"need_text": ["必填"]}}
    assert history(req_id) == (["created"], ["matchmaking.create"], ("待处理", ""))
    auth.logout()

    auth.login_as("staff", clusters=(CLUSTER,))
    staff_api = Api(api_client, make_token(app, "staff", clusters=(CLUSTER,)))
    refused = auth.post(
        f"/suppliers/requests/{req_id}/status", {"status": "完美", "note": "不应保存"}, headers=fragment
    )
    assert refused.status_code == 400 and "未知的状态" in refused.get_data(as_text=True)
    error = staff_api.post(f"/requests/{req_id}/status", json={"status": "完美", "note": "不应保存"}).get_json()[
        "error"
    ]
    assert error["code"] == "validation_error" and "未知的状态" in error["message"]
    assert list(error["details"]["body"]) == ["status"]
    assert history(req_id) == (["created"], ["matchmaking.create"], ("待处理", ""))
    # A change made through one channel is no change for the other.
    assert staff_api.post(f"/requests/{req_id}/status", json={"status": "对接中"}).get_json()["status"] == "对接中"
    same = auth.post(f"/suppliers/requests/{req_id}/status", {"status": "对接中"}, headers=fragment)
    assert same.status_code == 200 and "已保存" not in same.get_data(as_text=True)
    assert history(req_id) == (["created", "status"], ["matchmaking.create", "matchmaking.status"], ("对接中", ""))


def _gap_section(html: str) -> str:
    start = html.find('id="wb-supply-gaps"')
    return html[start : html.find("</section>", start)] if start >= 0 else ""


def test_leader_workbench_lists_upstream_supply_gaps_as_supplier_searches(app, client, auth, world):
    from chains.cluster_models import LinkAssignment, RosterEntry
    from tests.worlds.candidates import CHAIN, WELD

    auth.login_as("firm", enterprise_id=world["leader"])
    gaps = _gap_section(client.get("/").get_data(as_text=True))
    # Both upstream links have no local firm yet: each is a one-click search for its suppliers.
    assert "· 船用钢板" in gaps and "· 焊接材料" in gaps and "· 船用发动机" not in gaps and "船舶运维" not in gaps
    assert "供给船用发动机" in gaps  # what the upstream link supplies, as on the finder
    href = re.search(r'href="(/suppliers/\?[^"]*need=' + CLUSTER + "%7C" + STEEL + '[^"]*)"', gaps)
    assert href, gaps
    found = client.get(href.group(1).replace("&amp;", "&")).get_data(as_text=True)
    # The search runs as the finder's own form would, local suppliers first by default.
    assert _supplier_ids(found)[:3] and set(_supplier_ids(found)[:3]) == {
        world["local"],
        world["province"],
        world["city"],
    }
    assert re.search(r'name="local_first" value="1" checked', found) and "本地空白" in found

    # Two local firms confirmed on 船用钢板 make it 一般: no longer a gap, while 焊接材料 still is.
    with app.app_context():
        for firm in (world["local"], world["city"]):
            if firm != world["local"]:
                db.session.add(RosterEntry(cluster_id=CLUSTER, enterprise_id=firm, role="配套"))
            db.session.add(LinkAssignment(cluster_id=CLUSTER, enterprise_id=firm, chain_id=CHAIN, link_key=STEEL))
        db.session.commit()
    gaps = _gap_section(client.get("/").get_data(as_text=True))
    assert "· 船用钢板" not in gaps and f"need={CLUSTER}%7C{WELD}" in gaps
    finder = client.get("/suppliers/").get_data(as_text=True)
    assert "本地一般" in finder and "本地空白" in finder


def test_firm_leading_no_cluster_has_no_supply_gap_section(client, auth, world):
    auth.login_as("firm", enterprise_id=world["far"])
    html = client.get("/").get_data(as_text=True)
    assert "我的对接申请" in html and 'id="wb-supply-gaps"' not in html
