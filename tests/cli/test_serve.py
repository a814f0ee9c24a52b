"""`chainmatch serve`: the gunicorn command line, its options and defaults; a real multi-worker server. And
`chainmatch run` (the development server) loading the match index at start."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.worlds.processes import cmdline
from webapp import config as config_module
from webapp.services.match.fallback import MESSAGE_FALLBACK
from webapp.web.server import default_workers

ROOT = Path(__file__).resolve().parents[2]


def test_serve_help(runner):
    result = runner.invoke(args=["serve", "--help"])
    assert result.exit_code == 0
    for option in ("--host", "--port", "--workers", "--threads", "CHAINMATCH_WEB_WORKERS"):
        assert option in result.output


def test_serve_command_line(runner):
    result = runner.invoke(
        args=["serve", "--print-command", "--host", "0.0.0.0", "--port", "8080", "--workers", "3", "--threads", "2"]
    )
    assert result.exit_code == 0, result.output
    line = result.output.strip()
    assert "-m gunicorn --config python:webapp.gunicorn_config" in line
    assert "--bind 0.0.0.0:8080 --workers 3 --threads 2 webapp.wsgi:app" in line


def test_serve_workers_default_from_config(app):
    app.config.update(WEB_WORKERS=5, WEB_THREADS=6)
    result = app.test_cli_runner().invoke(args=["serve", "--print-command"])
    assert "--workers 5 --threads 6" in result.output
    assert default_workers(0) == len(os.sched_getaffinity(0))
    assert config_module.options_from_env({"CHAINMATCH_WEB_WORKERS": "4"})["WEB_WORKERS"] == 4


def test_secret_key_created_once_by_concurrent_processes(tmp_path):
    keys: list[str] = []
    threads = [
        threading.Thread(target=lambda: keys.append(config_module.load_or_create_secret(str(tmp_path))))
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(keys)) == 1 and len(keys[0]) == 64
    assert (tmp_path / "secret_key").read_text().strip() == keys[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret_key"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


CLI = [sys.executable, "-m", "webapp.cli.main"]


def _chainmatch(env: dict, *args: str) -> None:
    subprocess.run([*CLI, *args], env=env, check=True, cwd=ROOT, capture_output=True, timeout=600)


def _start_server(env: dict, tmp_path: Path, *args: str) -> tuple[subprocess.Popen, Path, str]:
    """`chainmatch serve|run …` on a free port, its output in a log file: (process, log path, base URL)."""
    port = _free_port()
    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [*CLI, *args, "--port", str(port)], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )
    return server, log_path, f"http://127.0.0.1:{port}"


@pytest.mark.slow
def test_real_server_with_two_workers_serves_logged_in_pages(tmp_path):
    """gunicorn, two worker processes over one SQLite database: a login made through one worker is valid in the
    other, and each worker has loaded the match index before its first request."""
    env = {
        **os.environ,
        "CHAINMATCH_INSTANCE_PATH": str(tmp_path / "instance"),
        "CHAINMATCH_LOG_LEVEL": "WARNING",
        "CHAINMATCH_LOGIN_RATE_LIMIT": "1000 per minute",
    }
    env.pop("CHAINMATCH_DATABASE_URL", None)
    schema = (
        "from webapp import create_app\nfrom webapp.extensions import db\napp = create_app()\n"
        "with app.app_context():\n    db.create_all()\n"
    )
    subprocess.run([sys.executable, "-c", schema], env=env, check=True, cwd=ROOT)
    _chainmatch(env, "db", "stamp", "head")
    _chainmatch(env, "users", "create", "ops", "--role", "admin", "--password", "correct-horse-battery")
    server, log_path, base = _start_server(env, tmp_path, "serve", "--workers", "2", "--threads", "2")
    try:
        deadline = time.monotonic() + 120
        while len(re.findall(r"worker \d+: match index", log_path.read_text(errors="replace"))) < 2:
            assert server.poll() is None and time.monotonic() < deadline, log_path.read_text(errors="replace")
            time.sleep(0.3)
        session = _login(base, "ops", "correct-horse-battery")
        # Fresh connections spread over both workers; every one accepts the session cookie.
        for _ in range(12):
            response = requests.get(
                f"{base}/imports/",
                cookies=session.cookies,
                timeout=30,
                headers={"User-Agent": session.headers["User-Agent"], "Connection": "close"},
            )
            assert response.status_code == 200 and "企业导入" in response.text
        children = subprocess.run(["pgrep", "-P", str(server.pid)], capture_output=True, text=True).stdout.split()
        task_workers = [pid for pid in children if " worker --parent " in cmdline(pid)]
        assert len(task_workers) == 1  # the task worker beside the web workers (gunicorn_config.on_starting)
        assert len(children) - len(task_workers) == 2
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert not os.path.exists(f"/proc/{task_workers[0]}")  # stopped with the server (on_exit)


def _login(base: str, username: str, password: str) -> requests.Session:
    session = requests.Session()
    page = session.get(f"{base}/auth/login", timeout=30).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    reply = session.post(
        f"{base}/auth/login",
        data={"username": username, "password": password, "csrf_token": token},
        allow_redirects=False,
        timeout=30,
    )
    assert reply.status_code == 302
    return session


@pytest.mark.slow
def test_run_loads_the_match_index_before_the_first_candidate_page(tmp_path):
    """`chainmatch run` (as `make run`) loads the saved index at start: the first candidate page anyone opens is
    ranked by the full matcher, not the keyword fallback that stands in while an index loads."""
    env = {
        **os.environ,
        "CHAINMATCH_INSTANCE_PATH": str(tmp_path / "instance"),
        "CHAINMATCH_EMBEDDING_MODEL": "builtin",  # the bundled demo data, indexed in seconds
        "CHAINMATCH_LOG_LEVEL": "INFO",
        "CHAINMATCH_TASK_QUEUE": "sqlite",
    }
    env.pop("CHAINMATCH_DATABASE_URL", None)
    _chainmatch(env, "init")
    _chainmatch(
        env, "users", "create", "zs", "--role", "staff", "--cluster", "jinan-ic", "--password", "correct-horse-1"
    )
    server, log_path, base = _start_server(env, tmp_path, "run")
    try:
        deadline = time.monotonic() + 60
        # Nobody has asked for a ranking yet: only a load at start makes the index ready.
        while "match index ready in this process" not in log_path.read_text(errors="replace"):
            assert server.poll() is None and time.monotonic() < deadline, log_path.read_text(errors="replace")
            time.sleep(0.3)
        session = _login(base, "zs", "correct-horse-1")
        page = session.get(f"{base}/candidates/jinan-ic/ic-lithography", timeout=30).text
        assert MESSAGE_FALLBACK not in page and 'class="fallback-refresh"' not in page
        assert len(re.findall(r'id="cand-\d+"', page)) == 20  # a full first page of ranked candidates
    finally:
        server.terminate()
        server.wait(timeout=30)
