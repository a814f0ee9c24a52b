"""Shared fixtures: an app per database backend over an isolated database, client, runner, auth helper.

Every test that uses `app` runs on SQLite and, when CHAINMATCH_TEST_POSTGRES_URL is set, on PostgreSQL too.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import tempfile
import uuid
from collections import Counter
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import create_engine, create_mock_engine, func, select, text

from webapp import create_app
from webapp.extensions import db
from webapp.services import tasks

PG_URL = os.environ.get("CHAINMATCH_TEST_POSTGRES_URL", "")
THREAD_JOBS_TIMEOUT_S = 60  # how long a test's teardown waits for the jobs it left running in threads
BACKGROUND_TIMEOUT_S = 60  # how long an app's teardown waits for the index work its requests started in the background
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])
_backend_counts: Counter = Counter()


def _pg_schema_url(schema: str) -> str:
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}"


# The tables of an app, made once per test session (per xdist worker) and backend and copied into each fresh
# database that make_app opens: a SQLite file copied, a PostgreSQL schema filled by one DDL script captured from the
# models (instead of create_all's round trip per table, index and check). See _fill_from_template.
_fresh_urls: set[str] = set()  # databases handed out empty by `database_url` that no app has opened yet
_templates: dict[str, object] = {}


def _sqlite_template() -> Path:
    if "sqlite" not in _templates:
        folder = Path(tempfile.mkdtemp(prefix="chainmatch-schema-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        url = f"sqlite:///{folder / 'template.sqlite3'}"
        app = _new_app(url, folder, {})
        with app.app_context():
            db.create_all()
            with db.engine.connect() as conn:  # only tables: no row may leak from one test into another
                for table in db.metadata.sorted_tables:
                    assert conn.execute(select(func.count()).select_from(table)).scalar() == 0, table.name
            db.engine.dispose()
        _templates["sqlite"] = folder / "template.sqlite3"
    return _templates["sqlite"]


def _postgres_ddl() -> str:
    if "postgresql" not in _templates:
        with tempfile.TemporaryDirectory() as folder:
            _new_app("sqlite://", Path(folder), {})  # an app registers every model's table in db.metadata
        statements = []
        mock = create_mock_engine(
            PG_URL, lambda ddl, *a, **kw: statements.append(str(ddl.compile(dialect=mock.dialect)))
        )
        db.metadata.create_all(mock, checkfirst=False)
        _templates["postgresql"] = ";\n".join(s.strip() for s in statements) + ";"
    return _templates["postgresql"]


def _fill_from_template(database_url: str) -> bool:
    """Give a fresh database from `database_url` its tables from the session template; False if it is not one."""
    if database_url not in _fresh_urls:
        return False
    _fresh_urls.discard(database_url)
    if database_url.startswith("sqlite:///"):
        shutil.copyfile(_sqlite_template(), database_url.removeprefix("sqlite:///"))
        return True
    schema = database_url.rsplit("search_path%3D", 1)[1]
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'SET search_path TO "{schema}";\n{_postgres_ddl()}\nSET search_path TO DEFAULT')
    finally:
        admin.dispose()
    return True


@pytest.fixture(params=BACKENDS)
def database_url(request, tmp_path):
    """A fresh, empty database for one test: a SQLite file, or a private PostgreSQL schema."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'test.sqlite3'}"
        _fresh_urls.add(url)
        yield url
        _fresh_urls.discard(url)
        _backend_counts["sqlite"] += 1
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = _pg_schema_url(schema)
    _fresh_urls.add(url)
    try:
        yield url
        _fresh_urls.discard(url)
        _backend_counts["postgresql"] += 1
    finally:
        # A job the test started in a thread (TASK_QUEUE "thread") may still be writing its last row after the page
        # showed it finished: it ends before its schema is dropped under it.
        tasks.wait_for_threads(THREAD_JOBS_TIMEOUT_S)
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def make_app(database_url: str, tmp_path, **overrides):
    """An app over `database_url` with every table created (copied from the session template into a fresh database
    of the `database_url` fixture, else by create_all)."""
    filled = _fill_from_template(database_url)
    app = _new_app(database_url, tmp_path, overrides)
    if not filled:
        with app.app_context():
            db.create_all()
    return app


class ClosingClient(FlaskClient):
    """The test client, its responses read to the end and closed as a WSGI server closes them (a send_file response
    keeps its file open until then)."""

    def open(self, *args, buffered: bool = True, **kwargs):
        return super().open(*args, buffered=buffered, **kwargs)


def _new_app(database_url: str, tmp_path, overrides: dict):
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
        # Background jobs run in threads of the test's process; tests/services/test_task_queue.py runs them on the real
        # task queue (SQLite and Redis) with a consumer.
        "TASK_QUEUE": "thread",
    }
    config.update(overrides)
    app = create_app(config)
    app.test_client_class = ClosingClient
    return app


@pytest.fixture(scope="session")
def bundled_e5(tmp_path_factory):
    """The real bundled multilingual-e5-small, converted once per test session into a temporary models folder
    (ONNX exports under its onnx-cache/), as `chainmatch init` converts it: (models folder, converted folder)."""
    from matching.embedders import e5_bundle

    models = tmp_path_factory.mktemp("models")
    return models, e5_bundle.ensure_default_model(models)


def dispose(app) -> None:
    """End an app's session and close its connection pool (a fixture's teardown), once the background index work
    its requests started (a load, sync or hubness measure) has ended: it must not query a schema being dropped."""
    from webapp.services.match.serving import wait_for_background

    wait_for_background(app, BACKGROUND_TIMEOUT_S)
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


@pytest.fixture(scope="session")
def world_snapshots(tmp_path_factory):
    """The session's built worlds (tests/worlds/snapshots.py), per backend and app config."""
    from tests.worlds.snapshots import WorldSnapshots

    snapshots = WorldSnapshots(tmp_path_factory.mktemp("worlds"), make_app, PG_URL, _pg_schema_url)
    yield snapshots
    snapshots.close()


@pytest.fixture
def world_copy(request, app, world_snapshots):
    """`world_copy(build)`: a copy, in this test's app, of the world `build(app)` makes (built once per session,
    backend and `app_config`); returns a copy of what `build` returned. Ask for it before anything writes."""
    marker = request.node.get_closest_marker("app_config")
    overrides = marker.kwargs if marker else {}
    return lambda build: world_snapshots.restore(app, build, overrides)


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

    def login_as(
        self, role: str, clusters: tuple[str, ...] = (), enterprise_id: int | None = None, username: str | None = None
    ):
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


# Under pytest-xdist (`make test`, `make test-fast`: `-n auto --dist loadscope`) each scope runs on one worker: a
# test module (its module-scoped worlds are built once, its tests keep their order), the browser journeys (one live
# server and one chromium, session fixtures) and the Ray tests (a local Ray cluster each; two must not overlap).
# (xdist's own `--dist loadgroup` names its groups through item._nodeid, which pytest 9 no longer reads.)
XDIST_SCOPES = {"tests/browser/": "browser", "tests/services/test_ray_embed.py": "ray"}
# Scopes of few but long tests (`--durations`), handed out first; xdist orders the others by their number of tests.
LONG_SCOPES = (
    "ray",
    "tests/bench/test_bench_vector.py",
    "tests/matching/test_e5_bundle.py",
    "tests/api/test_api_stateful.py",
    "tests/matching/test_cross_language.py",
    "tests/matching/test_faiss_index.py",
    "tests/cli/test_serve.py",
)


def xdist_scope(nodeid: str) -> str:
    for prefix, scope in XDIST_SCOPES.items():
        if nodeid.startswith(prefix):
            return scope
    return nodeid.split("::", 1)[0]


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class Scheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return xdist_scope(nodeid)

        def schedule(self) -> None:  # the long scopes next after the first ones, not at the end of the run
            first = self.collection is None
            super().schedule()
            if first:
                for scope in reversed(LONG_SCOPES):
                    if scope in self.workqueue:
                        self.workqueue.move_to_end(scope, last=False)

    return Scheduling(config, log)


def pytest_sessionfinish(session, exitstatus):
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: hand its counts to the controller (pytest_testnodedown)
        workeroutput["backend_counts"] = dict(_backend_counts)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    _backend_counts.update(getattr(node, "workeroutput", {}).get("backend_counts", {}))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if _backend_counts:
        parts = ", ".join(f"{name}: {count}" for name, count in sorted(_backend_counts.items()))
        terminalreporter.write_line(f"database tests run per backend — {parts}")
    if not PG_URL:
        terminalreporter.write_line("PostgreSQL tests skipped: CHAINMATCH_TEST_POSTGRES_URL is not set")
