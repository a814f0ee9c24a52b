"""供需对接: supplier ranking with the local-first toggle, shortlist, requests and who may see them."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from tests.test_ui_candidates_fixtures import CLUSTER, OTHER_CLUSTER, STEEL, XSS_NAME, seed
from webapp.extensions import db
from webapp.suppliers.models import MatchmakingRequest, SupplierShortlist


@pytest.fixture
def world(app):
    return seed(app)


def _supplier_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'name="supplier_id" value="(\d+)">\s*<input type="hidden" name="cluster_id"', html)]


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
    assert world["weak_local"] not in local[:local.index(world["far"])]
    # Toggle off: pure relevance, the same firms in a different order.
    assert set(plain) == set(local) and plain != local
    text = _find(client, q="焊丝 焊条", local_first="1").get_data(as_text=True)
    assert world["welder"] in _supplier_ids(text) and "<html" not in text


def test_needs_of_other_clusters_are_refused(client, auth, world):
    auth.login_as("firm", enterprise_id=world["leader"])
    response = _find(client, need=f"{OTHER_CLUSTER}|{STEEL}")
    assert response.status_code == 400 and "不属于您的产业链" in response.get_data(as_text=True)
    refused = auth.post("/suppliers/requests/new", {"supplier_id": str(world["far"]), "cluster_id": OTHER_CLUSTER,
                                                    "link_key": STEEL})
    assert refused.status_code == 403


def test_request_flow_and_visibility(app, client, auth, world):
    auth.login_as("firm", enterprise_id=world["leader"], username="leader-user")
    shortlisted = auth.post("/suppliers/shortlist", {"supplier_id": str(world["far"]), "need_text": "船用钢板"},
                            headers={"HX-Request": "true"})
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
    changed = auth.post(f"/suppliers/requests/{req_id}/status", {"status": "对接中", "note": "已联系供应商"},
                        headers={"HX-Request": "true"})
    assert changed.status_code == 200 and "已保存" in changed.get_data(as_text=True)
    detail = client.get(f"/suppliers/requests/{req_id}").get_data(as_text=True)
    assert "待处理 → 对接中" in detail
    auth.logout()
    auth.login(username="leader-user")
    own = client.get(f"/suppliers/requests/{req_id}").get_data(as_text=True)
    assert "对接中" in own and "已联系供应商" in own


def test_csrf_and_escaping(app, client, auth, world):
    auth.login_as("firm", enterprise_id=world["leader"])
    response = client.post("/suppliers/requests/new", data={"supplier_id": str(world["far"]), "cluster_id": CLUSTER,
                                                            "link_key": STEEL})
    assert response.status_code == 400
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(MatchmakingRequest)) == 0
    html = _find(client, q="船用钢板 焊丝").get_data(as_text=True)
    assert world["xss"] in _supplier_ids(html)
    assert XSS_NAME not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
