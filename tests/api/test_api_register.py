"""JSON API of the shared target register: second claims, coordination requests, the admin's decision, progress."""

from __future__ import annotations

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

SECRET = "本区内部备注"


def test_second_claim_coordination_and_decision(app, client, staff, admin, ids):
    firm = ids["合成储能电芯有限公司"]
    first = staff.post("/leads", json={"cluster_id": CLUSTER, "enterprise_id": firm}).get_json()
    staff.patch(f"/leads/{first['id']}", json={"notes": SECRET, "next_step": SECRET})
    assert first["claim"] == "first" and first["claim_holder"] is None
    other = Api(client, make_token(app, "manager", clusters=(OTHER_CLUSTER,)))
    second = other.post("/leads", json={"cluster_id": OTHER_CLUSTER, "enterprise_id": firm})
    assert second.status_code == 201
    body = second.get_json()
    assert body["claim"] == "second" and body["claim_holder"]["cluster_id"] == CLUSTER
    assert body["claim_holder"]["lead_id"] == first["id"] and SECRET not in second.get_data(as_text=True)
    register = other.get("/register?conflicts=true")
    assert register.status_code == 200 and SECRET not in register.get_data(as_text=True)
    rows = register.get_json()
    assert len(rows) == 1 and rows[0]["holder"]["lead_id"] == first["id"] and rows[0]["protected"]
    assert [c["cluster_id"] for c in rows[0]["conflicts"]] == [OTHER_CLUSTER]
    assert_error(other.get(f"/leads/{first['id']}"), 403, "forbidden")
    assert_error(other.post(f"/leads/{body['id']}/coordination", json={"reason": ""}), 422, "validation_error")
    assert_error(staff.post(f"/leads/{first['id']}/coordination", json={"reason": "我是首报"}), 422, "validation_error")
    filed = other.post(f"/leads/{body['id']}/coordination", json={"reason": "企业更倾向本区"})
    assert filed.status_code == 201 and filed.get_json()["status"] == "pending"
    request_id = filed.get_json()["id"]
    holder_view = staff.get("/coordination").get_json()
    assert holder_view[0]["id"] == request_id and holder_view[0]["reason"] is None
    assert_error(other.post(f"/coordination/{request_id}/decision", json={"decision": "approve"}), 403, "forbidden")
    assert_error(
        admin.post(f"/coordination/{request_id}/decision", json={"decision": "maybe"}), 422, "validation_error"
    )
    decided = admin.post(f"/coordination/{request_id}/decision", json={"decision": "reject", "note": "维持首报"})
    assert decided.status_code == 200 and decided.get_json()["status"] == "rejected"
    assert_error(
        admin.post(f"/coordination/{request_id}/decision", json={"decision": "approve"}), 422, "validation_error"
    )
    assert admin.get(f"/leads/{first['id']}").get_json()["claim"] == "first"
    assert_error(admin.post("/coordination/999999/decision", json={"decision": "approve"}), 404, "not_found")


def test_progress_and_admin_assignment(app, staff, admin, ids):
    firm = ids["合成储能电芯有限公司"]
    lead = staff.post("/leads", json={"cluster_id": CLUSTER, "enterprise_id": firm}).get_json()
    progressed = staff.post(f"/leads/{lead['id']}/progress", json={"text": "电话沟通"})
    assert progressed.status_code == 201 and progressed.get_json()["events"][-1]["field"] == "progress"
    threshold = app.config["ADMIN_ASSIGN_INVESTMENT_WAN"]
    staff.patch(f"/leads/{lead['id']}", json={"planned_investment_wan": threshold})
    refused = assert_error(staff.post(f"/leads/{lead['id']}/stage", json={"stage": "已接洽"}), 422, "validation_error")
    assert "管理员指派" in refused["message"]
    assert admin.post(f"/leads/{lead['id']}/stage", json={"stage": "已接洽"}).status_code == 200
    assert_error(staff.patch(f"/leads/{lead['id']}", json={"planned_investment_wan": -1}), 422, "validation_error")


def test_project_facts_through_the_api(app, staff, ids):
    firm = ids["合成储能电芯有限公司"]
    lead = staff.post("/leads", json={"cluster_id": CLUSTER, "enterprise_id": firm}).get_json()
    assert_error(staff.put(f"/leads/{lead['id']}/project", json={"investment_wan": 100}), 422, "validation_error")
    assert_error(staff.get(f"/leads/{lead['id']}/project"), 404, "not_found")
    staff.post(f"/leads/{lead['id']}/stage", json={"stage": "签约"})
    saved = staff.put(
        f"/leads/{lead['id']}/project",
        json={"investment_wan": 100, "land_mu": 10, "signed_on": "2026-11-01", "eia_class": "登记表"},
    )
    assert saved.status_code == 200, saved.get_json()
    assert saved.get_json()["state"] == "签约未开工" and saved.get_json()["funds_wan"] == 0
    assert_error(staff.put(f"/leads/{lead['id']}/project", json={"eia_class": "x"}), 422, "validation_error")
    staff.put(f"/leads/{lead['id']}/project", json={"started_on": "2026-11-10"})
    funded = staff.post(f"/leads/{lead['id']}/project/funds", json={"amount_wan": 40, "received_on": "2026-11-20"})
    assert funded.status_code == 201 and funded.get_json()["state"] == "在建" and funded.get_json()["funds_wan"] == 40
    assert_error(
        staff.post(f"/leads/{lead['id']}/project/funds", json={"amount_wan": 0, "received_on": "2026-11-20"}),
        422,
        "validation_error",
    )
