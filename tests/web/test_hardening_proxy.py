"""The off-by-default trusted-proxy setting: client addresses from X-Forwarded-For only when enabled (issue 19)."""

from __future__ import annotations

import pytest

from tests.conftest import csrf_token_from, make_app
from webapp.extensions import db

PASSWORD = "wrong-password-123"


@pytest.fixture
def make(database_url, tmp_path):
    apps = []

    def build(**overrides):
        app = make_app(database_url, tmp_path, LOGIN_RATE_LIMIT="2 per minute", **overrides)
        apps.append(app)
        return app

    yield build
    for app in apps:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def _login(client, forwarded_for: str) -> int:
    headers = {"X-Forwarded-For": forwarded_for}
    token = csrf_token_from(client.get("/auth/login", headers=headers).get_data(as_text=True))
    return client.post(
        "/auth/login", headers=headers, data={"username": "nobody", "password": PASSWORD, "csrf_token": token}
    ).status_code


def test_behind_a_trusted_proxy_each_client_has_its_own_login_bucket(make):
    client = make(TRUSTED_PROXY_HOPS=1).test_client()
    assert [_login(client, "203.0.113.1") for _ in range(3)] == [401, 401, 429]
    assert _login(client, "203.0.113.2") == 401  # another client behind the same proxy


def test_forwarded_headers_are_ignored_by_default(make):
    client = make().test_client()
    statuses = [_login(client, f"203.0.113.{n}") for n in range(1, 4)]
    assert statuses == [401, 401, 429]  # a spoofed X-Forwarded-For does not buy a fresh bucket


def test_hop_count_trusts_only_the_proxies_own_entry(make):
    client = make(TRUSTED_PROXY_HOPS=1).test_client()
    # The client forges a first entry; the proxy appends the real address, the only one trusted with one hop.
    assert [_login(client, f"198.51.100.{n}, 203.0.113.9") for n in range(1, 4)] == [401, 401, 429]


def test_forwarded_proto_marks_requests_secure_only_behind_a_trusted_proxy(make):
    app = make(TRUSTED_PROXY_HOPS=1)

    @app.get("/_probe_scheme")
    def _probe():
        from flask import request

        return request.scheme

    assert app.test_client().get("/_probe_scheme", headers={"X-Forwarded-Proto": "https"}).text == "https"
