"""Background job state in the database: seen by every worker process, heartbeats, stale jobs marked failed.

"Another worker" is a second app object over the same database (what a second gunicorn worker process is).
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from chains.cluster_models import Cluster
from chains.db import utcnow
from chains.enterprise_models import ImportJob
from tests.conftest import AuthActions, make_app
from tests.worlds.processes import dead_owner
from webapp.extensions import db
from webapp.services import jobs
from webapp.services.jobs.models import BackgroundJob

CLUSTER = "jobs-cluster"


@pytest.fixture
def two_workers(database_url, tmp_path):
    """Two app objects (as two worker processes) over one database, each with its own instance folder."""
    first = make_app(database_url, tmp_path / "w1", JOB_STALE_SECONDS=30)
    second = make_app(database_url, tmp_path / "w2", JOB_STALE_SECONDS=30)
    yield first, second
    from webapp.clusters import placement_views

    placement_views.wait_for_runs()
    for app in (first, second):
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def _import_job(
    app, status: str = "running", owner: str | None = None, heartbeat_age: float = 0.0, with_state: bool = True
) -> int:
    with app.app_context():
        job = ImportJob(filename="名单.csv", status=status)
        db.session.add(job)
        db.session.flush()
        if with_state:
            beat = utcnow() - timedelta(seconds=heartbeat_age)
            db.session.add(
                BackgroundJob(
                    kind=jobs.KIND_IMPORT,
                    key=str(job.id),
                    status=status,
                    owner=owner if owner is not None else jobs.owner_id(),
                    started_at=beat,
                    heartbeat_at=beat,
                )
            )
        db.session.commit()
        return job.id


def _login(app, role: str, clusters: tuple[str, ...] = ()) -> AuthActions:
    client = app.test_client()
    auth = AuthActions(app, client)
    auth.login_as(role, clusters=clusters)
    return auth


# ----------------------------------------------------------------------------- imports


def test_import_progress_written_by_one_worker_is_shown_by_another(two_workers):
    first, second = two_workers
    job_id = _import_job(first)
    with first.app_context():
        state = jobs.get(db.session, jobs.KIND_IMPORT, job_id)
        beat = jobs.Heartbeat(first, state.id)
        beat.interval = 0.05
        beat.progress(500, 2000)
        with beat:
            deadline = time.monotonic() + 10
            while jobs.get(db.session, jobs.KIND_IMPORT, job_id).done != 500 and time.monotonic() < deadline:
                time.sleep(0.05)
    auth = _login(second, "staff")
    html = auth._client.get(f"/imports/{job_id}/status").get_data(as_text=True)
    assert "导入中" in html and "已处理 500 / 2000 家企业" in html and 'hx-trigger="every 1s"' in html


def test_import_whose_worker_died_is_marked_failed_with_a_chinese_message(two_workers):
    first, second = two_workers
    stale = _import_job(first, owner=dead_owner(), heartbeat_age=120)
    remote = _import_job(first, owner="another-host:4242:1", heartbeat_age=120)
    auth = _login(second, "staff")
    for job_id in (stale, remote):
        html = auth._client.get(f"/imports/{job_id}/status").get_data(as_text=True)
        assert "失败" in html and "导入中断" in html and "数据库未作任何修改" in html
        assert 'hx-trigger="every 1s"' not in html  # polling stops
    with second.app_context():
        for job_id in (stale, remote):
            job = db.session.get(ImportJob, job_id)
            assert job.status == "failed" and "超过 30 秒没有心跳" in job.error and job.finished_at is not None
            assert jobs.get(db.session, jobs.KIND_IMPORT, job_id).status == "failed"
    assert "失败" in auth._client.get("/imports/").get_data(as_text=True)


def test_live_import_without_recent_heartbeat_keeps_running(two_workers):
    """SQLite's write lock can hold up the heartbeat of a long import: a live owner process keeps it running."""
    first, second = two_workers
    job_id = _import_job(first, heartbeat_age=600)  # owner: this (live) process
    fresh = _import_job(first, owner="another-host:4242:1", heartbeat_age=1)
    auth = _login(second, "staff")
    for job_id_ in (job_id, fresh):
        html = auth._client.get(f"/imports/{job_id_}/status").get_data(as_text=True)
        assert "导入中" in html and 'hx-trigger="every 1s"' in html
    with second.app_context():
        assert db.session.get(ImportJob, job_id).status == "running"


def test_queued_job_without_state_fails_only_when_old(app, client, auth):
    auth.login_as("admin")
    recent = _import_job(app, status="queued", with_state=False)
    old = _import_job(app, status="queued", with_state=False)
    with app.app_context():
        db.session.get(ImportJob, old).created_at = utcnow() - timedelta(hours=1)
        db.session.commit()
    assert 'hx-trigger="every 1s"' in client.get(f"/imports/{recent}/status").get_data(as_text=True)
    assert "导入中断" in client.get(f"/imports/{old}/status").get_data(as_text=True)


def test_heartbeat_refreshes_and_stops_with_the_job(app):
    job_id = _import_job(app, heartbeat_age=50)
    with app.app_context():
        state = jobs.get(db.session, jobs.KIND_IMPORT, job_id)
        before = jobs.aware(state.heartbeat_at)
        beat = jobs.Heartbeat(app, state.id)
        beat.interval = 0.05
        with beat:
            beat.progress(3, 4)
            time.sleep(0.4)
        state = jobs.get(db.session, jobs.KIND_IMPORT, job_id)
        assert jobs.aware(state.heartbeat_at) > before and (state.done, state.total) == (3, 4)
        jobs.finish(db.session, state.id, jobs.STATUS_DONE)
        assert jobs.get(db.session, jobs.KIND_IMPORT, job_id).status == "done"


# ----------------------------------------------------------------------------- placement runs


def _cluster(app) -> None:
    with app.app_context():
        db.session.add(Cluster(id=CLUSTER, name="作业测试集聚区", province="江苏省", city="常州市"))
        db.session.commit()


def test_placement_run_of_one_worker_blocks_a_second_run_in_another(two_workers):
    first, second = two_workers
    _cluster(first)
    with first.app_context():
        assert jobs.claim(db.session, jobs.KIND_PLACEMENT, CLUSTER) is not None  # running in "worker 1"
        assert jobs.claim(db.session, jobs.KIND_PLACEMENT, CLUSTER) is None  # one run at a time
    auth = _login(second, "manager", (CLUSTER,))
    page = auth._client.get(f"/clusters/{CLUSTER}/placement").get_data(as_text=True)
    assert "自动归位正在后台运行" in page
    response = auth.post(f"/clusters/{CLUSTER}/placement/run", headers={"HX-Request": "true"})
    assert response.status_code == 409 and "自动归位正在进行中" in response.get_data(as_text=True)


def test_placement_run_whose_worker_died_is_marked_failed_and_can_run_again(two_workers):
    first, second = two_workers
    _cluster(first)
    with first.app_context():
        old = utcnow() - timedelta(seconds=300)
        db.session.add(
            BackgroundJob(
                kind=jobs.KIND_PLACEMENT,
                key=CLUSTER,
                status="running",
                owner=dead_owner(),
                started_at=old,
                heartbeat_at=old,
            )
        )
        db.session.commit()
    auth = _login(second, "manager", (CLUSTER,))
    page = auth._client.get(f"/clusters/{CLUSTER}/placement/status", headers={"HX-Request": "true"})
    body = page.get_data(as_text=True)
    assert "自动归位中断" in body and 'hx-trigger="every' not in body
    with second.app_context():
        job = jobs.get(db.session, jobs.KIND_PLACEMENT, CLUSTER)
        assert job.status == "failed"
        again = jobs.claim(db.session, jobs.KIND_PLACEMENT, CLUSTER)
        assert again is not None and again.status == "running" and again.owner == jobs.owner_id()


def test_owner_liveness():
    assert jobs.owner_alive(jobs.owner_id()) is True
    assert jobs.owner_alive(dead_owner()) is False
    assert jobs.owner_alive("another-host:1:1") is None
    assert jobs.owner_alive("") is None
