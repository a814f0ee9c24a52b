"""Sessions and tokens: absolute lifetime, token expiry and revocation, self-service password change, the admin
token view, no history cache of sensitive pages, upload retention (issue 19, item 8)."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from tests.conftest import AuthActions
from tests.worlds.imports import job_id_from, wait_until_finished
from webapp.auth.models import ApiToken
from webapp.extensions import db
from webapp.services.audit.models import AuditEntry

PROTECTED = "/api/tokens/"
NEW_PASSWORD = "a-brand-new-password-9"


def _token_for(app, username: str) -> str:
    from webapp.auth.models import User
    from webapp.auth.tokens import create_token

    with app.app_context():
        user = db.session.scalars(select(User).where(User.username == username)).one()
        _, plaintext = create_token(db.session, user.id, "t")
        db.session.commit()
        return plaintext


def _me(app, token: str) -> int:
    return app.test_client().get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code


def test_a_session_ends_at_its_absolute_lifetime_however_active(app, auth, client):
    auth.login_as("staff")
    assert client.get(PROTECTED).status_code == 200
    with client.session_transaction() as sess:
        sess["_login_at"] = int(time.time() - app.config["SESSION_MAX_HOURS"] * 3600 - 60)
    response = client.get(PROTECTED)
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]


def test_api_tokens_expire(app, auth):
    auth.create_user("tess", "staff")
    token = _token_for(app, "tess")
    with app.app_context():
        row = db.session.scalars(select(ApiToken)).one()
        assert row.expires_at is not None
        expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=UTC)
        expected = datetime.now(UTC) + timedelta(days=app.config["API_TOKEN_DAYS"])
        assert abs((expires - expected).total_seconds()) < 60
    assert _me(app, token) == 200
    with app.app_context():
        db.session.scalars(select(ApiToken)).one().expires_at = datetime.now(UTC) - timedelta(seconds=1)
        db.session.commit()
    assert _me(app, token) == 401


def test_cli_tokens_take_a_validity_and_list_their_expiry(app, auth, runner):
    auth.create_user("vic", "staff")
    forever = runner.invoke(args=["tokens", "create", "vic", "--days", "0"])
    assert forever.exit_code == 0, forever.output
    assert runner.invoke(args=["tokens", "create", "vic", "--days", "7"]).exit_code == 0
    with app.app_context():
        rows = db.session.scalars(select(ApiToken).order_by(ApiToken.id)).all()
        assert rows[0].expires_at is None and rows[1].expires_at is not None
        rows[1].expires_at = datetime.now(UTC) - timedelta(seconds=1)
        db.session.commit()
    listed = runner.invoke(args=["tokens", "list"]).output.splitlines()
    assert listed[0].endswith("\texpired") and listed[1].endswith("\tnever\tactive")


def test_a_password_reset_by_an_admin_revokes_the_users_tokens(app, auth):
    user_id = auth.create_user("rita", "staff")
    token = _token_for(app, "rita")
    assert _me(app, token) == 200
    auth.login_as("admin")
    assert auth.post(f"/auth/users/{user_id}/password", {"password": NEW_PASSWORD}).status_code == 200
    assert _me(app, token) == 401


def test_cli_password_change_revokes_the_users_tokens(app, auth, runner):
    auth.create_user("cleo", "staff")
    token = _token_for(app, "cleo")
    result = runner.invoke(args=["users", "set-password", "cleo", "--password", NEW_PASSWORD])
    assert result.exit_code == 0, result.output
    assert _me(app, token) == 401


def test_self_service_password_change(app, auth, client):
    username = auth.login_as("manager")
    token = _token_for(app, username)
    other_browser = app.test_client()
    AuthActions(app, other_browser).login(username)
    assert client.get("/auth/password").status_code == 200
    wrong = auth.post(
        "/auth/password",
        {"current_password": "not-my-password", "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD},
    )
    assert wrong.status_code == 400 and "当前密码不正确" in wrong.get_data(as_text=True)
    mismatch = auth.post(
        "/auth/password",
        {"current_password": auth.PASSWORD, "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD + "x"},
    )
    assert mismatch.status_code == 400
    done = auth.post(
        "/auth/password",
        {"current_password": auth.PASSWORD, "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD},
    )
    assert done.status_code == 303
    assert client.get(PROTECTED).status_code == 200  # this browser stays logged in
    assert other_browser.get(PROTECTED).status_code == 302  # every other session ends
    assert _me(app, token) == 401  # and every API token is revoked
    assert AuthActions(app, app.test_client()).login(username).status_code == 401
    assert AuthActions(app, app.test_client()).login(username, NEW_PASSWORD).status_code == 302
    with app.app_context():
        actions = list(db.session.scalars(select(AuditEntry.action).where(AuditEntry.action.startswith("user."))))
        assert actions == ["user.change_password"]


def test_self_service_password_change_needs_the_csrf_token(auth, client):
    auth.login_as("staff")
    response = client.post(
        "/auth/password",
        data={"current_password": auth.PASSWORD, "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD},
    )
    assert response.status_code == 400


def test_admins_see_and_revoke_every_users_tokens(app, auth, client):
    auth.create_user("uma", "staff")
    token = _token_for(app, "uma")
    staff_client = app.test_client()
    AuthActions(app, staff_client).login("uma")
    assert staff_client.get("/api/tokens/all").status_code == 403
    auth.login_as("admin")
    page = client.get("/api/tokens/all").get_data(as_text=True)
    prefix = token.split("_")[1]
    assert "uma" in page and prefix in page and token.split("_", 2)[2] not in page
    with app.app_context():
        token_id = db.session.scalars(select(ApiToken.id)).one()
    assert auth.post(f"/api/tokens/all/{token_id}/revoke").status_code == 303
    assert _me(app, token) == 401
    with app.app_context():
        entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "api_token.revoke")).one()
        assert entry.object_id == str(token_id)


def test_pages_of_logged_in_users_stay_out_of_the_htmx_history_cache(auth, client):
    auth.login_as("staff")
    assert 'hx-history="false"' in client.get(PROTECTED).get_data(as_text=True)


def test_uploaded_import_files_are_kept_for_the_retention_period(app, auth, client):
    from chains.enterprise_models import ImportJob

    upload_dir = app.config["UPLOAD_DIR"]
    old_file = os.path.join(upload_dir, "import-old.csv")
    old_report = os.path.join(upload_dir, "import-old-report.csv")
    recent_file = os.path.join(upload_dir, "import-recent.csv")
    for path in (old_file, old_report, recent_file):
        with open(path, "w", encoding="utf-8") as fh:
            fh.write("企业名称\n甲公司\n")
    past = time.time() - (app.config["UPLOAD_RETENTION_DAYS"] + 1) * 86400
    os.utime(old_file, (past, past))
    os.utime(old_report, (past, past))
    with app.app_context():
        db.session.add(ImportJob(filename="old.csv", stored_path=old_file, report_path=old_report, status="done"))
        db.session.commit()
    auth.login_as("staff")
    from io import BytesIO

    response = auth.post(
        "/imports/", {"file": (BytesIO("企业名称\n乙公司\n".encode()), "new.csv")}, content_type="multipart/form-data"
    )
    assert not os.path.exists(old_file) and not os.path.exists(old_report)
    assert os.path.exists(recent_file)
    wait_until_finished(client, job_id_from(response))  # the import thread must end before the database goes
