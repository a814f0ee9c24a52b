"""Login sessions: cookie flags, inactivity timeout, session protection, and every way a session ends
(logout, password reset, disabling the account)."""

from __future__ import annotations

import hashlib
import time
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime

from flask.json.tag import TaggedJSONSerializer
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import select

from tests.conftest import make_app
from webapp.auth.models import User
from webapp.extensions import db
from webapp.services.audit.models import AuditEntry

PROTECTED = "/api/tokens/"  # a page every logged-in role may open


def _cookie_header(response, name: str) -> str:
    for header in response.headers.getlist("Set-Cookie"):
        if header.startswith(f"{name}="):
            return header
    return ""


def _login_response(app, auth, client, role: str = "staff"):
    username = f"{role}-sess"
    auth.create_user(username, role)
    return auth.login(username)


def test_session_cookie_is_httponly_lax_and_expires_with_the_session_lifetime(app, auth, client):
    response = _login_response(app, auth, client)
    cookie = _cookie_header(response, app.config["SESSION_COOKIE_NAME"])
    assert cookie, response.headers
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # CHAINMATCH_SECURE_COOKIES is off by default (plain HTTP in development)
    expires = parsedate_to_datetime(cookie.split("Expires=")[1].split(";")[0])
    expected = datetime.now(timezone.utc) + app.config["PERMANENT_SESSION_LIFETIME"]
    assert abs((expires - expected).total_seconds()) < 120


def test_no_remember_me_cookie_is_ever_set(app, auth, client):
    response = _login_response(app, auth, client)
    names = [h.split("=", 1)[0] for h in response.headers.getlist("Set-Cookie")]
    assert names == [app.config["SESSION_COOKIE_NAME"]]
    assert app.config["REMEMBER_COOKIE_HTTPONLY"] and app.config["REMEMBER_COOKIE_SAMESITE"] == "Lax"


def test_secure_cookies_option_marks_session_and_remember_cookies_secure(database_url, tmp_path, monkeypatch):
    monkeypatch.setenv("CHAINMATCH_SECURE_COOKIES", "true")
    monkeypatch.setenv("CHAINMATCH_SESSION_MINUTES", "7")
    app = make_app(database_url, tmp_path)
    try:
        assert app.config["SESSION_COOKIE_SECURE"] and app.config["REMEMBER_COOKIE_SECURE"]
        assert app.config["PERMANENT_SESSION_LIFETIME"] == timedelta(minutes=7)
        client = app.test_client()
        from tests.conftest import AuthActions

        auth = AuthActions(app, client)
        auth.create_user("secure-user", "staff")
        response = client.get("/auth/login", base_url="https://localhost")
        token = response.get_data(as_text=True).split('name="csrf-token" content="')[1].split('"')[0]
        response = client.post(
            "/auth/login",
            base_url="https://localhost",
            headers={"Referer": "https://localhost/auth/login"},
            data={"username": "secure-user", "password": auth.PASSWORD, "csrf_token": token},
        )
        assert response.status_code == 302
        assert "Secure" in _cookie_header(response, app.config["SESSION_COOKIE_NAME"])
        assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def test_session_is_refreshed_on_every_request(app, auth, client):
    _login_response(app, auth, client)
    assert app.config["SESSION_REFRESH_EACH_REQUEST"]
    response = client.get(PROTECTED)
    assert response.status_code == 200
    assert _cookie_header(response, app.config["SESSION_COOKIE_NAME"])  # new expiry sent with each response


def _age_session_cookie(app, client, seconds: int) -> None:
    """Re-sign the client's session as if it had been issued `seconds` ago (inactivity)."""

    class OldSigner(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - seconds

    name = app.config["SESSION_COOKIE_NAME"]
    with client.session_transaction() as sess:
        data = dict(sess)
    serializer = URLSafeTimedSerializer(
        app.secret_key,
        salt="cookie-session",
        serializer=TaggedJSONSerializer(),
        signer=OldSigner,
        signer_kwargs={"key_derivation": "hmac", "digest_method": hashlib.sha1},
    )
    client.set_cookie(name, serializer.dumps(data), domain="localhost")


def test_inactive_session_expires_after_the_lifetime(app, auth, client):
    _login_response(app, auth, client)
    lifetime = int(app.config["PERMANENT_SESSION_LIFETIME"].total_seconds())
    _age_session_cookie(app, client, lifetime - 60)
    assert client.get(PROTECTED).status_code == 200  # still inside the window (and refreshed by this request)
    _age_session_cookie(app, client, lifetime + 60)
    response = client.get(PROTECTED)
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]


def test_session_moved_to_another_browser_is_dropped(app, auth, client):
    """Flask-Login session protection "strong": a session replayed with another user agent is logged out."""
    _login_response(app, auth, client)
    assert client.get(PROTECTED).status_code == 200
    response = client.get(PROTECTED, headers={"User-Agent": "other-browser/1.0"})
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]


def test_logout_clears_the_session_and_a_copied_cookie_stops_working(app, auth, client):
    _login_response(app, auth, client)
    name = app.config["SESSION_COOKIE_NAME"]
    stolen = client.get_cookie(name).value
    with client.session_transaction() as sess:
        sess["scratch"] = "kept until logout"
    response = auth.logout()
    assert response.status_code == 302
    with client.session_transaction() as sess:
        assert "scratch" not in sess and "_user_id" not in sess
    assert client.get(PROTECTED).status_code == 302
    other = app.test_client()
    other.set_cookie(name, stolen, domain="localhost")
    assert other.get(PROTECTED).status_code == 302  # the cookie copied before logout is worthless now


def test_login_starts_a_fresh_session(app, auth, client):
    """Nothing planted in the session before login survives it (session fixation)."""
    with client.session_transaction() as sess:
        sess["planted"] = "x"
    _login_response(app, auth, client)
    with client.session_transaction() as sess:
        assert "planted" not in sess and sess.permanent


def test_password_reset_by_admin_ends_the_users_sessions(app, auth, client):
    staff_id = auth.create_user("reset-me", "staff")
    staff_client = app.test_client()
    from tests.conftest import AuthActions

    AuthActions(app, staff_client).login("reset-me")
    assert staff_client.get(PROTECTED).status_code == 200
    auth.login_as("admin")
    response = auth.post(f"/auth/users/{staff_id}/password", {"password": ""})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    new_password = html.split('data-testid="new-password">')[1].split("<")[0]
    assert staff_client.get(PROTECTED).status_code == 302
    assert AuthActions(app, app.test_client()).login("reset-me", new_password).status_code == 302
    assert new_password not in client.get(f"/auth/users/{staff_id}").get_data(as_text=True)  # shown once
    with app.app_context():
        actions = db.session.scalars(
            select(AuditEntry).where(AuditEntry.object_id == str(staff_id), AuditEntry.action.startswith("user."))
        ).all()
        assert [a.action for a in actions] == ["user.set_password"] and actions[0].username.startswith("admin")


def test_disabling_a_user_ends_sessions_and_api_tokens(app, auth, client):
    from webapp.auth.tokens import create_token

    user_id = auth.create_user("to-disable", "staff")
    with app.app_context():
        _, token = create_token(db.session, user_id, "t")
        db.session.commit()
    victim = app.test_client()
    from tests.conftest import AuthActions

    AuthActions(app, victim).login("to-disable")
    assert victim.get(PROTECTED).status_code == 200
    assert victim.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    auth.login_as("admin")
    assert auth.post(f"/auth/users/{user_id}/disable").status_code == 303
    assert victim.get(PROTECTED).status_code == 302
    assert app.test_client().get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    refused = AuthActions(app, app.test_client()).login("to-disable")
    assert refused.status_code == 401
    assert auth.post(f"/auth/users/{user_id}/enable").status_code == 303
    assert AuthActions(app, app.test_client()).login("to-disable").status_code == 302
    with app.app_context():
        user = db.session.get(User, user_id)
        assert user.active
        actions = [
            e.action
            for e in db.session.scalars(
                select(AuditEntry).where(AuditEntry.object_id == str(user_id), AuditEntry.action.startswith("user."))
            )
        ]
        assert actions == ["user.disable", "user.enable"]


def test_pages_of_logged_in_users_are_not_cached(app, auth, client):
    assert "Cache-Control" not in client.get("/").headers  # public home page
    _login_response(app, auth, client)
    assert client.get(PROTECTED).headers["Cache-Control"] == "no-store"
    assert "Strict-Transport-Security" not in client.get(PROTECTED).headers  # plain HTTP: no HSTS
