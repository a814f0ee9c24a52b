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
    from webapp.auth.models import LoginThrottle

    auth.create_user("carol", "manager")
    for _ in range(MAX_FAILED_LOGINS):
        auth.login("carol", "wrong-password-123")
    response = auth.login("carol")  # right password, but this address is locked out for this name now
    assert response.status_code == 401
    assert "用户名或密码错误" in response.get_data(as_text=True)
    with app.app_context():
        row = db.session.scalars(select(LoginThrottle).where(LoginThrottle.username == "carol")).one()
        assert row.locked_until is not None


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
    response = client.post(
        "/auth/login?next=//evil.example/x", data={"username": "frank", "password": auth.PASSWORD, "csrf_token": token}
    )
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


# ----------------------------------------------------------------------------- lock-out and logging (extended)


def test_lock_out_ends_when_the_lock_time_has_passed(app, auth):
    from datetime import datetime, timedelta, timezone

    auth.create_user("gina", "staff")
    for _ in range(MAX_FAILED_LOGINS):
        auth.login("gina", "wrong-password-123")
    from webapp.auth.models import LoginThrottle

    with app.app_context():
        row = db.session.scalars(select(LoginThrottle).where(LoginThrottle.username == "gina")).one()
        row.locked_until = datetime.now(timezone.utc) - timedelta(seconds=1)  # the lock period is over
        db.session.commit()
    assert auth.login("gina").status_code == 302


def test_lock_out_does_not_reveal_whether_a_username_exists(auth):
    for _ in range(MAX_FAILED_LOGINS + 1):
        response = auth.login("no-such-user", "wrong-password-123")
    assert response.status_code in (401, 429)
    assert "锁定" not in response.get_data(as_text=True)


def test_passwords_set_by_admin_or_cli_are_never_logged(app, auth, client, runner, caplog):
    with caplog.at_level(logging.DEBUG):
        auth.login_as("admin")
        auth.post("/auth/users/", {"username": "henry", "role": "staff", "password": "admin-chosen-secret-1"})
        result = runner.invoke(args=["users", "set-password", "henry", "--password", "cli-chosen-secret-22"])
        assert result.exit_code == 0, result.output
        generated = runner.invoke(args=["users", "set-password", "henry"]).output.rsplit(":", 1)[1].strip()
    for secret in ("admin-chosen-secret-1", "cli-chosen-secret-22", generated):
        assert secret not in caplog.text


# ----------------------------------------------------------------------------- user management page (admin)


def _created_password(response) -> str:
    return response.get_data(as_text=True).split('data-testid="new-password">')[1].split("<")[0]


def test_admin_creates_a_user_with_a_password_shown_once(app, auth, client):
    from webapp.services.audit.models import AuditEntry

    auth.login_as("admin", username="root")
    page = client.get("/auth/users/").get_data(as_text=True)
    assert "用户管理" in page and 'name="csrf_token"' in page
    response = auth.post(
        "/auth/users/", {"username": "ivy", "display_name": "招商一部", "role": "staff", "password": ""}
    )
    assert response.status_code == 200
    password = _created_password(response)
    assert len(password) >= 10
    assert password not in client.get("/auth/users/").get_data(as_text=True)
    with app.app_context():
        user = db.session.scalars(select(User).where(User.username == "ivy")).one()
        assert user.role == "staff" and user.check_password(password)
        entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "user.create")).one()
        assert entry.username == "root" and entry.object_id == str(user.id) and password not in str(entry.detail)
    auth.logout()
    assert auth.login("ivy", password).status_code == 302


def test_admin_creates_a_firm_account_for_an_enterprise_with_clusters(app, auth, client):
    from chains.cluster_models import Cluster
    from chains.enterprise_models import Enterprise

    with app.app_context():
        firm = Enterprise(name="链主测试企业", name_norm="链主测试企业", is_synthetic=True)
        db.session.add(firm)
        db.session.flush()
        db.session.add(Cluster(id="c-one", name="一区", chain_leader_id=firm.id))
        db.session.commit()
        firm_id = firm.id
    auth.login_as("admin")
    assert firm_id and "链主测试企业" in client.get("/auth/users/").get_data(as_text=True)
    missing = auth.post("/auth/users/", {"username": "leader", "role": "firm", "clusters": "c-one"})
    assert missing.status_code == 400 and "必须指定所代表的企业" in missing.get_data(as_text=True)
    response = auth.post(
        "/auth/users/",
        {
            "username": "leader",
            "role": "firm",
            "clusters": "c-one",
            "enterprise_id": str(firm_id),
            "password": "leader-password-1",
        },
    )
    assert response.status_code == 200
    assert 'data-testid="new-password"' not in response.get_data(as_text=True)  # the admin typed it
    with app.app_context():
        user = db.session.scalars(select(User).where(User.username == "leader")).one()
        assert user.enterprise_id == firm_id and user.cluster_ids() == {"c-one"}


def test_user_form_rejects_bad_input_in_chinese(auth, client):
    auth.login_as("admin", username="root2")
    cases = [
        ({"username": "x", "role": "staff"}, "用户名须为"),
        ({"username": "root2", "role": "staff"}, "已存在"),
        ({"username": "jack", "role": "boss"}, "有效的角色"),
        ({"username": "jack", "role": "staff", "clusters": "nowhere"}, "不存在"),
        ({"username": "jack", "role": "staff", "password": "short"}, "至少需要"),
    ]
    for form, message in cases:
        response = auth.post("/auth/users/", form)
        assert response.status_code == 400 and message in response.get_data(as_text=True), form


def test_admin_edits_role_and_clusters_and_cannot_lock_themselves_out(app, auth, client):
    from chains.cluster_models import Cluster
    from webapp.services.audit.models import AuditEntry

    with app.app_context():
        db.session.add_all([Cluster(id="c-a", name="甲"), Cluster(id="c-b", name="乙")])
        db.session.commit()
    user_id = auth.create_user("kate", "staff", clusters=("c-a",))
    auth.login_as("admin", username="boss")
    response = auth.post(f"/auth/users/{user_id}/edit", {"role": "manager", "clusters": ["c-a", "c-b"]})
    assert response.status_code == 303
    with app.app_context():
        kate = db.session.get(User, user_id)
        assert kate.role == "manager" and kate.cluster_ids() == {"c-a", "c-b"}
        entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "user.edit")).one()
        assert entry.detail["old"]["clusters"] == ["c-a"] and entry.detail["new"]["role"] == "manager"
        boss_id = db.session.scalars(select(User.id).where(User.username == "boss")).one()
    assert auth.post(f"/auth/users/{boss_id}/edit", {"role": "staff"}).status_code == 400
    auth.post(f"/auth/users/{boss_id}/disable")
    with app.app_context():
        boss = db.session.get(User, boss_id)
        assert boss.role == "admin" and boss.active
    assert client.get("/auth/users/").status_code == 200
    assert client.get("/auth/users/99999").status_code == 404


def test_user_management_needs_admin_and_csrf(app, auth, client):
    user_id = auth.create_user("lily", "staff")
    auth.login_as("manager")
    assert client.get("/auth/users/").status_code == 403
    assert auth.post(f"/auth/users/{user_id}/disable").status_code == 403
    auth.logout()
    auth.login_as("admin")
    assert client.post(f"/auth/users/{user_id}/disable").status_code == 400  # no CSRF token
    assert client.get(f"/auth/users/{user_id}/disable").status_code == 405
    with app.app_context():
        assert db.session.get(User, user_id).active


def test_admin_nav_has_user_management_entry(auth, client):
    auth.login_as("admin")
    assert "用户管理" in client.get("/").get_data(as_text=True)
    auth.logout()
    auth.login_as("staff")
    assert "用户管理" not in client.get("/").get_data(as_text=True)


# ----------------------------------------------------------------------------- users command


def test_users_set_password_disable_enable_assign_are_audited_as_cli(app, runner):
    from chains.cluster_models import Cluster
    from webapp.services.audit.models import AuditEntry

    with app.app_context():
        db.session.add_all([Cluster(id="c-x", name="X"), Cluster(id="c-y", name="Y")])
        db.session.commit()
    assert runner.invoke(args=["users", "create", "mona", "--role", "staff", "--cluster", "c-x"]).exit_code == 0
    result = runner.invoke(args=["users", "set-password", "mona"])
    assert result.exit_code == 0 and "password (shown once):" in result.output
    password = result.output.rsplit(":", 1)[1].strip()
    assert runner.invoke(args=["users", "assign", "mona", "--cluster", "c-y"]).exit_code == 0
    assert runner.invoke(args=["users", "disable", "mona"]).exit_code == 0
    listing = runner.invoke(args=["users", "list"]).output
    assert "mona\tstaff\tc-x,c-y\t\tdisabled" in listing
    assert runner.invoke(args=["users", "enable", "mona"]).exit_code == 0
    assert runner.invoke(args=["users", "assign", "mona", "--cluster", "c-y", "--replace"]).exit_code == 0
    assert runner.invoke(args=["users", "assign", "nobody", "--cluster", "c-y"]).exit_code != 0
    assert runner.invoke(args=["users", "assign", "mona", "--cluster", "c-zz"]).exit_code != 0
    with app.app_context():
        mona = db.session.scalars(select(User).where(User.username == "mona")).one()
        assert mona.active and mona.cluster_ids() == {"c-y"} and mona.check_password(password)
        entries = db.session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
        assert [e.action for e in entries] == [
            "user.create",
            "user.set_password",
            "user.assign",
            "user.disable",
            "user.enable",
            "user.assign",
        ]
        assert {e.username for e in entries} == {"cli"}


def test_demo_accounts_get_distinct_generated_passwords_printed_once(app, capsys):
    from chains.cluster_models import Cluster
    from webapp.cli.demo_accounts import DEMO_USERS, create_demo_accounts

    with app.app_context():
        db.session.add(Cluster(id="c-demo", name="演示"))
        db.session.commit()
        create_demo_accounts(app, demo_accounts=False)
        assert db.session.scalars(select(User)).all() == []  # only on request
        create_demo_accounts(app, demo_accounts=True)
        printed = capsys.readouterr().out
        passwords = [line.rsplit(": ", 1)[1] for line in printed.splitlines() if "仅显示一次" in line]
        assert len(passwords) == len(DEMO_USERS) == len(set(passwords))
        for (username, _, _), password in zip(DEMO_USERS, passwords):
            user = db.session.scalars(select(User).where(User.username == username)).one()
            assert user.check_password(password)
        create_demo_accounts(app, demo_accounts=True)  # idempotent: nothing changes, nothing printed again
        assert "仅显示一次" not in capsys.readouterr().out
