"""Fault: the database server is restarted while `chainmatch serve` runs (issue 19).

During the outage requests fail cleanly (an error page, no trace, no hang); after it they succeed again, with the
same server processes and the same login session.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.worlds import private_postgres

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct-horse-battery"
STARTUP_TIMEOUT_S = 120
REQUEST_TIMEOUT_S = 30
OUTAGE_REQUESTS = 3
CLEAN_FAILURE_S = 10  # an outage answer must come this fast (no hanging on a dead database)
LEAKS = ("Traceback", "psycopg", "OperationalError", "SELECT ")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not private_postgres.available(), reason="no PostgreSQL server binaries"),
]


def _wait_for_workers(server: subprocess.Popen, log_path: Path, workers: int) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while len(re.findall(r"worker \d+: match index", log_path.read_text(errors="replace"))) < workers:
        assert server.poll() is None and time.monotonic() < deadline, log_path.read_text(errors="replace")
        time.sleep(0.3)


def _workers(server: subprocess.Popen) -> set[str]:
    """Process ids of the server's workers."""
    listed = subprocess.run(["pgrep", "-P", str(server.pid)], capture_output=True, text=True, check=True)
    return set(listed.stdout.split())


def _login(base: str) -> requests.Session:
    session = requests.Session()
    page = session.get(f"{base}/auth/login", timeout=REQUEST_TIMEOUT_S).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    reply = session.post(
        f"{base}/auth/login",
        data={"username": "ops", "password": PASSWORD, "csrf_token": token},
        allow_redirects=False,
        timeout=REQUEST_TIMEOUT_S,
    )
    assert reply.status_code == 302
    return session


def test_requests_fail_cleanly_during_a_database_restart_and_succeed_after(tmp_path):
    with private_postgres.private_postgres() as pg:
        env = {
            **os.environ,
            "CHAINMATCH_INSTANCE_PATH": str(tmp_path / "instance"),
            "CHAINMATCH_LOG_LEVEL": "WARNING",
            "CHAINMATCH_DATABASE_URL": pg.url,
            "CHAINMATCH_EMBEDDING_MODEL": "builtin",
            "CHAINMATCH_LOGIN_RATE_LIMIT": "1000 per minute",
        }
        cli = [sys.executable, "-m", "webapp.cli.main"]
        subprocess.run([*cli, "db", "upgrade"], env=env, check=True, cwd=ROOT, capture_output=True)
        subprocess.run(
            [*cli, "users", "create", "ops", "--role", "admin", "--password", PASSWORD],
            env=env,
            check=True,
            cwd=ROOT,
            capture_output=True,
        )
        port = private_postgres.free_port()
        log_path = tmp_path / "server.log"
        with open(log_path, "wb") as log:
            server = subprocess.Popen(
                [*cli, "serve", "--port", str(port), "--workers", "2", "--threads", "2"],
                env=env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_for_workers(server, log_path, 2)
            session = _login(base)
            assert session.get(f"{base}/imports/", timeout=REQUEST_TIMEOUT_S).status_code == 200
            workers = _workers(server)

            pg.stop()
            outage = []
            for _ in range(OUTAGE_REQUESTS):
                started = time.monotonic()
                response = session.get(f"{base}/imports/", timeout=REQUEST_TIMEOUT_S)
                outage.append((response.status_code, time.monotonic() - started))
                assert response.status_code == 503, response.text[:500]
                assert "数据库暂时不可用" in response.text and not any(leak in response.text for leak in LEAKS)
            api = session.get(f"{base}/api/v1/chains", timeout=REQUEST_TIMEOUT_S)
            assert api.status_code == 503 and api.json()["error"]["code"] == "service_unavailable"
            assert max(seconds for _, seconds in outage) < CLEAN_FAILURE_S

            pg.start()
            after = [session.get(f"{base}/imports/", timeout=REQUEST_TIMEOUT_S).status_code for _ in range(6)]
            assert after == [200] * 6  # the same login session, at once: no stale pooled connection fails
            assert server.poll() is None
            assert _workers(server) == workers  # no worker was restarted
            print(f"outage answers: {[(s, round(t, 2)) for s, t in outage]}; after restart: {after}")
        finally:
            server.terminate()
            server.wait(timeout=30)
