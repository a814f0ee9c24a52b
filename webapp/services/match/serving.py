"""The match index as requests see it: the engine for a request, background loads/builds/syncs, the embedding job
started when vectors are pending, a worker's preload, and the status the UI and CLI show.

A web request never waits for a build or a sync: it gets the engine as it is (synced inline only when few firms
changed) or, while none is ready, None (the candidates page then shows the keyword fallback).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from flask import Flask, current_app
from sqlalchemy.orm import Session

from matching.vectors.meta import IndexMismatchError, read_meta
from webapp.services.match import embed_job
from webapp.services.match.embedding import configured_model, expected_embedder_name, inline_change_limit, model_label
from webapp.services.match.engine_build import load_shared
from webapp.services.match.engine_state import (
    STATUS_BUILDING,
    STATUS_FAILED,
    VECTORS_PENDING,
    EngineState,
    Watermark,
    current_watermark,
    install,
    state_of,
)
from webapp.services.match.hubness import hubness_stale
from webapp.services.match.index_files import META_FILE, index_folder
from webapp.services.match.store import INLINE_SYNC_MAX, sync, sync_locked
from webapp.services.tasks import QUEUE_THREAD, queue_kind

logger = logging.getLogger("chainmatch.matchsvc")

WARM_UP_QUERY = "产业链 配套 企业"


def _app(app: Flask | None) -> Flask:
    return app or current_app._get_current_object()


def ensure_index_async(app: Flask) -> str:
    """Load, build or sync the index in a background thread unless it is ready; returns the status."""
    state = state_of(app)
    with state.lock:
        if state.thread is not None and state.thread.is_alive():
            return state.status
        if state.engine is None:
            state.status = STATUS_BUILDING
        state.thread = threading.Thread(target=_background_sync, args=(app,), name="chainmatch-index", daemon=True)
        state.thread.start()
        return state.status


def _background_sync(app: Flask) -> None:
    from webapp.extensions import db

    state = state_of(app)
    was_ready = state.engine is not None
    with app.app_context():
        try:

            def progress(done: int, total: int) -> None:
                state.progress = (done, total)

            sync(db.session, app, progress=progress)
            if not was_ready and state.engine is not None:
                logger.info(
                    "match index ready in this process: %d profiles, %s", len(state.engine), state.meta.get("embedder")
                )
        except Exception as exc:  # noqa: BLE001 - logged; the UI shows the status
            logger.exception("background index sync failed")
            with state.lock:
                if state.engine is None:
                    state.status, state.message = STATUS_FAILED, str(exc)
        finally:
            db.session.remove()
    if state.meta.get("vectors") == VECTORS_PENDING:
        if queue_kind(app) == QUEUE_THREAD:
            embed_job.run_embedding(app)  # already in a background thread: the lexical index serves meanwhile
        else:
            embed_job.queue_embedding(app)  # hours at large pools: the task worker runs it, not a web worker


def wait_for_background(app: Flask, timeout: float | None = None) -> None:
    """Wait for a running background build, sync or embedding job of this process (CLI and tests)."""
    state = state_of(app)
    for thread in (state.thread, state.embed_thread):
        if thread is not None:
            thread.join(timeout)


def engine_ready(app: Flask | None = None) -> bool:
    """This process has a match engine to rank with (else pages get the keyword fallback or nothing)."""
    return state_of(_app(app)).engine is not None


def request_engine(session: Session, app: Flask | None = None) -> tuple[Any, Watermark | None]:
    """(engine, the database's watermark as read now) for a request; the engine is synced when few rows changed.

    (None, None) while the engine is not ready (a background load or build is started). While its vectors are
    pending, the lexical engine is returned and the embedding job is started unless it runs (here or elsewhere).
    """
    app = _app(app)
    state = state_of(app)
    if state.engine is None:
        ensure_index_async(app)
        return None, None
    now = current_watermark(session)
    if not state.build_lock.acquire(blocking=False):  # a running sync/rebuild is never waited for
        return state.engine, now
    deferred = False
    try:
        deferred = (
            sync_locked(
                app, session, state, None, inline_change_limit(app, INLINE_SYNC_MAX), allow_rebuild=False, now=now
            ).reason
            == "deferred"
        )
    except Exception:  # noqa: BLE001 - serve the engine we have
        logger.exception("inline index sync failed")
    finally:
        state.build_lock.release()
    if deferred or hubness_stale(app, session, state):
        ensure_index_async(app)  # the background sync also measures the hubness again
    _keep_embedding(app, state)
    return state.engine, now


def _keep_embedding(app: Flask, state: EngineState) -> None:
    """While vectors are pending, make sure an embedding job runs (this process starts one when none does)."""
    if state.meta.get("vectors") != VECTORS_PENDING:
        return
    thread = state.embed_thread
    if thread is not None and thread.is_alive():
        return
    if state.thread is not None and state.thread.is_alive():
        return  # the background sync runs the job when it ends
    embed_job.queue_embedding(app)  # returns at once when the job is queued or another process holds it


def engine_for_request(session: Session, app: Flask | None = None):
    """The ready engine, synced when few rows changed; None (and a background build started) when not ready."""
    return request_engine(session, app)[0]


def preload(app: Flask) -> str:
    """Load the saved engine into this process now (a server worker before it takes requests), once.

    A saved index that is missing or does not fit is built in the background instead (other worker processes
    wait for that build through the folder lock and then load it); returns the engine status.
    """
    from webapp.extensions import db

    state = state_of(app)
    with app.app_context():
        try:
            if state.engine is None:
                with state.build_lock:
                    if state.engine is None:
                        engine, meta = load_shared(app, db.session)
                        install(state, engine, meta)
            engine_for_request(db.session, app)  # applies a few changed rows, or syncs in the background
            _warm_up(state)
        except IndexMismatchError as exc:
            logger.info("no usable saved match index (%s); building it in the background", exc)
            ensure_index_async(app)
        except Exception:  # noqa: BLE001 - the worker still serves (keyword fallback) and retries on demand
            logger.exception("could not preload the match index")
        finally:
            db.session.remove()
    return state.status


def _warm_up(state: EngineState) -> None:
    """One small search and scoring, so that lazy one-time set-ups (the tokenizer's dictionary, per-engine
    structures) happen before the first request rather than in it, with the engine lock held."""
    engine = state.engine
    if engine is None or not len(engine):
        return
    with state.lock:
        hits = engine.search(WARM_UP_QUERY, k=10)
        if hits:
            engine.query_scores([WARM_UP_QUERY], [int(hits[0].id)])


def model_line(app: Flask, session: Session | None = None) -> str:
    """The matching model as pages name it, with the embedding job's progress while vectors are pending."""
    info = active_embedder_info(app, session)
    line = info["model"]
    if info["vectors"] == VECTORS_PENDING:
        job = info.get("embedding") or {}
        done, total = (job.get("done"), job.get("total")) if job.get("total") else tuple(info["progress"])
        line += (
            f"（语义向量计算中 {done}/{total}，暂按关键词与词法匹配排序）"
            if total
            else "（语义向量待计算，暂按词法匹配排序）"
        )
    return line


def active_embedder_info(app: Flask, session: Session | None = None) -> dict:
    """What the UI and CLI show: embedder and model, dim, count, kind, vectors (and the embedding job's progress),
    watermark, status, and staleness."""
    state = state_of(app)
    meta = dict(state.meta)
    on_disk = False
    if not meta:
        try:
            meta = read_meta(index_folder(app) / META_FILE)
            on_disk = True
        except IndexMismatchError:
            meta = {}
    expected = expected_embedder_name(app)
    info = {
        "embedder": meta.get("embedder") or expected,
        "model": model_label(app),
        "configured_model": configured_model(app) or "(bundled multilingual-e5-small)",
        "vectors": meta.get("vectors"),
        "embedding": embed_job.job_progress(app, session) if session is not None else None,
        "dim": meta.get("dim"),
        "count": meta.get("count"),
        "kind": meta.get("kind"),
        "built_at": meta.get("built_at"),
        "synced_at": meta.get("synced_at"),
        "watermark": meta.get("watermark"),
        "learned_weights_id": meta.get("learned_weights_id"),
        "status": state.status if state.engine is not None or not on_disk else "saved",
        "message": state.message,
        "progress": list(state.progress),
        "folder": str(index_folder(app)),
        "stale": None,
    }
    if meta and meta.get("embedder") != expected:
        info["stale"] = True
    elif session is not None and meta.get("watermark"):
        info["stale"] = Watermark.from_value(meta["watermark"]) != current_watermark(session)
    elif session is not None:
        info["stale"] = True
    return info
