"""Building, loading and rebuilding the engine: from the database, from the saved index, under the folder lock."""

from __future__ import annotations

import logging
import uuid
from dataclasses import asdict
from datetime import datetime, timezone
from typing import Any

from flask import Flask
from sqlalchemy.orm import Session

from chains.feedback_models import MatchIndexState
from matching.vectors.meta import IndexMismatchError, check_meta, read_meta
from webapp.services.match.embedding import (
    KIND_BUILTIN,
    embedder_for,
    embedder_kind,
    expected_embedder_name,
    vectors_deferred,
)
from webapp.services.match.engine_state import (
    STATUS_BUILDING,
    STATUS_FAILED,
    VECTORS_PENDING,
    VECTORS_READY,
    EngineState,
    Progress,
    SyncResult,
    Watermark,
    current_watermark,
    install,
    state_of,
)
from webapp.services.match.index_files import ENGINE_DIR, META_FILE, folder_lock, index_folder, save_engine
from webapp.services.match.labels import reapply_learning
from webapp.services.match.profiles import iter_documents

logger = logging.getLogger("chainmatch.matchsvc")

DATABASE_ID_KEY = "database_id"


# ----------------------------------------------------------------------------- identity and files


def load_shared(app: Flask, session: Session):
    """load_saved_engine under the shared folder lock."""
    with folder_lock(app, shared=True):
        return load_saved_engine(app, session)


def database_id(session: Session, create: bool = True) -> str | None:
    """A random id stored in the database once, telling this database apart from others sharing INDEX_DIR."""
    row = session.get(MatchIndexState, DATABASE_ID_KEY)
    if row is None and create:
        row = MatchIndexState(key=DATABASE_ID_KEY, value=uuid.uuid4().hex)
        session.add(row)
        session.commit()
    return row.value if row is not None else None


# ----------------------------------------------------------------------------- build / load / save


def _new_engine(app: Flask, texts: list[str]):
    """An empty engine for the configured embedder. A transformer joins later (embed_job). The dense weight of a
    pretrained model or a static embedder trained from one follows how much the pool's profiles say
    (matching.fusion.pool_weights); the built-in LSA's is 0. The name channel's follows the same lengths."""
    from matching.engine import MatchEngine
    from matching.fusion import pool_weights

    deferred = vectors_deferred(app)
    learned_from_a_model = embedder_kind(app) != KIND_BUILTIN
    use_vector_service(app)
    return MatchEngine(
        embedder=None if deferred else embedder_for(app),
        weights=pool_weights(texts, pretrained=learned_from_a_model),
        exact_max=int(app.config.get("INDEX_EXACT_MAX", 200_000)),
        vector_backend=configured_vector_backend(app),
    )


def configured_vector_backend(app: Flask) -> str:
    return str(app.config.get("VECTOR_BACKEND") or "faiss")


def stores_fields(app: Flask) -> bool:
    """Whether the configured vector backend stores filter fields: documents then carry them (a moved firm's are
    rewritten by the next sync, as it is re-added)."""
    from matching.vectors import backend_stores_fields

    return backend_stores_fields(configured_vector_backend(app))


def use_vector_service(app: Flask) -> None:
    """Point the milvus backend at the configured server (CHAINMATCH_VECTOR_URI; empty: embedded milvus-lite)."""
    from matching.vectors import set_server_uri

    set_server_uri(str(app.config.get("VECTOR_URI") or "") or None)


def _apply_adopted_learning(session: Session, engine) -> int | None:
    """Re-learn on a rebuilt engine when a learned model had been adopted; the adopted row id, or None."""
    try:
        return reapply_learning(session, engine)
    except Exception:  # noqa: BLE001 - learning must never block serving with the default ranking
        logger.exception("could not re-apply learning after rebuild; using the default ranking")
        return None


def engine_meta(app: Flask, engine, watermark: Watermark, db_id: str, learned_id: int | None) -> dict:
    from matching.vectors import choose_kind

    info = dict(engine.info())
    count = int(info.get("count", 0))
    built = info.get("built_at")
    if isinstance(built, (int, float)) and built:
        built = datetime.fromtimestamp(built, timezone.utc).isoformat(timespec="seconds")
    kind = info.get("kind")
    if not kind:
        kind = choose_kind(count, int(getattr(engine, "exact_max", 200_000))) if info.get("dim") else "lexical"
    return {
        # The configured embedder names the index even while its vectors are pending (the engine has none yet).
        "embedder": info.get("embedder") or expected_embedder_name(app),
        "vectors": VECTORS_READY if info.get("embedder") else VECTORS_PENDING,
        "dim": info.get("dim"),
        "count": count,
        "kind": kind,
        "built_at": built or datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "synced_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "watermark": asdict(watermark),
        "database_id": db_id,
        "learned_weights_id": learned_id,
        "engine": jsonable(info),
    }


def jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def build_engine(app: Flask, session: Session, progress: Progress | None = None):
    """Build a fresh engine over every enterprise; returns (engine, meta). Does not touch the cache."""
    db_id = database_id(session)
    watermark = current_watermark(session)  # taken first: rows changed while reading are caught by the next sync
    docs = [doc for batch in iter_documents(session, with_fields=stores_fields(app)) for doc in batch]
    engine = _new_engine(app, [d.text for d in docs])
    logger.info("building match index over %d enterprises for %s", len(docs), expected_embedder_name(app))
    engine.build(docs, progress=progress)
    learned_id = _apply_adopted_learning(session, engine)
    return engine, engine_meta(app, engine, watermark, db_id, learned_id)


def load_saved_engine(app: Flask, session: Session):
    """The saved engine and its metadata; IndexMismatchError when missing, damaged or from elsewhere."""
    from matching.engine import MatchEngine

    folder = index_folder(app)
    meta = read_meta(folder / META_FILE)
    check_meta(meta, {"embedder": expected_embedder_name(app), "database_id": database_id(session, create=False)})
    use_vector_service(app)
    try:
        # Memory-mapped: the worker processes of `chainmatch serve` share the arrays through the page cache until a
        # sync rewrites a channel in RAM; save_engine swaps in a new folder, so mapped files are never overwritten.
        engine = MatchEngine.load(folder / ENGINE_DIR, mmap=True)
    except Exception as exc:  # noqa: BLE001 - whatever broke, the answer is a rebuild
        raise IndexMismatchError(f"saved engine unreadable: {exc}") from exc
    info = engine.info()
    embedder = info.get("embedder") or (meta.get("embedder") if meta.get("vectors") == VECTORS_PENDING else None)
    if info.get("count") != meta.get("count") or embedder != meta.get("embedder"):
        raise IndexMismatchError("saved engine does not match its metadata")
    if engine.vector_backend != configured_vector_backend(app):
        raise IndexMismatchError(
            f"saved engine uses vector backend {engine.vector_backend!r}, configured {configured_vector_backend(app)!r}"
        )
    engine.warm_up_in_background()  # the first searches after a restart would read the mapped files page by page
    return engine, meta


def rebuild(app: Flask, session: Session, progress: Progress | None = None, reason: str = "") -> SyncResult:
    """Full rebuild from the database, saved and installed in the cache (searches go on meanwhile)."""
    state = state_of(app)
    with state.build_lock, folder_lock(app):
        return rebuild_locked(app, session, state, progress, reason)


def rebuild_locked(
    app: Flask, session: Session, state: EngineState, progress: Progress | None, reason: str
) -> SyncResult:
    with state.lock:
        state.status = STATUS_BUILDING if state.engine is None else state.status
    try:
        engine, meta = build_engine(app, session, progress)
        save_engine(app, engine, meta)
    except Exception as exc:
        with state.lock:
            if state.engine is None:
                state.status, state.message = STATUS_FAILED, str(exc)
        raise
    install(state, engine, meta)
    logger.info("match index rebuilt (%s): %d enterprises", reason or "requested", meta["count"])
    return SyncResult(added=meta["count"], rebuilt=True, reason=reason)
