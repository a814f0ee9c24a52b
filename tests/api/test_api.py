"""Contract tests of the JSON API (/api/v1): auth, roles, errors, pagination and each endpoint's behaviour."""

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
from tests.worlds.chains import CHAIN_YAML
from webapp.extensions import db

# ----------------------------------------------------------------------------- authentication


def test_requests_without_or_with_bad_token_are_401(client, ids):
    assert_error(client.get("/api/v1/clusters"), 401, "unauthorized")
    assert_error(Api(client, "cm_nope_nope").get("/clusters"), 401, "unauthorized")
    response = client.get("/api/v1/clusters", headers={"Authorization": "Basic abc"})
    assert_error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_token_is_stored_hashed_and_revocation_takes_effect(app, client, ids):
    from webapp.auth.models import ApiToken
    from webapp.auth.tokens import revoke_token

    token = make_token(app, "admin")
    api = Api(client, token)
    assert api.get("/me").get_json()["role"] == "admin"
    with app.app_context():
        row = db.session.scalars(select(ApiToken)).one()
        assert token.split("_", 2)[2] not in row.secret_hash and row.prefix in token
        assert row.last_used_at is not None
        revoke_token(db.session, row.id)
        db.session.commit()
    assert_error(api.get("/me"), 401, "unauthorized")


def test_inactive_user_token_is_rejected(app, client, ids):
    from webapp.auth.models import User

    token = make_token(app, "staff", clusters=(CLUSTER,))
    with app.app_context():
        for user in db.session.scalars(select(User)):
            user.active = False
        db.session.commit()
    assert_error(Api(client, token).get("/me"), 401, "unauthorized")


def test_session_cookie_may_read_but_not_write(app, client, auth, ids):
    auth.login_as("admin")
    assert client.get("/api/v1/chains").status_code == 200
    error = assert_error(
        client.post("/api/v1/leads", json={"cluster_id": CLUSTER, "enterprise_id": 1}), 401, "unauthorized"
    )
    assert "令牌" in error["message"]


def test_rate_limit_per_token(database_url, tmp_path):
    from tests.conftest import make_app

    app = make_app(database_url, tmp_path, API_RATE_LIMIT="3 per minute")
    client = app.test_client()
    api = Api(client, make_token(app, "admin"))
    assert [api.get("/me").status_code for _ in range(3)] == [200, 200, 200]
    assert_error(api.get("/me"), 429, "rate_limited")
    # Another token has its own budget.
    assert Api(client, make_token(app, "admin")).get("/me").status_code == 200
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def test_error_bodies_for_unknown_paths_and_methods(admin):
    assert_error(admin.get("/no-such-thing"), 404, "not_found")
    error = assert_error(admin.delete("/chains"), 405, "method_not_allowed")
    assert "GET" in error["details"]["allowed_methods"]
    assert_error(
        admin.client.post("/api/v1/leads", data="x", headers={"Authorization": f"Bearer {admin.token}"}),
        415,
        "unsupported_media_type",
    )


# ----------------------------------------------------------------------------- chains


def test_chains_read(admin):
    chains = admin.get("/chains").get_json()
    assert [c["id"] for c in chains] == ["tev"] and chains[0]["links"] == 6
    detail = admin.get("/chains/tev").get_json()
    assert [link["id"] for link in detail["links"]][:2] == ["tev-battery", "tev-cell"]
    assert detail["links"][1]["parent_id"] == "tev-battery"
    upstream = admin.get("/chains/tev/links?stage=上游").get_json()
    assert {link["id"] for link in upstream} == {"tev-cathode", "tev-chip"}
    assert admin.get("/chains/tev/links/tev-cell").get_json()["keywords"] == ["电芯", "锂离子电池"]
    assert_error(admin.get("/chains/nope"), 404, "not_found")
    assert_error(admin.get("/chains/tev/links?stage=侧游"), 422, "validation_error")


def test_chain_create_and_update_by_admin(app, admin):
    created = admin.post("/chains", json={"yaml": CHAIN_YAML})
    assert created.status_code == 201, created.get_json()
    assert created.get_json() == {"chain_id": "tc", "version": 1, "links": 8, "created": True, "unchanged": False}
    assert_error(admin.post("/chains", json={"yaml": CHAIN_YAML}), 409, "conflict")
    same = admin.put("/chains/tc", json={"yaml": CHAIN_YAML}).get_json()
    assert same["unchanged"] is True and same["version"] == 1
    # JSON document form: the same structure as the YAML file.
    document = admin.get("/chains/tc").get_json()
    import yaml

    doc = yaml.safe_load(CHAIN_YAML)
    doc["name"] = "测试产业链（修订）"
    updated = admin.put("/chains/tc", json={"document": doc}).get_json()
    assert updated["version"] == 2 and updated["created"] is True
    assert admin.get("/chains/tc").get_json()["name"] == "测试产业链（修订）" != document["name"]
    with app.app_context():  # who wrote the version, as for browser edits
        from chains.chain_models import Chain

        version = db.session.get(Chain, "tc").current_version
        assert version.author and version.reason == "API 导入" and version.changes["renamed"] == []


def test_chain_validation_errors_list_lines_and_write_nothing(app, admin):
    bad = CHAIN_YAML.replace("stage: 中游", "stage: 侧游")
    error = assert_error(admin.post("/chains", json={"yaml": bad}), 422, "validation_error")
    assert error["details"]["errors"] and all({"line", "message"} <= set(e) for e in error["details"]["errors"])
    assert any(e["line"] for e in error["details"]["errors"])
    assert admin.get("/chains/tc").status_code == 404
    assert_error(admin.post("/chains", json={}), 422, "validation_error")
    assert_error(admin.post("/chains", json={"yaml": "x", "document": {}}), 422, "validation_error")
    assert_error(admin.put("/chains/tev", json={"yaml": CHAIN_YAML}), 422, "validation_error")  # id mismatch


def test_chain_write_needs_admin(staff):
    assert_error(staff.post("/chains", json={"yaml": CHAIN_YAML}), 403, "forbidden")


# ----------------------------------------------------------------------------- clusters


def test_cluster_visibility_follows_roles(app, client, admin, staff):
    assert {c["id"] for c in admin.get("/clusters").get_json()} == {CLUSTER, OTHER_CLUSTER}
    assert [c["id"] for c in staff.get("/clusters").get_json()] == [CLUSTER]
    assert_error(staff.get(f"/clusters/{OTHER_CLUSTER}"), 403, "forbidden")
    assert_error(staff.get(f"/clusters/{OTHER_CLUSTER}/gaps"), 403, "forbidden")
    detail = staff.get(f"/clusters/{CLUSTER}").get_json()
    assert detail["chains"] == ["tev"] and len(detail["roster"]) == 4 and detail["firms"] == 4
    firm = Api(client, make_token(app, "firm"))
    for path in (
        "/clusters",
        f"/clusters/{CLUSTER}/gaps",
        "/leads",
        f"/clusters/{CLUSTER}/chains/tev/lists",
        "/chains",
        "/enterprises",
    ):
        assert_error(firm.get(path), 403, "forbidden")


def test_gaps_evaluation_and_lists(app, staff, ids):
    from chains.cluster_models import LinkAssignment

    with app.app_context():
        db.session.add(
            LinkAssignment(
                cluster_id=CLUSTER, enterprise_id=ids["合成锂电电芯科技有限公司"], chain_id="tev", link_key="tev-cell"
            )
        )
        db.session.commit()
    gaps = staff.get(f"/clusters/{CLUSTER}/gaps").get_json()
    links = {link["link_id"]: link for link in gaps["chains"][0]["links"]}
    assert links["tev-cell"]["status"] == "薄弱" and links["tev-cell"]["firms"] == 1
    assert links["tev-chip"]["status"] == "空白"
    assert staff.get(f"/clusters/{CLUSTER}/gaps?chain=tev").get_json()["chains"][0]["chain_id"] == "tev"
    assert_error(staff.get(f"/clusters/{CLUSTER}/gaps?chain=nope"), 404, "not_found")
    evaluation = staff.get(f"/clusters/{CLUSTER}/evaluation").get_json()
    assert evaluation["cluster_id"] == CLUSTER and evaluation["rules"]
    lists = staff.get(f"/clusters/{CLUSTER}/chains/tev/lists?list=weak_links").get_json()["lists"]
    assert [link["list_type"] for link in lists] == ["weak_links"]
    weak = {e["link_key"] for e in lists[0]["entries"]}
    assert "tev-chip" in weak and "tev-cell" in weak
    assert len(staff.get(f"/clusters/{CLUSTER}/chains/tev/lists").get_json()["lists"]) == 7
    refreshed = staff.post(f"/clusters/{CLUSTER}/chains/tev/lists/refresh")
    assert refreshed.status_code == 200 and len(refreshed.get_json()["lists"]) == 7
    assert_error(staff.get(f"/clusters/{CLUSTER}/chains/tev/lists?list=bogus"), 422, "validation_error")


# ----------------------------------------------------------------------------- the document


def test_openapi_document_covers_every_api_route(app, client):
    document = client.get("/api/v1/openapi.json").get_json()
    assert document["openapi"].startswith("3.")
    documented = {(path, method.upper()) for path, ops in document["paths"].items() for method in ops}
    import re

    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api."):
            path = re.sub(r"<(?:[a-z]+:)?(\w+)>", r"{\1}", rule.rule)
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                assert (path, method) in documented
    docs = client.get("/api/v1/docs")
    assert docs.status_code == 200 and "<script>" not in docs.get_data(as_text=True)
    assert "/api/v1/leads/{lead_id}/stage" in docs.get_data(as_text=True)
