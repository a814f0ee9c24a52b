"""The embedding job: encode the match index's pool with a transformer in the background, then attach the vectors.

The index is built lexical-first and saved with its vectors "pending" (webapp.services.match.engine_build); this job
(kind "embed" in background_jobs: progress, heartbeat, one runner across worker processes) encodes every profile into the
vector cache (webapp.services.match.embedding) — each finished chunk is kept, so a job that dies resumes where it stopped —
and then attaches the vectors and saves the index with its vectors "ready". Searches meanwhile use the lexical
channels, and web workers load the saved vectors once they are ready. The CLI runs the job in its own thread (with
a progress bar); a web worker queues it as a task of the task worker (webapp.services.tasks), or runs it in a background
thread in `thread` mode.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from flask import Flask
from sqlalchemy.orm import Session

from matching.embedders import Embedder
from matching.embedders.vector_cache import EncodingStopped
from webapp.extensions import db
from webapp.services import jobs, tasks
from webapp.services.match import store
from webapp.services.match.embedding import embedder_for, encode_documents
from webapp.services.match.index_files import index_folder

logger = logging.getLogger("chainmatch.matchsvc")

KIND_EMBED = "embed"
TASK = "embed"
FAILED_MESSAGE = "语义向量计算失败，请查看日志；检索暂用词法匹配 (embedding failed; lexical matching meanwhile)"
STALE_MESSAGE = "语义向量计算中断（服务进程已停止），将在下次启动时继续 (embedding stopped with its worker; it resumes)"

Progress = Callable[[int, int], None]


def job_key(app: Flask) -> str:
    return index_folder(app).name


def job_progress(app: Flask, session) -> dict[str, Any] | None:
    """The embedding job as the UI shows it: status, done, total, message (None when none ever ran)."""
    row = jobs.get(session, KIND_EMBED, job_key(app))
    if row is None:
        return None
    if jobs.is_stale(row, jobs.stale_seconds(app)):
        return {"status": jobs.STATUS_FAILED, "done": row.done, "total": row.total, "message": STALE_MESSAGE}
    return {"status": row.status, "done": row.done, "total": row.total, "message": row.message}


def run_embedding(app: Flask, progress: Progress | None = None, task_id: str = "") -> bool:
    """Embed the installed engine's pool and attach the vectors. Returns whether vectors were attached (False when
    there is nothing pending or another process runs the job). Runs in the calling thread; with `task_id`, the
    job queued for that task is run (else the job is claimed)."""
    state = store.state_of(app)
    with app.app_context():
        session = db.session
        try:
            pending = state.engine is not None and state.meta.get("vectors") == store.VECTORS_PENDING
            if task_id:
                row = jobs.start_queued(session, KIND_EMBED, job_key(app), task_id)
                if row is not None and not pending:  # another process attached the vectors meanwhile
                    jobs.finish(session, row.id, jobs.STATUS_DONE)
                    return False
            elif not pending:
                return False
            else:
                row = jobs.claim(session, KIND_EMBED, job_key(app))
            if row is None:
                return False
            outcome, message = jobs.STATUS_FAILED, FAILED_MESSAGE
            with jobs.Heartbeat(app, row.id) as beat:

                def report(done: int, total: int) -> None:
                    beat.progress(done, total)
                    state.progress = (done, total)
                    if progress:
                        progress(done, total)

                try:
                    embedder = embedder_for(app)
                    _, texts = store.pool_snapshot(state)
                    logger.info("embedding %d profiles with %s", len(texts), embedder.name)
                    encode_documents(app, embedder, texts, report)
                    _attach(app, state, embedder)
                    outcome, message = jobs.STATUS_DONE, ""
                except EncodingStopped as exc:
                    message = f"语义向量计算已停止 ({exc})"
                except Exception:  # noqa: BLE001 - logged; the lexical index serves, the next start resumes
                    logger.exception("embedding the match index failed")
            jobs.finish(session, row.id, outcome, message)
            return outcome == jobs.STATUS_DONE
        finally:
            db.session.remove()


def _attach(app: Flask, state: store.EngineState, embedder: Embedder) -> None:
    """Attach vectors for the engine's current pool and save the index with its vectors ready.

    Holds the build lock (syncs, the only other writers of the pool, wait; searches do not): profiles added since
    the job began are encoded now, the vector index is built, swapped in under the short engine lock, and saved."""
    with state.build_lock:
        engine = state.engine
        ids, texts = store.pool_snapshot(state)
        vectors = encode_documents(app, embedder, texts)
        prepared = engine.build_vector_index(embedder, ids, vectors)
        with state.lock:
            engine.use_vector_index(prepared)
        store.vectors_attached(app, state)


def start_embedding(app: Flask) -> threading.Thread:
    """Run the embedding job in a background thread of this process (unless one runs here already)."""
    state = store.state_of(app)
    with state.lock:
        thread = state.embed_thread
        if thread is None or not thread.is_alive():
            thread = state.embed_thread = threading.Thread(
                target=run_embedding, args=(app,), name="chainmatch-embed", daemon=True
            )
            thread.start()
        return thread


def run_queued_embedding(app: Flask, task_id: str) -> None:
    """The embedding task of the task worker: load (or build, or sync) the saved index here, then embed it."""
    with app.app_context():
        try:
            store.sync(db.session, app)
        except Exception:  # noqa: BLE001 - logged; run_embedding closes the queued job as done/skipped
            logger.exception("the task worker could not load the match index to embed it")
        finally:
            db.session.remove()
    run_embedding(app, task_id=task_id)


def queue_embedding(app: Flask) -> None:
    """Make sure the embedding job is queued or runs somewhere (a thread here in `thread` mode).

    Looked at once per stale timeout at most: every request of a web worker asks while vectors are pending."""
    if tasks.huey_for(app) is None:
        start_embedding(app)
        return
    state = store.state_of(app)
    now = time.monotonic()
    if now - state.embed_queued_at < jobs.stale_seconds(app):
        return
    state.embed_queued_at = now
    task_id = tasks.new_task_id(app)
    # A session of its own: the request's session may hold changes its view has not committed yet.
    with app.app_context(), Session(db.engine) as session:
        if jobs.claim(session, KIND_EMBED, job_key(app), timeout=jobs.stale_seconds(app), task_id=task_id) is None:
            return  # queued or running already
    tasks.enqueue(app, TASK, task_id)
