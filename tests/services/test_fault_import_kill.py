"""Fault: the web worker running a background import is killed with SIGKILL in the middle of it (issue 19).

The worker is a real separate process (a second app over the same database, as a gunicorn worker is); it uploads a
large file and is killed while its import runs. Then: the database holds none of the file's firms, the job shows
failed within the stale-job timeout, and the same file uploaded again imports fully.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from chains.enterprise_models import Enterprise, ImportJob
from tests.conftest import AuthActions, make_app
from tests.worlds.imports import CSV_HEADER, job_id_from, upload, wait_until_finished
from webapp.extensions import db

ROOT = Path(__file__).resolve().parents[2]
ROWS = 20_000
STALE_SECONDS = 3
STARTUP_TIMEOUT_S = 120
RUNNING_GRACE_S = 1.5  # let the killed import write part of its transaction first
CHUNK_PAUSE_S = 0.2  # the worker's import pauses after each written chunk: it is surely mid-import when killed

WORKER = """
import sys, time
from tests.conftest import AuthActions, make_app
from tests.worlds.imports import job_id_from, upload
from webapp.services import jobs
original = jobs.Heartbeat.progress
def paced(self, done, total):  # called after each chunk the import has written into its open transaction
    original(self, done, total)
    time.sleep({pause})
jobs.Heartbeat.progress = paced
url, folder, path = sys.argv[1:4]
app = make_app(url, __import__("pathlib").Path(folder), JOB_STALE_SECONDS={stale})
auth = AuthActions(app, app.test_client())
assert auth.login("importer").status_code == 302
print(job_id_from(upload(auth, open(path, "rb").read(), "名单.csv")), flush=True)
time.sleep(3600)  # the import runs in this process's background thread until the process is killed
"""


def _csv(path: Path) -> bytes:
    lines = [CSV_HEADER] + [
        f"k{i},合成故障测试企业{i:05d}有限公司,,青岛市,测试,合成数据：故障测试\n" for i in range(ROWS)
    ]
    path.write_text("".join(lines), encoding="utf-8")
    return path.read_bytes()


def _firms(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Enterprise))


def _status(app, job_id: int) -> str:
    with app.app_context():
        db.session.expire_all()
        return db.session.get(ImportJob, job_id).status


@pytest.mark.slow
def test_worker_killed_mid_import_changes_nothing_fails_the_job_and_the_upload_then_imports(database_url, tmp_path):
    app = make_app(database_url, tmp_path / "survivor", JOB_STALE_SECONDS=STALE_SECONDS)
    auth = AuthActions(app, app.test_client())
    auth.create_user("importer", "staff")
    content = _csv(tmp_path / "firms.csv")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CHAINMATCH_LOG_LEVEL": "WARNING"}
    worker = subprocess.Popen(
        [
            sys.executable,
            "-c",
            WORKER.format(stale=STALE_SECONDS, pause=CHUNK_PAUSE_S),
            database_url,
            str(tmp_path / "worker"),
            str(tmp_path / "firms.csv"),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        job_id = int(worker.stdout.readline())
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while _status(app, job_id) != "running":
            assert time.monotonic() < deadline and worker.poll() is None, "the import never started"
            time.sleep(0.1)
        time.sleep(RUNNING_GRACE_S)
        assert _status(app, job_id) == "running", "the import ended before the kill"
    finally:
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)  # reaped: the owner process is gone
    killed_at = time.monotonic()

    assert _firms(app) == 0  # one transaction: nothing of the killed import is stored
    auth.login("importer")
    while _status(app, job_id) != "failed":
        auth._client.get(f"/imports/{job_id}/status")  # any worker's poll marks a dead owner's stale job failed
        assert time.monotonic() - killed_at < STALE_SECONDS + 10, "the job was not marked failed in time"
        time.sleep(0.5)
    print(f"job marked failed {time.monotonic() - killed_at:.1f} s after the kill")  # shown with -s
    html = auth._client.get(f"/imports/{job_id}/status").get_data(as_text=True)
    assert "失败" in html and 'hx-trigger="every 1s"' not in html

    html = wait_until_finished(auth._client, job_id_from(upload(auth, content, "名单.csv")))
    assert "已完成" in html
    assert _firms(app) == ROWS
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
