"""Background jobs on the real task queue: Huey's SQLite (and Redis) queue, a real consumer, the web routes.

The consumer runs in threads of the test process (`webapp.services.tasks.worker.start_in_thread`) or as a real `chainmatch
worker` process; jobs are enqueued by the upload and 自动归位 routes and cancelled or retried through them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from chains.cluster_models import Cluster, LinkAssignment
from chains.db import utcnow
from chains.enterprise_models import Enterprise, ImportJob
from tests.conftest import AuthActions, dispose, make_app
from tests.worlds.e5_app import served_channels, tiny_e5  # noqa: F401 (a fixture)
from tests.worlds.imports import CSV_HEADER, job_id_from, upload, wait_until_finished
from tests.worlds.match_seed import CLUSTER_ID as SEED_CLUSTER
from tests.worlds.match_seed import seed
from tests.worlds.processes import cmdline, dead_owner
from webapp.extensions import db
from webapp.services import jobs, tasks
from webapp.services import match as matchsvc
from webapp.services.audit.models import AuditEntry
from webapp.services.match import embed_job, store
from webapp.services.tasks.worker import start_in_thread

ROOT = Path(__file__).resolve().parents[2]
STALE_SECONDS = 3
TIMEOUT_S = 120
CLUSTER = "queue-cluster"

# A `chainmatch worker` whose imports pause after each written chunk: it is surely mid-import when killed.
PACED_WORKER = """
import sys, time
from webapp.services import jobs
original = jobs.Heartbeat.progress
def paced(self, done, total):
    original(self, done, total)
    time.sleep(0.3)
jobs.Heartbeat.progress = paced
from webapp.cli.main import main
sys.argv = ["chainmatch", "worker", "--workers", "1"]
main()
"""


def _csv(rows: int) -> bytes:
    lines = [CSV_HEADER] + [f"q{i},队列测试企业{i:05d}有限公司,,青岛市,测试,合成数据：队列测试\n" for i in range(rows)]
    return "".join(lines).encode("utf-8")


QUEUE_CONFIG = {"TASK_QUEUE": "sqlite", "JOB_STALE_SECONDS": STALE_SECONDS}
pytestmark = pytest.mark.app_config(**QUEUE_CONFIG)


@pytest.fixture
def queue_app(app):
    """The test's app on the SQLite task queue (no consumer runs until the test starts one)."""
    return app


@pytest.fixture
def consumer_of():
    """Start a consumer (threads of this process) for an app; stopped after the test."""
    started = []

    def start(app, workers: int = 1):
        started.append(start_in_thread(app, workers))
        return started[-1]

    yield start
    for consumer in started:
        consumer.stop(graceful=True)


def _staff(app) -> AuthActions:
    auth = AuthActions(app, app.test_client())
    auth.login_as("staff")
    return auth


def _firms(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Enterprise))


def _import(app, job_id: int) -> tuple[ImportJob, jobs.BackgroundJob]:
    with app.app_context():
        db.session.expire_all()
        job = db.session.get(ImportJob, job_id)
        state = jobs.get(db.session, jobs.KIND_IMPORT, job_id)
        db.session.expunge_all()
        return job, state


def _ended(app, job_id: int) -> tuple[ImportJob, jobs.BackgroundJob]:
    """The import and its job row once both are finished (the row ends just after the import's transaction)."""
    _wait_for(lambda: _import(app, job_id)[1].status not in jobs.ACTIVE, "the job row to end")
    return _import(app, job_id)


def _wait_for(predicate, what: str, timeout: float = TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _status_html(auth, job_id: int) -> str:
    return auth._client.get(f"/imports/{job_id}/status", headers={"HX-Request": "true"}).get_data(as_text=True)


# ----------------------------------------------------------------------------- imports


def test_import_is_queued_and_run_by_the_consumer(queue_app, consumer_of):
    auth = _staff(queue_app)
    job_id = job_id_from(upload(auth, _csv(30), "名单.csv"))
    job, state = _import(queue_app, job_id)
    assert state.task_id and state.status in ("queued", "running")
    assert "排队中" in _status_html(auth, job_id) or job.status == "running"  # nothing consumes the queue yet
    consumer_of(queue_app)
    html = wait_until_finished(auth._client, job_id)
    assert "已完成" in html and "新增 <strong>30</strong>" in html
    job, state = _ended(queue_app, job_id)
    assert job.status == "done" and state.status == "done" and _firms(queue_app) == 30
    assert (tmp := Path(queue_app.instance_path) / tasks.QUEUE_FILE).exists() and tmp.stat().st_size > 0


def test_queued_import_cancelled_is_skipped_by_the_worker_and_can_be_retried(queue_app, consumer_of):
    auth = _staff(queue_app)
    job_id = job_id_from(upload(auth, _csv(20), "名单.csv"))
    response = auth.post(f"/imports/{job_id}/cancel", headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "导入已取消" in html and "已取消" in html and "重试" in html
    assert 'hx-trigger="every 1s"' not in html
    consumer_of(queue_app)
    time.sleep(2)  # the consumer skips the revoked task
    job, state = _ended(queue_app, job_id)
    assert job.status == "cancelled" and state.status == "cancelled" and _firms(queue_app) == 0

    response = auth.post(f"/imports/{job_id}/retry")
    assert response.status_code == 303
    html = wait_until_finished(auth._client, job_id)
    assert "已完成" in html and _firms(queue_app) == 20
    job, state = _ended(queue_app, job_id)
    assert job.status == "done" and state.status == "done"
    assert auth.post(f"/imports/{job_id}/retry").status_code == 303  # a finished import is not retried
    assert auth.post(f"/imports/{job_id}/cancel").status_code == 303  # nor cancelled
    assert _import(queue_app, job_id)[0].status == "done"
    with queue_app.app_context():  # only the changes are audited
        actions = db.session.scalars(
            select(AuditEntry.action).where(AuditEntry.object_type == "import_job").order_by(AuditEntry.id)
        ).all()
    assert actions == ["enterprise.import", "import.cancel", "import.retry"]


def test_running_import_cancelled_between_chunks_changes_nothing(queue_app, consumer_of, monkeypatch):
    original = jobs.Heartbeat.progress

    def paced(self, done, total):  # each written chunk takes a while: the cancel surely lands mid-import
        original(self, done, total)
        time.sleep(0.3)

    monkeypatch.setattr(jobs.Heartbeat, "progress", paced)
    rows = 8000
    auth = _staff(queue_app)
    consumer_of(queue_app)
    job_id = job_id_from(upload(auth, _csv(rows), "大名单.csv"))
    _wait_for(lambda: _import(queue_app, job_id)[0].status == "running", "the import to start")
    response = auth.post(f"/imports/{job_id}/cancel", headers={"HX-Request": "true"})
    assert response.status_code == 200 and "正在取消" in response.get_data(as_text=True)
    html = wait_until_finished(auth._client, job_id)
    assert "已取消" in html and "数据库未作任何修改" in html and "重试" in html
    job, state = _ended(queue_app, job_id)
    assert job.status == "cancelled" and state.status == "cancelled" and state.done < rows
    assert _firms(queue_app) == 0  # the transaction was rolled back


def test_worker_killed_mid_import_fails_the_job_then_retry_imports_everything(queue_app, consumer_of, database_url):
    rows = 5000
    auth = _staff(queue_app)
    job_id = job_id_from(upload(auth, _csv(rows), "名单.csv"))
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "CHAINMATCH_LOG_LEVEL": "WARNING",
        "CHAINMATCH_DATABASE_URL": database_url,
        "CHAINMATCH_INSTANCE_PATH": queue_app.instance_path,
        "CHAINMATCH_UPLOAD_DIR": queue_app.config["UPLOAD_DIR"],
        "CHAINMATCH_INDEX_DIR": queue_app.config["INDEX_DIR"],
        "CHAINMATCH_TASK_QUEUE": "sqlite",
        "CHAINMATCH_EMBEDDING_MODEL": "builtin",
        "CHAINMATCH_JOB_STALE_SECONDS": str(STALE_SECONDS),
    }
    worker = subprocess.Popen([sys.executable, "-c", PACED_WORKER], cwd=ROOT, env=env)
    try:
        _wait_for(
            lambda: _import(queue_app, job_id)[0].status == "running" or worker.poll() is not None,
            "the worker to start the import",
        )
        assert worker.poll() is None
        _, state = _import(queue_app, job_id)
        assert state.owner.split(":")[1] == str(worker.pid)  # run by the worker process, not a web process
        time.sleep(1.0)
    finally:
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)
    assert _firms(queue_app) == 0
    _wait_for(lambda: "导入中断" in _status_html(auth, job_id), "the stale job to be marked failed", STALE_SECONDS + 15)
    assert "重试" in _status_html(auth, job_id)

    consumer_of(queue_app)
    assert auth.post(f"/imports/{job_id}/retry").status_code == 303
    html = wait_until_finished(auth._client, job_id)
    assert "已完成" in html and _firms(queue_app) == rows


def test_only_jobs_waiting_on_the_durable_queue_never_go_stale():
    old = utcnow() - timedelta(hours=1)

    def queued(task_id: str) -> jobs.BackgroundJob:
        return jobs.BackgroundJob(
            kind=jobs.KIND_IMPORT,
            key="1",
            status=jobs.STATUS_QUEUED,
            owner=dead_owner(),
            task_id=task_id,
            started_at=old,
            heartbeat_at=old,
        )

    assert not jobs.is_stale(queued("0f" * 16), STALE_SECONDS)  # in the SQLite/Redis queue: outlives the web process
    assert jobs.is_stale(queued(jobs.IN_PROCESS_TASK_PREFIX + "0f" * 16), STALE_SECONDS)  # a thread of a dead process
    assert jobs.is_stale(queued(""), STALE_SECONDS)


# ----------------------------------------------------------------------------- placement runs


def test_placement_run_is_queued_cancelled_and_run_again(queue_app, consumer_of):
    with queue_app.app_context():
        db.session.add(Cluster(id=CLUSTER, name="队列测试集聚区", province="江苏省", city="常州市"))
        db.session.commit()
    auth = AuthActions(queue_app, queue_app.test_client())
    auth.login_as("manager", clusters=(CLUSTER,))
    hx = {"HX-Request": "true"}
    response = auth.post(f"/clusters/{CLUSTER}/placement/run", headers=hx)  # no consumer: it stays queued
    body = response.get_data(as_text=True)
    assert response.status_code == 202 and "自动归位已排队" in body and "取消" in body and "hx-trigger" in body
    again = auth.post(f"/clusters/{CLUSTER}/placement/run", headers=hx)
    assert again.status_code == 409
    response = auth.post(f"/clusters/{CLUSTER}/placement/cancel", headers=hx)
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "自动归位已取消" in body and "重试" in body and "hx-trigger" not in body
    with queue_app.app_context():
        assert jobs.get(db.session, jobs.KIND_PLACEMENT, CLUSTER).status == "cancelled"

    consumer_of(queue_app)
    response = auth.post(f"/clusters/{CLUSTER}/placement/run", headers=hx)  # 重试
    assert response.status_code in (200, 202, 500)

    def finished() -> bool:
        with queue_app.app_context():
            return jobs.get(db.session, jobs.KIND_PLACEMENT, CLUSTER).status not in jobs.ACTIVE

    _wait_for(finished, "the placement run")
    with queue_app.app_context():
        row = jobs.get(db.session, jobs.KIND_PLACEMENT, CLUSTER)
        assert row.status in ("done", "failed") and row.owner == jobs.owner_id() and row.task_id
    page = auth._client.get(f"/clusters/{CLUSTER}/placement").get_data(as_text=True)
    assert "自动归位已排队" not in page and "自动归位正在后台运行" not in page


def test_running_placement_cancelled_stores_no_suggestion(queue_app, consumer_of, monkeypatch):
    original = jobs.Heartbeat.check

    def slow(self, force=False):  # each firm (and step) takes 3 s: the cancel lands mid-run even when the cancel
        time.sleep(3.0)  # request itself takes seconds on a loaded machine (3.9 s seen in CI)
        original(self, force)

    monkeypatch.setattr(jobs.Heartbeat, "check", slow)
    with queue_app.app_context():
        seed(db.session)
    auth = AuthActions(queue_app, queue_app.test_client())
    auth.login_as("manager", clusters=(SEED_CLUSTER,))
    consumer_of(queue_app)
    hx = {"HX-Request": "true"}
    assert auth.post(f"/clusters/{SEED_CLUSTER}/placement/run", headers=hx).status_code == 202

    def placement() -> jobs.BackgroundJob:
        with queue_app.app_context():
            return jobs.get(db.session, jobs.KIND_PLACEMENT, SEED_CLUSTER)

    _wait_for(lambda: placement().status == jobs.STATUS_RUNNING, "the placement run to start")
    response = auth.post(f"/clusters/{SEED_CLUSTER}/placement/cancel", headers=hx)
    assert response.status_code == 202 and "正在取消自动归位" in response.get_data(as_text=True)
    _wait_for(lambda: placement().status not in jobs.ACTIVE, "the placement run to stop")
    assert placement().status == jobs.STATUS_CANCELLED
    with queue_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(LinkAssignment)) == 0
    page = auth._client.get(f"/clusters/{SEED_CLUSTER}/placement").get_data(as_text=True)
    assert "自动归位已取消" in page and "重试" in page


# ----------------------------------------------------------------------------- the index's embedding


def test_embedding_is_queued_by_a_web_worker_and_run_by_the_task_worker(database_url, tmp_path, tiny_e5, consumer_of):
    """Two apps over one database and instance folder, as a web worker and the task worker are: the web worker
    serves lexically and queues the embedding; the task worker embeds and saves; the web worker loads the vectors."""
    config = {**QUEUE_CONFIG, "EMBEDDING_MODEL": str(tiny_e5), "EMBEDDING_BACKEND": "torch", "JOB_STALE_SECONDS": 30}
    web = make_app(database_url, tmp_path, **config)
    worker = make_app(database_url, tmp_path, **config)
    try:
        with web.app_context():
            seed(db.session)
            matchsvc.sync(db.session, web)
        assert "dense" not in served_channels(web)  # served lexically; the request queued the embedding
        with web.app_context():
            row = jobs.get(db.session, embed_job.KIND_EMBED, embed_job.job_key(web))
            assert row.status == jobs.STATUS_QUEUED and row.task_id
        assert store.state_of(web).embed_thread is None  # no thread of the web worker embeds

        consumer_of(worker)

        def embedded() -> bool:
            with web.app_context():
                return jobs.get(db.session, embed_job.KIND_EMBED, embed_job.job_key(web)).status not in jobs.ACTIVE

        _wait_for(embedded, "the task worker's embedding")
        with web.app_context():
            row = jobs.get(db.session, embed_job.KIND_EMBED, embed_job.job_key(web))
            assert row.status == jobs.STATUS_DONE and row.done == row.total > 0
        _wait_for(lambda: "dense" in served_channels(web), "the web worker to load the saved vectors", 30)
    finally:
        dispose(web)
        dispose(worker)


# ----------------------------------------------------------------------------- Redis


def test_import_on_a_redis_queue(database_url, tmp_path, consumer_of):
    redis = pytest.importorskip("redis")
    url = os.environ.get("CHAINMATCH_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        redis.Redis.from_url(url).ping()
    except redis.exceptions.ConnectionError:
        pytest.skip(f"no Redis at {url}")
    name = f"chainmatch-test-{uuid.uuid4().hex[:10]}"
    app = make_app(
        database_url, tmp_path, **{**QUEUE_CONFIG, "TASK_QUEUE": "redis", "REDIS_URL": url, "TASK_QUEUE_NAME": name}
    )
    huey = tasks.huey_for(app)
    try:
        assert type(huey).__name__ == "RedisHuey"
        consumer_of(app)
        auth = _staff(app)
        job_id = job_id_from(upload(auth, _csv(12), "名单.csv"))
        assert "已完成" in wait_until_finished(auth._client, job_id) and _firms(app) == 12
        tasks.request_cancel(app, jobs.KIND_IMPORT, 999)
        assert tasks.cancel_requested(app, jobs.KIND_IMPORT, 999)
        tasks.clear_cancel(app, jobs.KIND_IMPORT, 999)
        assert not tasks.cancel_requested(app, jobs.KIND_IMPORT, 999)
    finally:
        huey.flush()
        client = redis.Redis.from_url(url)
        leftovers = list(client.scan_iter(f"*{name}*"))
        if leftovers:
            client.delete(*leftovers)
        dispose(app)


# ----------------------------------------------------------------------------- the worker beside the server


@pytest.mark.app_config(TASK_QUEUE="thread")
def test_worker_command_and_thread_mode(runner):
    result = runner.invoke(args=["worker", "--help"])
    assert result.exit_code == 0 and "--workers" in result.output
    result = runner.invoke(args=["worker"])  # TASK_QUEUE=thread: no worker to run
    assert result.exit_code == 0 and "无需任务进程" in result.output
    from click.testing import CliRunner

    from webapp.cli.main import cli

    assert "task worker" in CliRunner().invoke(cli, ["run", "--help"]).output  # the console script's `run`


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as fh:
            return [int(p) for p in fh.read().split()]
    except OSError:
        return []


@pytest.mark.slow
def test_chainmatch_run_starts_the_worker_and_stops_it_with_the_server(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "CHAINMATCH_INSTANCE_PATH": str(tmp_path / "instance"),
        "CHAINMATCH_LOG_LEVEL": "WARNING",
        "CHAINMATCH_TASK_QUEUE": "sqlite",
    }
    env.pop("CHAINMATCH_DATABASE_URL", None)
    server = subprocess.Popen([sys.executable, "-m", "webapp.cli.main", "run", "--port", str(port)], cwd=ROOT, env=env)
    try:
        worker_pid = None
        deadline = time.monotonic() + TIMEOUT_S
        while worker_pid is None:
            assert time.monotonic() < deadline and server.poll() is None, "no worker started"
            worker_pid = next((p for p in _children(server.pid) if " worker " in cmdline(p) + " "), None)
            time.sleep(0.2)
        assert f"--parent {server.pid}" in cmdline(worker_pid)
    finally:
        # SIGTERM, as a service manager stops a server: the worker must end with the server however it ended (its
        # parent-death signal and parent watch). Not SIGINT: a test suite started from a background shell (`cmd &`)
        # inherits SIGINT ignored, so Python installs no KeyboardInterrupt handler and the server would not stop.
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    _wait_for(
        lambda: not os.path.exists(f"/proc/{worker_pid}") or "worker" not in cmdline(worker_pid),
        "the worker to stop with the server",
        30,
    )
