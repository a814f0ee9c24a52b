"""Embedding the registry on a real local Ray (2 workers): the vectors equal the in-process ones, a job that dies
keeps what its finished partitions wrote and the next run encodes only the rest."""

from __future__ import annotations

import numpy as np
import pytest

from matching.embedders.vector_cache import text_keys
from tests.worlds.e5_app import Counting, e5_app, tiny_e5  # noqa: F401 - fixtures
from tests.worlds.match_seed import seed
from webapp.extensions import db
from webapp.services import match as matchsvc
from webapp.services.match import embed_job, embedding, ray_embed, store

pytestmark = pytest.mark.slow  # a Ray cluster starts for each test (≈ 10 s)


@pytest.fixture
def pending(e5_app, monkeypatch):  # noqa: F811 - fixture
    """The seeded world indexed lexically, vectors pending; partitions of 8 firms (4 for the 28)."""
    monkeypatch.setattr(ray_embed, "PARTITION_ROWS", 8)
    with e5_app.app_context():
        ids = seed(db.session)
        matchsvc.sync(db.session, e5_app)
    return ids


def _texts(app) -> list[str]:
    _, texts = store.pool_snapshot(store.state_of(app))
    return texts


def test_ray_fills_the_cache_with_the_in_process_vectors_and_the_job_only_attaches_them(e5_app, pending, monkeypatch):
    embedder = embedding.embedder_for(e5_app)
    with e5_app.app_context():
        progress = []
        figures = ray_embed.embed_on_ray(e5_app, db.session, embedder, progress=lambda d, t: progress.append((d, t)))
    assert figures["partitions"] == 4 and figures["encoded"] == len(pending)
    assert progress[-1] == (len(pending), len(pending))
    texts = _texts(e5_app)
    cached, found = embedding.cache_for(e5_app, embedder).lookup(text_keys(texts))
    assert found.all()
    assert np.allclose(cached, embedder.encode(texts), atol=1e-5)  # the Ray workers' vectors are the model's own
    counting = Counting(embedder)
    monkeypatch.setattr(embed_job, "embedder_for", lambda app: counting)
    assert matchsvc.run_embedding(e5_app)
    assert counting.encoded == []  # everything came from the cache
    with e5_app.app_context():
        assert store.state_of(e5_app).meta["vectors"] == store.VECTORS_READY


KILLED_RUN = """
import sys
from webapp import create_app
from webapp.extensions import db
from webapp.services.match import embedding, ray_embed
ray_embed.PARTITION_ROWS = 1  # one firm a partition: the job lasts long enough to be killed halfway
app = create_app({"TESTING": True, "RATELIMIT_STORAGE_URI": "memory://"})
with app.app_context():
    ray_embed.embed_on_ray(app, db.session, embedding.embedder_for(app), temp_dir=sys.argv[1])
"""


def test_a_killed_ray_job_keeps_its_finished_partitions_and_the_rerun_encodes_the_rest(
    e5_app, pending, tmp_path, database_url, tiny_e5
):
    import os
    import shutil
    import signal
    import subprocess
    import sys
    import tempfile
    import time
    from pathlib import Path

    embedder = embedding.embedder_for(e5_app)
    cache = embedding.cache_for(e5_app, embedder)
    env = {
        **os.environ,
        "CHAINMATCH_DATABASE_URL": database_url,
        "CHAINMATCH_INSTANCE_PATH": e5_app.instance_path,
        "CHAINMATCH_INDEX_DIR": e5_app.config["INDEX_DIR"],
        "CHAINMATCH_EMBEDDING_MODEL": str(tiny_e5),
        "CHAINMATCH_EMBEDDING_BACKEND": "torch",
        "CHAINMATCH_LOG_LEVEL": "WARNING",
    }
    ray_dir = Path(tempfile.mkdtemp(prefix="cmray-"))  # short: Ray's socket paths must fit in 107 bytes
    log = tmp_path / "job.log"
    with open(log, "wb") as out:
        job = subprocess.Popen(
            [sys.executable, "-c", KILLED_RUN, str(ray_dir)],
            env=env,
            start_new_session=True,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    texts = _texts(e5_app)
    keys = text_keys(texts)
    deadline = time.monotonic() + 180
    try:
        while cache.lookup(keys)[1].sum() < 4 and time.monotonic() < deadline and job.poll() is None:
            time.sleep(0.2)
    finally:
        finished_alone = job.poll() is not None
        if not finished_alone:
            os.killpg(job.pid, signal.SIGKILL)  # the driver and the local Ray it started, mid-job
        job.wait()
        _kill_ray_processes(ray_dir)
    assert not finished_alone, log.read_text(errors="replace")[-3000:]
    done = _settled_count(cache, keys)
    assert 4 <= done < len(texts), "the job was killed before or after its partitions were written"
    again_dir = tempfile.mkdtemp(prefix="cmray-")
    try:
        with e5_app.app_context():
            again = ray_embed.embed_on_ray(e5_app, db.session, embedder, temp_dir=again_dir)
    finally:
        for folder in (ray_dir, again_dir):
            shutil.rmtree(folder, ignore_errors=True)
    assert again["encoded"] == len(texts) - done  # the partitions written before the kill are not encoded again
    assert cache.lookup(keys)[1].all()


def _settled_count(cache, keys, quiet_seconds: float = 3.0, limit_seconds: float = 60.0) -> int:
    """Finished texts once no more arrive: a Ray worker that outlived the kill by a moment may still write the
    partition it was encoding, which the rerun then rightly skips (the count must include it)."""
    import time

    count, since, deadline = int(cache.lookup(keys)[1].sum()), time.monotonic(), time.monotonic() + limit_seconds
    while time.monotonic() - since < quiet_seconds and time.monotonic() < deadline:
        time.sleep(0.2)
        now = int(cache.lookup(keys)[1].sum())
        if now != count:
            count, since = now, time.monotonic()
    return count


def _kill_ray_processes(ray_dir) -> None:
    """Ray's daemons leave the killed driver's session: end the ones started in this test's Ray folder."""
    import os
    import signal

    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                command = fh.read().decode("utf-8", "replace")
        except OSError:
            continue
        if str(ray_dir) in command:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_index_embed_on_ray_from_the_cli_leaves_the_index_with_its_vectors(e5_app, pending):
    result = e5_app.test_cli_runner().invoke(args=["index", "embed", "--ray"])
    assert result.exit_code == 0, result.output
    assert f"新计算 {len(pending)} 家" in result.output and "向量 ready" in result.output
    with e5_app.app_context():
        state = store.state_of(e5_app)
        assert state.meta["vectors"] == store.VECTORS_READY and len(state.engine.vector_index) == len(pending)
    again = e5_app.test_cli_runner().invoke(args=["index", "embed", "--ray"])
    assert again.exit_code == 0 and "无需计算" in again.output
