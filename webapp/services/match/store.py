"""Keeping the engine cache in sync with the database incrementally, and vectors attached after the build.

The database is the source of truth. A saved index carries a watermark of the data it holds
(max Enterprise.updated_at, enterprise count, max EnterpriseDeletion.id) and the database's random id; anything
that does not fit (another embedder, a damaged or missing file, another database) is rebuilt from scratch
(webapp.services.match.engine_build; the cache itself: webapp.services.match.engine_state).

With a pretrained embedder the index is built lexical-first: it is saved and served with its vectors "pending", and
the embedding job (webapp.services.match.embed_job) attaches them later (`vectors_attached`). Profiles synced into an index
with vectors are encoded through the vector cache (webapp.services.match.embedding), outside the engine lock.

Callers also reach the engine cache's `state_of`, `EngineState` and `VECTORS_*` here (`store.state_of`).
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from chains.enterprise_models import Enterprise, EnterpriseDeletion
from matching.vectors.meta import IndexMismatchError, read_meta
from webapp.services.match.embedding import encode_documents, expected_embedder_name
from webapp.services.match.engine_build import (
    engine_meta,
    load_saved_engine,
    load_shared,
    rebuild_locked,
    stores_fields,
)
from webapp.services.match.engine_state import (
    VECTORS_PENDING,
    VECTORS_READY,
    EngineState,
    Progress,
    SyncResult,
    Watermark,
    changed,
    current_watermark,
    install,
    state_of,
)
from webapp.services.match.hubness import refresh_hubness
from webapp.services.match.index_files import META_FILE, folder_lock, index_folder, save_engine
from webapp.services.match.profiles import iter_documents

logger = logging.getLogger("chainmatch.matchsvc")

# A request applies at most this many changed firms itself; more are synced in the background meanwhile.
INLINE_SYNC_MAX = 200
SYNC_BATCH = 1000


# ----------------------------------------------------------------------------- incremental sync


def sync(
    session: Session, app: Flask | None = None, progress: Progress | None = None, max_changes: int | None = None
) -> SyncResult:
    """Bring the cached engine up to date with the database; loads or (re)builds it when needed.

    With `max_changes`, gives up (returns None-like result with reason "deferred") when more rows changed.
    """
    from flask import current_app

    app = app or current_app._get_current_object()
    state = state_of(app)
    with state.build_lock:
        result = sync_locked(app, session, state, progress, max_changes)
        if result.reason != "deferred":
            refresh_hubness(app, session, state)
        return result


def sync_locked(
    app: Flask,
    session: Session,
    state: EngineState,
    progress: Progress | None,
    max_changes: int | None,
    allow_rebuild: bool = True,
    now: Watermark | None = None,
) -> SyncResult:
    if state.engine is None and not allow_rebuild:
        return SyncResult(reason="deferred")
    if state.engine is None:
        # Another process (worker, CLI) building or saving this index holds the lock: wait, then load its result.
        try:
            engine, meta = load_shared(app, session)
        except IndexMismatchError:
            with folder_lock(app):  # exclusive; look again: another process may have just built it
                try:
                    engine, meta = load_saved_engine(app, session)
                except IndexMismatchError as exc:
                    logger.info("match index not usable (%s); rebuilding", exc)
                    return rebuild_locked(app, session, state, progress, reason=str(exc))
        install(state, engine, meta)
    if state.meta.get("vectors") == VECTORS_PENDING:
        _adopt_saved_vectors(app, session, state)
    if state.meta.get("embedder") != expected_embedder_name(app):
        if not allow_rebuild:
            return SyncResult(reason="deferred")
        with folder_lock(app):
            return rebuild_locked(app, session, state, progress, reason="embedder changed")
    return _apply_changes(app, session, state, max_changes, allow_rebuild, now)


def _apply_changes(
    app: Flask,
    session: Session,
    state: EngineState,
    max_changes: int | None,
    allow_rebuild: bool = True,
    now: Watermark | None = None,
) -> SyncResult:
    saved = Watermark.from_value(state.meta["watermark"])
    now = now or current_watermark(session)
    if now == saved:
        return SyncResult()
    since = saved.updated_at_value()
    changed_filter = Enterprise.updated_at >= since if since is not None else None
    if max_changes is not None:
        stmt = select(func.count(Enterprise.id))
        if changed_filter is not None:
            stmt = stmt.where(changed_filter)
        if (session.scalar(stmt) or 0) > max_changes:
            return SyncResult(reason="deferred")
    engine = state.engine
    deleted = list(
        session.scalars(select(EnterpriseDeletion.enterprise_id).where(EnterpriseDeletion.id > saved.deletion_id))
    )
    # Removals first: SQLite may hand a deleted id to a new row, which is then re-added below.
    if deleted:
        with state.lock:
            engine.remove(sorted(set(deleted)))
            changed(state)
    added = 0
    embedder = engine.embedder  # None while the vectors are pending: the lexical channels only
    # Small batches, each under the short lock, so searches interleave with a long sync; a transformer encodes a
    # batch (through the vector cache) before the lock is taken.
    for batch in iter_documents(session, where=changed_filter, batch=SYNC_BATCH, with_fields=stores_fields(app)):
        vectors = None
        if embedder is not None and not embedder.cheap_to_encode:
            vectors = encode_documents(app, embedder, [d.text for d in batch])
        with state.lock:
            engine.add(batch, vectors=vectors)
            changed(state)
        added += len(batch)
    count = int(engine.info().get("count", -1))
    if count != now.count and not allow_rebuild:
        return SyncResult(added=added, removed=len(set(deleted)), reason="deferred")
    if count != now.count:
        # Rows vanished without a tombstone or appeared with an old timestamp: only a rebuild is trustworthy.
        with folder_lock(app):
            return rebuild_locked(
                app,
                session,
                state,
                None,
                reason=f"count mismatch after sync ({count} indexed, {now.count} in database)",
            )
    meta = {
        **state.meta,
        **engine_meta(app, engine, now, state.meta["database_id"], state.meta.get("learned_weights_id")),
    }
    meta["built_at"] = state.meta.get("built_at", meta["built_at"])
    _save_synced(app, engine, meta)
    with state.lock:
        state.meta = meta
        state.filter_cache.clear()
        changed(state)
    logger.info("match index synced: %d updated/inserted, %d removed", added, len(set(deleted)))
    return SyncResult(added=added, removed=len(set(deleted)))


def _save_synced(app: Flask, engine, meta: dict) -> None:
    """Save an incrementally synced engine, unless the saved one already holds the same data (another worker
    process saved it) or another process is saving right now (the next sync saves; a saved index that is behind
    is brought up to date by whoever loads it)."""
    with folder_lock(app, blocking=False) as locked:
        if not locked:
            logger.info("match index synced; not saved: another process is saving it")
            return
        try:
            saved = read_meta(index_folder(app) / META_FILE)
        except IndexMismatchError:
            saved = {}
        same = all(
            saved.get(k) == meta.get(k)
            for k in ("watermark", "database_id", "embedder", "vectors", "count", "learned_weights_id")
        )
        if not same:
            save_engine(app, engine, meta)


# ----------------------------------------------------------------------------- vectors attached after the build


def _adopt_saved_vectors(app: Flask, session: Session, state: EngineState) -> bool:
    """Load the saved index when another process attached its vectors while this one serves it lexical-only.

    Looked up only when the metadata file changed (one stat per call)."""
    path = index_folder(app) / META_FILE
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        return False
    if stamp == state.saved_meta_stamp:
        return False
    state.saved_meta_stamp = stamp
    try:
        saved = read_meta(path)
    except IndexMismatchError:
        return False
    if saved.get("vectors") != VECTORS_READY or saved.get("database_id") != state.meta.get("database_id"):
        return False
    try:
        engine, meta = load_shared(app, session)
    except IndexMismatchError as exc:
        logger.info("saved index with vectors not loaded (%s)", exc)
        return False
    install(state, engine, meta)
    logger.info("loaded the saved match index with its vectors (%s)", meta.get("embedder"))
    return True


def pool_snapshot(state: EngineState) -> tuple[Any, list[str]]:
    """(document ids in pool row order, their profile texts) of the installed engine."""
    with state.lock:
        engine = state.engine
        ids = engine.row_ids.copy()
        return ids, [engine.document(int(i)).text for i in ids]


def vectors_attached(app: Flask, state: EngineState) -> None:
    """The engine's vectors were attached (embed_job): record it, drop cached results and save the index."""
    with state.lock:
        engine = state.engine
        meta = {
            **state.meta,
            **engine_meta(
                app,
                engine,
                Watermark.from_value(state.meta["watermark"]),
                state.meta["database_id"],
                state.meta.get("learned_weights_id"),
            ),
        }
        meta["built_at"] = state.meta.get("built_at", meta["built_at"])
        state.meta = meta
        changed(state)
    with folder_lock(app):
        save_engine(app, engine, meta)
    state.saved_meta_stamp = None
    logger.info("match index vectors attached and saved: %d profiles, %s", meta["count"], meta["embedder"])
