"""Login, lock-out, rate limit, CSRF and the users command."""
from __future__ import annotations

import logging

from sqlalchemy import select

from webapp.auth.models import MAX_FAILED_LOGINS, User
from webapp.extensions import db


def test_login_and_logout(auth, client):
    auth.create_user("alice", "staff")
    response = auth.login("alice")
    assert response.status_code == 302
    assert "alice" in client.get("/").get_data(as_text=True)
    auth.logout()
    assert "登录" in client.get("/").get_data(as_text=True)


def test_wrong_password_is_refused_in_chinese(auth):
    auth.create_user("bob", "staff")
    response = auth.login("bob", "wrong-password-123")
    assert response.status_code == 401
    assert "用户名或密码错误" in response.get_data(as_text=True)


def test_account_locks_after_repeated_failures(app, auth):
    auth.create_user("carol", "manager")
    for _ in range(MAX_FAILED_LOGINS):
        auth.login("carol", "wrong-password-123")
    response = auth.login("carol")  # right password, but locked now
    assert response.status_code == 401
    assert "锁定" in response.get_data(as_text=True)
    with app.app_context():
        user = db.session.scalars(select(User).where(User.username == "carol")).one()
        assert user.locked_until is not None


def test_login_rate_limit(app, auth):
    app.config["LOGIN_RATE_LIMIT"] = "3 per minute"
    statuses = [auth.login("nobody", "wrong-password-123").status_code for _ in range(5)]
    assert statuses[:3] == [401, 401, 401]
    assert 429 in statuses[3:]


def test_password_never_logged(auth, caplog):
    auth.create_user("dave", "staff")
    with caplog.at_level(logging.DEBUG, logger="chainmatch"):
        auth.login("dave", "wrong-password-secret")
        auth.login("dave")
    text = caplog.text
    assert "wrong-password-secret" not in text and auth.PASSWORD not in text
    assert "dave" in text


def test_state_change_without_csrf_token_is_rejected(auth, client):
    auth.create_user("erin", "staff")
    response = client.post("/auth/login", data={"username": "erin", "password": auth.PASSWORD})
    assert response.status_code == 400
    assert "CSRF" in response.get_data(as_text=True)


def test_logout_requires_post(auth, client):
    auth.login_as("staff")
    assert client.get("/auth/logout").status_code == 405


def test_open_redirect_is_refused(auth, client):
    auth.create_user("frank", "staff")
    token = auth.csrf_token("/auth/login")
    response = client.post("/auth/login?next=//evil.example/x",
                           data={"username": "frank", "password": auth.PASSWORD, "csrf_token": token})
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_users_create_command_generates_a_password_once(app, runner):
    result = runner.invoke(args=["users", "create", "root", "--role", "admin"])
    assert result.exit_code == 0, result.output
    assert "password (shown once):" in result.output
    password = result.output.rsplit(":", 1)[1].strip()
    with app.app_context():
        user = db.session.scalars(select(User).where(User.username == "root")).one()
        assert user.role == "admin" and user.check_password(password)
        assert password not in user.password_hash
    again = runner.invoke(args=["users", "create", "root", "--role", "admin"])
    assert again.exit_code != 0


def test_users_create_rejects_a_short_password(runner):
    result = runner.invoke(args=["users", "create", "x", "--role", "staff", "--password", "short"])
    assert result.exit_code != 0
    assert "password too short" in result.output
