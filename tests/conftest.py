"""Shared fixtures: an app per database backend over an isolated database, client, runner, auth helper.

Every test that uses `app` runs on SQLite and, when CHAINMATCH_TEST_POSTGRES_URL is set, on PostgreSQL too.
"""
from __future__ import annotations

import os
import re
import uuid
from collections import Counter

import pytest
from sqlalchemy import create_engine, text

from webapp import create_app
from webapp.extensions import db

PG_URL = os.environ.get("CHAINMATCH_TEST_POSTGRES_URL", "")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])
_backend_counts: Counter = Counter()


def _pg_schema_url(schema: str) -> str:
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture(params=BACKENDS)
def database_url(request, tmp_path):
    """A fresh, empty database for one test: a SQLite file, or a private PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.sqlite3'}"
        _backend_counts["sqlite"] += 1
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield _pg_schema_url(schema)
        _backend_counts["postgresql"] += 1
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def make_app(database_url: str, tmp_path, **overrides):
    config = {
        "TESTING": True,
        "SECRET_KEY": "test-secret-" + uuid.uuid4().hex,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "INDEX_DIR": str(tmp_path / "instance" / "indexes"),
        "UPLOAD_DIR": str(tmp_path / "instance" / "uploads"),
        "RATELIMIT_STORAGE_URI": "memory://",
        # The bundled transformer costs a conversion and seconds of encoding per app: tests that are not about it
        # use the built-in LSA embedder (tests/test_matchsvc_e5.py and the browser journeys run the real model).
        "EMBEDDING_MODEL": "builtin",
        # Background jobs run in threads of the test's process; tests/test_task_queue.py runs them on the real
        # task queue (SQLite and Redis) with a consumer.
        "TASK_QUEUE": "thread",
    }
    config.update(overrides)
    app = create_app(config)
    with app.app_context():
        db.create_all()
    return app


@pytest.fixture(scope="session")
def bundled_e5(tmp_path_factory):
    """The real bundled multilingual-e5-small, converted once per test session into a temporary models folder
    (ONNX exports under its onnx-cache/), as `chainmatch init` converts it: (models folder, converted folder)."""
    from matching.embedders import e5_bundle

    models = tmp_path_factory.mktemp("models")
    return models, e5_bundle.ensure_default_model(models)


def dispose(app) -> None:
    """End an app's session and close its connection pool (a fixture's teardown)."""
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def app(request, database_url, tmp_path):
    """The test's app; `@pytest.mark.app_config(KEY=value)` overrides its config."""
    marker = request.node.get_closest_marker("app_config")
    app = make_app(database_url, tmp_path, **(marker.kwargs if marker else {}))
    yield app
    dispose(app)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


def csrf_token_from(html: str) -> str:
    match = re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert match, "page carries no CSRF token"
    return match.group(1)


class AuthActions:
    """Create users of any role and log the test client in as them."""

    PASSWORD = "correct-horse-battery"

    def __init__(self, app, client):
        self._app = app
        self._client = client

    def create_user(self, username: str, role: str, clusters: tuple[str, ...] = (), enterprise_id: int | None = None):
        from chains.cluster_models import Cluster
        from webapp.auth.models import User

        with self._app.app_context():
            user = User(username=username, role=role, display_name=username, enterprise_id=enterprise_id)
            user.set_password(self.PASSWORD)
            for cid in clusters:
                user.clusters.append(db.session.get(Cluster, cid))
            db.session.add(user)
            db.session.commit()
            return user.id

    def csrf_token(self, path: str = "/") -> str:
        return csrf_token_from(self._client.get(path).get_data(as_text=True))

    def login(self, username: str, password: str | None = None):
        token = csrf_token_from(self._client.get("/auth/login").get_data(as_text=True))
        return self._client.post(
            "/auth/login",
            data={"username": username, "password": password or self.PASSWORD, "csrf_token": token},
        )

    def login_as(self, role: str, clusters: tuple[str, ...] = (), enterprise_id: int | None = None, username: str | None = None):
        username = username or f"{role}-{uuid.uuid4().hex[:6]}"
        self.create_user(username, role, clusters, enterprise_id)
        response = self.login(username)
        assert response.status_code == 302, response.get_data(as_text=True)
        return username

    def post(self, path: str, data: dict | None = None, **kwargs):
        """POST with the CSRF token, as a browser form would."""
        data = dict(data or {})
        data.setdefault("csrf_token", self.csrf_token())
        return self._client.post(path, data=data, **kwargs)

    def logout(self):
        return self._client.post("/auth/logout", data={"csrf_token": self.csrf_token()})


@pytest.fixture
def auth(app, client):
    return AuthActions(app, client)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if _backend_counts:
        parts = ", ".join(f"{name}: {count}" for name, count in sorted(_backend_counts.items()))
        terminalreporter.write_line(f"database tests run per backend — {parts}")
    if not PG_URL:
        terminalreporter.write_line("PostgreSQL tests skipped: CHAINMATCH_TEST_POSTGRES_URL is not set")
