"""Contract tests of the JSON API: enterprise search and bulk upsert, candidates, look-alikes, feedback."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.worlds.api import (  # noqa: F401  (fixtures)
    CLUSTER,
    OTHER_CLUSTER,
    Api,
    admin,
    assert_error,
    ids,
    make_token,
    staff,
)
from webapp.extensions import db

# ----------------------------------------------------------------------------- enterprises


def test_enterprise_search_filters_and_pagination(admin, ids):
    page = admin.get("/enterprises?limit=10").get_json()
    assert page["total"] == len(ids) and page["pages"] == 3 and len(page["items"]) == 10 and page["page"] == 1
    last = admin.get("/enterprises?limit=10&page=3").get_json()
    assert len(last["items"]) == len(ids) - 20
    found = admin.get("/enterprises?q=电芯&province=江苏省").get_json()
    assert found["total"] >= 1 and all(i["province"] == "江苏省" for i in found["items"])
    tagged = admin.get("/enterprises?tag=上市").get_json()
    assert {i["name"] for i in tagged["items"]} == {"合成新能源电池有限公司", "合成功率半导体有限公司"}
    big = admin.get("/enterprises?capital_min=50000").get_json()
    assert all(i["capital_wan_cny"] >= 50000 for i in big["items"]) and big["total"] == 3
    one = admin.get(f"/enterprises/{ids['合成德国电池有限公司']}").get_json()
    assert one["country"] == "德国" and one["tags"] == ["外资"]
    assert_error(admin.get("/enterprises?limit=0"), 422, "validation_error")
    assert_error(admin.get("/enterprises?limit=1000"), 422, "validation_error")
    assert_error(admin.get("/enterprises/999999"), 404, "not_found")


def test_bulk_upsert_reports_rows_like_the_file_import(app, admin):
    rows = [
        {
            "external_id": "demo-api-1",
            "name": "接口测试企业一",
            "province": "山东省",
            "city": "青岛市",
            "main_products": "船用发动机",
            "tags": "专精特新；高新技术企业",
            "capital": "5000",
            "data_note": "合成数据",
        },
        {"external_id": "demo-api-2", "name": "接口测试企业二", "credit_code": "NOT-A-CODE"},
        {"city": "青岛市"},
        {"external_id": "demo-api-1", "name": "接口测试企业一", "address": "青岛市黄岛区"},
    ]
    response = admin.post("/enterprises/bulk", json={"rows": rows})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["counts"] == {"inserted": 1, "updated": 0, "unchanged": 0, "rejected": 2, "duplicates_merged": 1}
    by_line = {r["line"]: r for r in body["report"]}
    assert by_line[2]["outcome"] == "rejected" and by_line[2]["reason"]
    assert by_line[3]["outcome"] == "rejected" and "名称" in by_line[3]["reason"]
    stored = admin.get("/enterprises?external_id=demo-api-1").get_json()["items"][0]
    assert (
        stored["tags"] == ["专精特新", "高新技术企业"] and stored["capital_wan_cny"] == 5000 and stored["is_synthetic"]
    )
    again = admin.post("/enterprises/bulk", json={"rows": rows[:1]}).get_json()
    assert again["counts"]["unchanged"] == 1  # idempotent
    changed = admin.post(
        "/enterprises/bulk", json={"rows": [{"external_id": "demo-api-1", "name": "接口测试企业一", "city": "烟台市"}]}
    ).get_json()
    assert changed["counts"]["updated"] == 1
    assert_error(admin.post("/enterprises/bulk", json={"rows": []}), 422, "validation_error")
    assert_error(admin.post("/enterprises/bulk", json={"rows": [{"nme": "typo"}]}), 422, "validation_error")


def test_bulk_upsert_keeps_a_firms_registered_contacts(app, admin):
    contacts = {
        "legal_representative": "赵六",
        "phone": "0535-1234567",
        "email": "a@example.com",
        "website": "example.com",
    }
    row = {"external_id": "demo-api-c", "name": "接口联系方式企业", "city": "烟台市", **contacts}
    assert admin.post("/enterprises/bulk", json={"rows": [row]}).get_json()["counts"]["inserted"] == 1
    stored = admin.get("/enterprises?external_id=demo-api-c").get_json()["items"][0]
    assert {k: stored[k] for k in contacts} == contacts
    moved = {**row, "phone": "0535-7654321"}
    assert admin.post("/enterprises/bulk", json={"rows": [moved]}).get_json()["counts"]["updated"] == 1
    assert admin.get(f"/enterprises/{stored['id']}").get_json()["phone"] == "0535-7654321"


def test_bulk_upsert_roles(app, client, ids):
    manager = Api(client, make_token(app, "manager", clusters=(CLUSTER,)))
    assert_error(manager.post("/enterprises/bulk", json={"rows": [{"name": "甲"}]}), 403, "forbidden")
    staff = Api(client, make_token(app, "staff", clusters=(CLUSTER,)))
    assert staff.post("/enterprises/bulk", json={"rows": [{"name": "甲企业", "city": "青岛市"}]}).status_code == 200


# ----------------------------------------------------------------------------- matching


@pytest.fixture
def indexed(app, ids):
    from webapp.services import match as matchsvc

    with app.app_context():
        matchsvc.sync(db.session, app)
    return ids


def test_candidates_with_explanations_and_filters(staff, indexed):
    page = staff.get(f"/clusters/{CLUSTER}/links/tev-cell/candidates?k=5").get_json()
    assert page["state"] == "ready" and page["link"]["key"] == "tev-cell" and len(page["items"]) == 5
    top = page["items"][0]
    assert top["rank"] == 1 and top["explanation"] and top["matched_terms"]
    assert "合成锂电电芯科技有限公司" not in {c["name"] for c in page["items"]}  # already local
    jiangsu = staff.get(f"/clusters/{CLUSTER}/links/tev-cell/candidates?province=江苏省&k=20").get_json()
    assert jiangsu["items"] and all(c["province"] == "江苏省" for c in jiangsu["items"])
    assert_error(staff.get(f"/clusters/{CLUSTER}/links/nope/candidates"), 404, "not_found")
    assert_error(staff.get(f"/clusters/{OTHER_CLUSTER}/links/tev-cell/candidates"), 403, "forbidden")
    assert_error(staff.get(f"/clusters/{CLUSTER}/links/tev-cell/candidates?k=0"), 422, "validation_error")


def test_look_alikes(admin, indexed):
    source = indexed["合成正极材料股份有限公司"]
    items = admin.get(f"/enterprises/{source}/look-alikes?k=3").get_json()["items"]
    assert len(items) == 3 and source not in {i["enterprise_id"] for i in items}
    assert items[0]["name"] in {"合成磷酸铁锂材料有限公司", "合成锂电材料科技有限公司"}
    assert_error(admin.get("/enterprises/999999/look-alikes"), 404, "not_found")


def test_feedback(app, staff, ids):
    from chains.feedback_models import CandidateFeedback

    firm = ids["合成储能电芯有限公司"]
    response = staff.post(
        f"/clusters/{CLUSTER}/feedback", json={"link_key": "tev-cell", "enterprise_id": firm, "label": "relevant"}
    )
    assert response.status_code == 201 and response.get_json()["label"] == "relevant"
    with app.app_context():
        assert db.session.scalars(select(CandidateFeedback.label)).all() == ["relevant"]
    assert_error(
        staff.post(
            f"/clusters/{CLUSTER}/feedback", json={"link_key": "tev-cell", "enterprise_id": firm, "label": "great"}
        ),
        422,
        "validation_error",
    )
    assert_error(
        staff.post(
            f"/clusters/{OTHER_CLUSTER}/feedback",
            json={"link_key": "tev-cell", "enterprise_id": firm, "label": "relevant"},
        ),
        403,
        "forbidden",
    )
