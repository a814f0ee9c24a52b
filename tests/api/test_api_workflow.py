"""Contract tests of the JSON API: leads with history, matchmaking requests, the tokens page and CLI."""

from __future__ import annotations

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

# ----------------------------------------------------------------------------- leads


def test_lead_lifecycle_with_history(app, staff, ids):
    firm = ids["合成储能电芯有限公司"]
    created = staff.post("/leads", json={"cluster_id": CLUSTER, "enterprise_id": firm, "link_key": "tev-cell"})
    assert created.status_code == 201, created.get_json()
    lead = created.get_json()
    assert lead["stage"] == "候选" and lead["chain_id"] == "tev" and lead["events"][0]["field"] == "created"
    again = staff.post("/leads", json={"cluster_id": CLUSTER, "enterprise_id": firm, "link_key": "tev-cell"})
    assert again.status_code == 200 and again.get_json()["id"] == lead["id"]
    edited = staff.patch(f"/leads/{lead['id']}", json={"next_step": "电话联系", "next_step_date": "2030-01-15"})
    assert edited.get_json()["next_step_date"] == "2030-01-15"
    # 0 万元 is a planned investment, not a blank (it was dropped as unchanged from no value); "" clears a text.
    zero = staff.patch(f"/leads/{lead['id']}", json={"planned_investment_wan": 0, "next_step": ""}).get_json()
    assert zero["planned_investment_wan"] == 0 and not zero["next_step"]
    moved = staff.post(f"/leads/{lead['id']}/stage", json={"stage": "已接洽"}).get_json()
    assert moved["stage"] == "已接洽"
    assert [(e["field"], e["old"], e["new"]) for e in moved["events"] if e["field"] == "stage"] == [
        ("stage", "候选", "已接洽")
    ]
    error = assert_error(staff.post(f"/leads/{lead['id']}/stage", json={"stage": "放弃"}), 422, "validation_error")
    assert "原因" in error["message"]
    assert_error(staff.post(f"/leads/{lead['id']}/stage", json={"stage": "完成"}), 422, "validation_error")
    listed = staff.get("/leads?stage=已接洽").get_json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == lead["id"]
    assert_error(staff.delete(f"/leads/{lead['id']}"), 403, "forbidden")
    assert staff.get(f"/leads/{lead['id']}").status_code == 200


def test_lead_role_rules(app, client, ids, admin):
    firm_id = ids["合成储能电芯有限公司"]
    lead = admin.post("/leads", json={"cluster_id": OTHER_CLUSTER, "enterprise_id": firm_id}).get_json()
    staff = Api(client, make_token(app, "staff", clusters=(CLUSTER,)))
    assert_error(staff.get(f"/leads/{lead['id']}"), 403, "forbidden")
    assert_error(staff.post(f"/leads/{lead['id']}/stage", json={"stage": "已接洽"}), 403, "forbidden")
    assert_error(staff.post("/leads", json={"cluster_id": OTHER_CLUSTER, "enterprise_id": firm_id}), 403, "forbidden")
    assert staff.get("/leads").get_json()["total"] == 0
    firm = Api(client, make_token(app, "firm", enterprise_id=firm_id))
    assert_error(firm.get(f"/leads/{lead['id']}"), 403, "forbidden")
    assert_error(staff.post("/leads", json={"cluster_id": CLUSTER, "enterprise_id": 999999}), 422, "validation_error")
    assert_error(staff.post("/leads", json={"cluster_id": CLUSTER, "enterprise_id": "x"}), 422, "validation_error")
    assert admin.delete(f"/leads/{lead['id']}").status_code == 204
    assert_error(admin.get(f"/leads/{lead['id']}"), 404, "not_found")


# ----------------------------------------------------------------------------- matchmaking requests


def _make_leader(app, ids) -> int:
    """Make 合成电驱动系统有限公司 the cluster's 龙头 so its firm account may file requests there."""
    from chains.cluster_models import RosterEntry

    leader = ids["合成电驱动系统有限公司"]
    with app.app_context():
        entry = db.session.scalars(select(RosterEntry).where(RosterEntry.enterprise_id == leader)).one()
        entry.role = "龙头"
        db.session.commit()
    return leader


def test_matchmaking_requests(app, client, ids, staff):
    leader = _make_leader(app, ids)
    firm = Api(client, make_token(app, "firm", enterprise_id=leader))
    other_firm = Api(client, make_token(app, "firm", enterprise_id=ids["合成汽车零部件有限公司"]))
    supplier = ids["合成功率半导体有限公司"]
    created = firm.post("/requests", json={"supplier_id": supplier, "cluster_id": CLUSTER, "link_key": "tev-chip"})
    assert created.status_code == 201, created.get_json()
    req = created.get_json()
    assert req["status"] == "待处理" and req["chain_id"] == "tev" and req["requester_id"] == leader
    assert (
        firm.post(
            "/requests", json={"supplier_id": supplier, "cluster_id": CLUSTER, "link_key": "tev-chip"}
        ).status_code
        == 200
    )
    assert firm.get("/requests").get_json()["total"] == 1
    assert other_firm.get("/requests").get_json()["total"] == 0
    assert_error(other_firm.get(f"/requests/{req['id']}"), 404, "not_found")
    assert_error(
        firm.post("/requests", json={"supplier_id": supplier, "cluster_id": OTHER_CLUSTER, "need_text": "芯片"}),
        403,
        "forbidden",
    )
    assert_error(firm.post("/requests", json={"supplier_id": supplier, "cluster_id": CLUSTER}), 422, "validation_error")
    assert_error(firm.post(f"/requests/{req['id']}/status", json={"status": "对接中"}), 403, "forbidden")
    handled = staff.post(f"/requests/{req['id']}/status", json={"status": "对接中", "note": "已联系供应商"}).get_json()
    assert handled["status"] == "对接中" and [e["field"] for e in handled["events"]] == ["created", "status", "note"]
    assert firm.get(f"/requests/{req['id']}").get_json()["status"] == "对接中"
    assert_error(staff.post(f"/requests/{req['id']}/status", json={"status": "完美"}), 422, "validation_error")
    outsider = Api(client, make_token(app, "staff", clusters=(OTHER_CLUSTER,)))
    assert_error(outsider.get(f"/requests/{req['id']}"), 403, "forbidden")
    assert outsider.get("/requests").get_json()["total"] == 0


# ----------------------------------------------------------------------------- tokens page and CLI


def test_tokens_page_creates_once_and_revokes(app, client, auth, ids):
    from webapp.auth.models import ApiToken

    auth.login_as("staff", clusters=(CLUSTER,))
    assert client.post("/api/tokens/", data={"name": "x"}).status_code == 400  # CSRF required
    response = auth.post("/api/tokens/", {"name": "脚本"})
    assert response.status_code == 201
    html = response.get_data(as_text=True)
    import re

    token = re.search(r'data-testid="new-token">([^<]+)<', html).group(1)
    assert Api(client, token).get("/me").get_json()["role"] == "staff"
    listing = client.get("/api/tokens/").get_data(as_text=True)
    assert "脚本" in listing and token not in listing  # never shown again
    with app.app_context():
        token_id = db.session.scalars(select(ApiToken.id)).one()
    assert auth.post(f"/api/tokens/{token_id}/revoke").status_code == 302
    assert_error(Api(client, token).get("/me"), 401, "unauthorized")


def test_tokens_page_cannot_revoke_other_users_token(app, client, auth, ids):
    from webapp.auth.models import ApiToken

    make_token(app, "admin")
    with app.app_context():
        other_id = db.session.scalars(select(ApiToken.id)).one()
    auth.login_as("staff", clusters=(CLUSTER,))
    assert auth.post(f"/api/tokens/{other_id}/revoke").status_code == 404
    with app.app_context():
        assert db.session.get(ApiToken, other_id).revoked_at is None


def test_tokens_cli(app, runner, auth, client):
    auth.create_user("cli-user", "manager")
    result = runner.invoke(args=["tokens", "create", "cli-user", "--name", "同步"])
    assert result.exit_code == 0, result.output
    token = result.output.split("token (shown once): ")[1].strip()
    assert Api(client, token).get("/me").get_json()["username"] == "cli-user"
    listed = runner.invoke(args=["tokens", "list"]).output
    assert "cli-user" in listed and "同步" in listed and "active" in listed and token not in listed
    token_id = listed.split("\t")[0]
    assert runner.invoke(args=["tokens", "revoke", token_id]).exit_code == 0
    assert "revoked" in runner.invoke(args=["tokens", "list"]).output
    assert_error(Api(client, token).get("/me"), 401, "unauthorized")
    assert runner.invoke(args=["tokens", "create", "nobody"]).exit_code != 0
    assert runner.invoke(args=["tokens", "revoke", "9999"]).exit_code != 0
