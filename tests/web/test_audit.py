"""The audit log records who changed what; only admins can read it."""

from __future__ import annotations

from webapp.extensions import db
from webapp.services.audit import record


def test_admin_reads_audit_entries_escaped(app, auth, client):
    with app.test_request_context():
        record("lead.stage", "lead", 7, cluster_id="c1", old="候选", new="<script>x</script>")
        db.session.commit()
    auth.login_as("admin")
    html = client.get("/audit/").get_data(as_text=True)
    assert "lead.stage" in html and "cli" in html
    assert "<script>x</script>" not in html


def test_audit_log_is_admin_only(auth, client):
    assert client.get("/audit/").status_code == 302  # anonymous → login
    auth.login_as("staff")
    assert client.get("/audit/").status_code == 403


def _entries(app, prefix: str):
    from sqlalchemy import select

    from webapp.services.audit.models import AuditEntry

    with app.app_context():
        return db.session.scalars(
            select(AuditEntry).where(AuditEntry.action.startswith(prefix)).order_by(AuditEntry.id)
        ).all()


def test_cli_imports_of_chain_maps_clusters_and_firms_are_audited_as_cli(app, runner, tmp_path):
    from tests.worlds.chains import CHAIN_YAML, cluster_yaml, write

    chain_file = write(tmp_path, "tc.yaml", CHAIN_YAML)
    assert runner.invoke(args=["chains", "import", str(chain_file)]).exit_code == 0
    cluster_file = write(tmp_path, "tcl.yaml", cluster_yaml())
    assert runner.invoke(args=["clusters", "import", str(cluster_file)]).exit_code == 0
    firms = tmp_path / "firms.csv"
    firms.write_text("外部编号,企业名称,城市,数据说明\nsyn-1,合成测试企业,青岛市,合成数据\n", encoding="utf-8")
    assert runner.invoke(args=["firms", "import", str(firms)]).exit_code == 0
    assert runner.invoke(args=["lists", "tcl", "--chain", "tc"]).exit_code == 0
    (chain,) = _entries(app, "chain.import")
    assert (chain.username, chain.object_id, chain.detail["version"]) == ("cli", "tc", 1)
    (cluster,) = _entries(app, "cluster.import")
    assert cluster.object_id == "tcl" and cluster.username == "cli"
    (firm_import,) = _entries(app, "enterprise.import")
    assert firm_import.detail["inserted"] == 1 and firm_import.username == "cli"
    (refresh,) = _entries(app, "list.refresh")
    assert refresh.cluster_id == "tcl" and refresh.username == "cli"


def test_web_list_refresh_and_upload_are_audited_with_the_user(app, auth, client):
    import io

    from tests.worlds.clusters import CHAIN, CLUSTER_A, build_world

    with app.app_context():
        build_world(db.session)
    username = auth.login_as("staff", clusters=(CLUSTER_A,))
    assert auth.post(f"/clusters/{CLUSTER_A}/chains/{CHAIN}/lists/refresh").status_code == 302
    content = "外部编号,企业名称,城市,数据说明\nsyn-2,合成上传企业,青岛市,合成数据\n".encode("utf-8")
    response = auth.post(
        "/imports/", data={"file": (io.BytesIO(content), "名单.csv")}, content_type="multipart/form-data"
    )
    assert response.status_code == 303
    (refresh,) = _entries(app, "list.refresh")
    assert (refresh.username, refresh.cluster_id, refresh.object_id) == (username, CLUSTER_A, CHAIN)
    (upload,) = _entries(app, "enterprise.import")
    assert upload.username == username and upload.detail["filename"] == "名单.csv"
    from tests.worlds.imports import wait_until_finished

    wait_until_finished(client, int(upload.object_id))  # let the background import end before teardown


def test_admin_filters_the_audit_log_by_user_action_and_cluster(app, auth, client):
    with app.test_request_context():
        record("lead.stage", "lead", 1, cluster_id="c-a", stage="已接洽")
        record("list.pin", "list_entry", 2, cluster_id="c-b", list_type="leaders")
        db.session.commit()
    auth.login_as("admin", username="auditor")
    auth.post("/auth/users/", {"username": "newbie", "role": "staff"})
    by_user = client.get("/audit/?user=auditor").get_data(as_text=True)
    assert "user.create" in by_user and "lead.stage" not in by_user
    by_cluster = client.get("/audit/?cluster=c-b").get_data(as_text=True)
    assert "list.pin" in by_cluster and "lead.stage" not in by_cluster
    by_action = client.get("/audit/?action=lead").get_data(as_text=True)
    assert "lead.stage" in by_action and "list.pin" not in by_action


def test_api_list_refresh_and_cli_tokens_are_audited(app, runner):
    from tests.worlds.api import make_token
    from tests.worlds.clusters import CHAIN, CLUSTER_A, build_world

    with app.app_context():
        build_world(db.session)
    token = make_token(app, "manager", clusters=(CLUSTER_A,))
    response = app.test_client().post(
        f"/api/v1/clusters/{CLUSTER_A}/chains/{CHAIN}/lists/refresh",
        headers={"Authorization": f"Bearer {token}"},
        json={},
    )
    assert response.status_code == 200
    (refresh,) = _entries(app, "list.refresh")
    assert refresh.cluster_id == CLUSTER_A and refresh.username.startswith("manager-")
    assert runner.invoke(args=["users", "create", "bot", "--role", "staff"]).exit_code == 0
    created = runner.invoke(args=["tokens", "create", "bot"])
    assert created.exit_code == 0, created.output
    secret = created.output.rsplit(":", 1)[1].strip()
    token_id = int(created.output.split("created token ")[1].split()[0])
    assert runner.invoke(args=["tokens", "revoke", str(token_id)]).exit_code == 0
    entries = _entries(app, "api_token.")
    assert [(e.action, e.object_id, e.username) for e in entries] == [
        ("api_token.create", str(token_id), "cli"),
        ("api_token.revoke", str(token_id), "cli"),
    ]
    assert secret not in str(entries[0].detail)


def test_candidate_feedback_on_the_page_is_audited(app, auth):
    from tests.worlds.clusters import CLUSTER_A, build_world

    with app.app_context():
        ids = build_world(db.session)
    username = auth.login_as("staff", clusters=(CLUSTER_A,))
    response = auth.post(
        f"/candidates/{CLUSTER_A}/tc-parts/feedback", {"enterprise_id": str(ids["candidate"]), "label": "relevant"}
    )
    assert response.status_code in (200, 302)
    (entry,) = _entries(app, "candidate.feedback")
    assert (entry.username, entry.object_id, entry.detail["label"]) == (username, str(ids["candidate"]), "relevant")
