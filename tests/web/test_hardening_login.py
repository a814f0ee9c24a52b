"""Login abuse: lock-outs that neither reveal accounts nor lock out the owner; equal work for every failure (issue 19)."""

from __future__ import annotations

import re

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from tests.conftest import csrf_token_from
from webapp.auth.models import MAX_FAILED_LOGINS, User
from webapp.extensions import db

ATTACKER = "198.51.100.7"
OWNER = "203.0.113.20"
WRONG = "wrong-password-123"


@pytest.fixture(autouse=True)
def generous_rate_limit(app):
    """The per-address rate limit is not what these tests are about."""
    app.config["LOGIN_RATE_LIMIT"] = "1000 per minute"


def _login(client, username: str, password: str, address: str):
    env = {"REMOTE_ADDR": address}
    token = csrf_token_from(client.get("/auth/login", environ_base=env).get_data(as_text=True))
    return client.post(
        "/auth/login", environ_base=env, data={"username": username, "password": password, "csrf_token": token}
    )


def _error(response) -> str:
    match = re.search(r'role="alert">([^<]*)<', response.get_data(as_text=True))
    return match.group(1) if match else ""


def test_an_attacker_cannot_lock_the_owner_out(app, auth):
    auth.create_user("admin1", "admin")
    attacker, owner = app.test_client(), app.test_client()
    for _ in range(MAX_FAILED_LOGINS + 2):
        _login(attacker, "admin1", WRONG, ATTACKER)
    assert _login(attacker, "admin1", auth.PASSWORD, ATTACKER).status_code == 401  # that address stays throttled
    assert _login(owner, "admin1", auth.PASSWORD, OWNER).status_code == 302  # the owner elsewhere logs in


def test_lock_out_answers_exactly_like_an_unknown_account(app, auth):
    auth.create_user("carol", "manager")
    client = app.test_client()
    answers = {}
    for name in ("carol", "no-such-user"):
        responses = [_login(client, name, WRONG, ATTACKER) for _ in range(MAX_FAILED_LOGINS + 1)]
        answers[name] = [(r.status_code, _error(r)) for r in responses]
    assert answers["carol"] == answers["no-such-user"]
    assert len({text for _, text in answers["carol"]}) == 1  # one message for every failure, locked or not
    assert "锁定" not in answers["carol"][-1][1]


def test_disabled_unknown_and_locked_attempts_spend_one_hash_each(app, auth, monkeypatch):
    auth.create_user("dora", "staff")
    auth.create_user("eve", "staff")
    with app.app_context():
        db.session.scalars(select(User).where(User.username == "eve")).one().active = False
        db.session.commit()
    calls = []
    original = PasswordHasher.verify

    def counting(self, hash_, password):
        calls.append(1)
        return original(self, hash_, password)

    monkeypatch.setattr(PasswordHasher, "verify", counting)
    client = app.test_client()
    for _ in range(MAX_FAILED_LOGINS):
        _login(client, "dora", WRONG, ATTACKER)
    cases = {
        "unknown": ("ghost", WRONG),
        "wrong password": ("dora", WRONG, OWNER),
        "disabled, right password": ("eve", auth.PASSWORD),
        "locked, right password": ("dora", auth.PASSWORD),
    }
    for label, case in cases.items():
        calls.clear()
        address = case[2] if len(case) > 2 else ATTACKER
        response = _login(client, case[0], case[1], address)
        assert response.status_code == 401, label
        assert len(calls) == 1, label


def test_a_successful_login_clears_the_throttle_of_that_address(app, auth):
    auth.create_user("fay", "staff")
    client = app.test_client()
    for _ in range(MAX_FAILED_LOGINS - 1):
        _login(client, "fay", WRONG, ATTACKER)
    assert _login(client, "fay", auth.PASSWORD, ATTACKER).status_code == 302
    client.post(
        "/auth/logout",
        data={"csrf_token": csrf_token_from(client.get("/").get_data(as_text=True))},
        environ_base={"REMOTE_ADDR": ATTACKER},
    )
    for _ in range(MAX_FAILED_LOGINS - 1):
        _login(client, "fay", WRONG, ATTACKER)
    assert _login(client, "fay", auth.PASSWORD, ATTACKER).status_code == 302
