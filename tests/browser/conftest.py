"""Real-browser test harness: a live chainmatch server over a temporary instance, and Debian's chromium.

The instance is prepared with the real `chainmatch init` (bundled demo data) and accounts are made with
`chainmatch users create`; the server is the app served by werkzeug in a thread on 127.0.0.1:<free port>, with the
task worker's consumer (SQLite queue) in threads beside it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHAINMATCH = Path(sys.executable).with_name("chainmatch")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = REPO / "test-output" / "screenshots"
PASSWORD = "browser-test-password-1"
DEMO_CLUSTER = "qingdao-xihaian-marine-equipment"  # has a chain leader in the bundled demo data
INIT_TIMEOUT = 600


@dataclass
class LiveServer:
    url: str
    instance: Path
    env: dict
    app: object
    cluster_id: str
    leader_id: int
    users: dict = field(default_factory=dict)  # role → username
    timings: dict = field(default_factory=dict)  # path → server milliseconds


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(CHAINMATCH), *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=INIT_TIMEOUT
    )


def _missing_columns(app) -> list[str]:
    """Model columns the migrated database lacks (the Alembic migration lags behind the models)."""
    from sqlalchemy import inspect

    from webapp.extensions import db

    with app.app_context():
        inspector = inspect(db.engine)
        tables = set(inspector.get_table_names())
        missing = []
        for table in db.metadata.sorted_tables:
            if table.name not in tables:
                missing.append(table.name)
                continue
            have = {c["name"] for c in inspector.get_columns(table.name)}
            missing += [f"{table.name}.{c.name}" for c in table.columns if c.name not in have]
        db.engine.dispose()
    return missing


def _init_instance(env: dict) -> None:
    """`chainmatch init`; while the Alembic migration lags behind the models, the same init steps over create_all."""
    from webapp import create_app
    from webapp.cli.init import INIT_STEPS
    from webapp.extensions import db

    done = _run(env, "init")
    app = create_app({"INSTANCE_PATH": env["CHAINMATCH_INSTANCE_PATH"]})
    missing = _missing_columns(app) if done.returncode == 0 else ["(init failed)"]
    if not missing:
        return
    warnings.warn(
        "`chainmatch init` left a schema behind the models (migration out of date: "
        f"{', '.join(missing[:10])}); running its steps over db.create_all():\n" + done.stderr[-2000:]
    )
    with app.app_context():
        db.drop_all()
        db.create_all()
        for _, _label, step in INIT_STEPS:
            step(app, demo_accounts=False)
        db.session.remove()
        db.engine.dispose()


@pytest.fixture(scope="session")
def live_server(tmp_path_factory):
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip("Debian chromium is not installed (make browser-deps)")
    instance = tmp_path_factory.mktemp("browser-instance")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAINMATCH_")}
    env.update(CHAINMATCH_INSTANCE_PATH=str(instance), CHAINMATCH_LOG_LEVEL="WARNING", HF_HUB_OFFLINE="1")
    _init_instance(env)

    from sqlalchemy import select
    from werkzeug.serving import make_server

    from chains.cluster_models import Cluster
    from webapp import create_app
    from webapp.extensions import db
    from webapp.services.match import sync

    os.environ["CHAINMATCH_INSTANCE_PATH"] = str(instance)
    app = create_app({"INSTANCE_PATH": str(instance), "RATELIMIT_ENABLED": False})
    with app.app_context():
        cluster = (
            db.session.get(Cluster, DEMO_CLUSTER)
            or db.session.scalars(
                select(Cluster).where(Cluster.chain_leader_id.is_not(None)).order_by(Cluster.id)
            ).first()
        )
        assert cluster is not None and cluster.chain_leader_id, "demo data has no cluster with a chain leader"
        cluster_id, leader_id = cluster.id, cluster.chain_leader_id
        sync(db.session, app)  # load the index `chainmatch init` saved before serving
        db.session.remove()
    users = {}
    for role, extra in (
        ("admin", []),
        ("manager", ["--cluster", cluster_id]),
        ("staff", ["--cluster", cluster_id]),
        ("firm", ["--enterprise-id", str(leader_id)]),
    ):
        name = f"browser-{role}"
        done = _run({**env, "CHAINMATCH_NEW_PASSWORD": PASSWORD}, "users", "create", name, "--role", role, *extra)
        assert done.returncode == 0, done.stderr
        users[role] = name

    server = LiveServer("", instance, env, app, cluster_id, leader_id, users)

    @app.after_request
    def _time(response):  # server time per request, for the report
        from flask import g, request

        start = getattr(g, "_browser_t0", None)
        if start is not None:
            server.timings.setdefault(request.full_path.rstrip("?"), []).append((time.perf_counter() - start) * 1000)
        return response

    @app.before_request
    def _start():
        from flask import g

        g._browser_t0 = time.perf_counter()

    from webapp.services.tasks.worker import start_in_thread

    consumer = start_in_thread(app, 2)  # the task worker (SQLite queue) runs imports and placement runs
    port = _free_port()
    httpd = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{port}"
    yield server
    httpd.shutdown()
    thread.join(10)
    consumer.stop(graceful=True)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield instance
        instance.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(locale="zh-CN", viewport={"width": 1366, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # Failed loads are reported by URL (the pages declare their icon, so the browser asks for no /favicon.ico).
    page.on(
        "response",
        lambda r: (
            errors.append(f"{r.status} {r.url}")
            if r.status >= 400 and r.request.resource_type != "fetch" and r.request.resource_type != "xhr"
            else None
        ),
    )
    page.js_errors = errors
    yield page
    context.close()


def login(page, server: LiveServer, role: str) -> None:
    page.goto(server.url + "/auth/login")
    page.fill("input[name=username]", server.users[role])
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert "/auth/login" not in page.url, page.content()[:2000]


def open_chain_map(page, server: LiveServer) -> None:
    """The demo cluster's chain map, reached as users reach it: its page, then the 图谱 tab."""
    page.goto(f"{server.url}/clusters/{server.cluster_id}")
    page.locator("a", has_text="图谱").first.click()
    page.wait_for_selector(".chain-map")


def screenshot(page, journey: str, focus: str | None = None) -> Path:
    """The visible end state of a journey (scrolled to `focus` when given)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{journey}.png"
    if focus:
        page.locator(focus).first.scroll_into_view_if_needed()
    page.screenshot(path=str(path))
    return path
