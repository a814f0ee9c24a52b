"""Data integrity and audit: link keys checked, exports/reports/logins audited, atomic refresh, safe log lines
(issue 19, item 7)."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import func, select

from tests.worlds.api import CLUSTER, Api, assert_error, make_token, seed_data
from webapp.extensions import db
from webapp.services.audit.models import AuditEntry

FIRM = "合成储能电芯有限公司"


@pytest.fixture
def ids(world_copy):
    """The seeded chain tev, cluster and firms: name → id."""
    return world_copy(seed_data)


@pytest.fixture
def staff(app, client, ids):
    """A staff member of the seeded cluster, calling the API with a token."""
    return Api(client, make_token(app, "staff", clusters=(CLUSTER,)))


def _actions(app, prefix: str = "") -> list[str]:
    with app.app_context():
        query = select(AuditEntry.action).order_by(AuditEntry.id)
        if prefix:
            query = query.where(AuditEntry.action.startswith(prefix))
        return list(db.session.scalars(query))


def test_lead_with_a_link_key_not_in_the_chain_is_refused(app, staff, ids):
    from webapp.leads.models import Lead

    response = staff.post(
        "/leads", {"cluster_id": CLUSTER, "enterprise_id": ids[FIRM], "chain_id": "tev", "link_key": "no-such-link"}
    )
    error = assert_error(response, 422, "validation_error")
    assert "link_key" in error["details"]["body"]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Lead)) == 0
    ok = staff.post(
        "/leads", {"cluster_id": CLUSTER, "enterprise_id": ids[FIRM], "chain_id": "tev", "link_key": "tev-cell"}
    )
    assert ok.status_code == 201


def test_api_list_refresh_and_its_audit_entry_commit_together(app, staff, monkeypatch):
    from chains.list_models import ListEntry
    from webapp.api import views_clusters

    def failing_audit(*args, **kwargs):
        raise RuntimeError("audit store unavailable")

    monkeypatch.setattr(views_clusters, "audit", failing_audit)
    with pytest.raises(RuntimeError):
        staff.post(f"/clusters/{CLUSTER}/chains/tev/lists/refresh")
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ListEntry)) == 0  # nothing without its entry


def test_logins_failures_lockouts_and_logouts_are_audited(app, auth):
    from webapp.auth.models import MAX_FAILED_LOGINS

    app.config["LOGIN_RATE_LIMIT"] = "1000 per minute"
    auth.create_user("gus", "staff")
    auth.login("gus")
    auth.logout()
    for _ in range(MAX_FAILED_LOGINS):
        auth.login("gus", "wrong-password-123")
    auth.login("nobody-here", "wrong-password-123")
    actions = _actions(app)
    assert actions[:2] == ["login.success", "logout"]
    assert actions.count("login.failure") == MAX_FAILED_LOGINS + 1 and actions.count("login.lockout") == 1
    with app.app_context():
        unknown = db.session.scalars(select(AuditEntry).where(AuditEntry.username == "nobody-here")).one()
        assert unknown.action == "login.failure" and unknown.user_id is None
        assert "password" not in str(unknown.detail) and "wrong-password" not in str(unknown.detail)


def test_bulk_exports_are_audited(app, auth, client, ids):
    auth.login_as("staff", clusters=(CLUSTER,))
    assert client.get("/leads/export.xlsx").status_code == 200
    assert client.get(f"/clusters/{CLUSTER}/chains/tev/lists/export.xlsx").status_code == 200
    assert client.get(f"/clusters/{CLUSTER}/chains/tev/lists/weak_links/export.csv").status_code == 200
    assert _actions(app)[-3:] == ["lead.export", "list.export", "list.export"]


def test_import_report_downloads_are_audited(app, auth, client, tmp_path):
    from chains.enterprise_models import ImportJob

    report = tmp_path / "report.csv"
    report.write_text("行号,结果\n2,inserted\n", encoding="utf-8")
    with app.app_context():
        job = ImportJob(filename="a.csv", status="done", report_path=str(report))
        db.session.add(job)
        db.session.commit()
        job_id = job.id
    auth.login_as("staff")
    assert client.get(f"/imports/{job_id}/report.csv").status_code == 200
    assert _actions(app)[-1] == "import.report"


def test_user_names_cannot_forge_log_lines(app):
    from webapp.logs import CHAINMATCH_HANDLER_ATTR

    handler = next(h for h in logging.getLogger("chainmatch").handlers if getattr(h, CHAINMATCH_HANDLER_ATTR, False))
    record = logging.LogRecord(
        "chainmatch.auth",
        logging.INFO,
        __file__,
        1,
        "failed login for %s",
        ("mallory\n2026-12-05 INFO [-] chainmatch.auth: login admin\r",),
        None,
    )
    handler.filter(record)  # adds the request id
    line = handler.format(record)
    assert "\n" not in line and "\r" not in line
    assert "mallory\\n2026-12-05" in line


def test_cli_refuses_user_names_with_control_characters(runner):
    result = runner.invoke(args=["users", "create", "bad\nname", "--role", "staff"])
    assert result.exit_code != 0
