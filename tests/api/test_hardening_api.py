"""API abuse: JSON body limit, rate-limit keys on verified tokens (issue 19)."""

from __future__ import annotations

import json
import secrets

import pytest

from tests.conftest import make_app
from tests.worlds.api import Api, assert_error, make_token
from webapp.extensions import db


@pytest.fixture
def limited_app(database_url, tmp_path):
    """An app whose API allows 3 calls per minute per key."""
    app = make_app(database_url, tmp_path, API_RATE_LIMIT="3 per minute")
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


# ----------------------------------------------------------------------------- JSON body limit (item 2)


def test_json_body_over_the_api_limit_is_413_with_the_api_error_body(app, client):
    token = make_token(app, "admin")
    limit = app.config["API_MAX_BODY_KB"] * 1024
    body = json.dumps({"rows": [{"name": "x" * 1000}] * (limit // 1000 + 10)})
    assert len(body) > limit
    response = client.post(
        "/api/v1/enterprises/bulk",
        data=body,
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )
    error = assert_error(response, 413, "payload_too_large")
    assert error["details"]["max_bytes"] == limit


def test_json_body_limit_applies_before_authentication(app, client):
    body = "[" + ",".join(["1"] * (app.config["API_MAX_BODY_KB"] * 1024 // 2 + 10)) + "]"
    assert_error(client.post("/api/v1/leads", data=body, content_type="application/json"), 413, "payload_too_large")


def test_uploads_keep_their_own_larger_limit(app):
    assert app.config["MAX_CONTENT_LENGTH"] == app.config["MAX_UPLOAD_MB"] * 1024 * 1024
    assert app.config["API_MAX_BODY_KB"] * 1024 < app.config["MAX_CONTENT_LENGTH"]


# ----------------------------------------------------------------------------- rate-limit key (item 5)


def test_random_token_prefixes_share_the_address_budget(limited_app):
    client = limited_app.test_client()
    statuses = [
        Api(client, f"cm_{secrets.token_hex(6)}_{secrets.token_urlsafe(8)}").get("/me").status_code for _ in range(5)
    ]
    assert statuses[:3] == [401, 401, 401]
    assert statuses[3:] == [429, 429]


def test_a_known_prefix_does_not_spend_the_victims_quota(limited_app):
    client = limited_app.test_client()
    victim = make_token(limited_app, "staff")
    _, prefix, _ = victim.split("_", 2)
    forged = Api(client, f"cm_{prefix}_{secrets.token_urlsafe(8)}")
    assert [forged.get("/me").status_code for _ in range(4)][-1] == 429
    other_client = limited_app.test_client()
    assert Api(other_client, victim).get("/me").status_code == 200
