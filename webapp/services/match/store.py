"""The match engine of one app process: built from the database, saved under INDEX_DIR, kept in sync incrementally.

The database is the source of truth. A saved index carries a watermark of the data it holds
(max Enterprise.updated_at, enterprise count, max EnterpriseDeletion.id) and the database's random id; anything
that does not fit (another embedder, a damaged or missing file, another database) is rebuilt from scratch.

With a pretrained embedder the index is built lexical-first: it is saved and served with its vectors "pending", and
the embedding job (webapp.services.match.embed_job) attaches them later (`vectors_attached`). Profiles synced into an index
with vectors are encoded through the vector cache (webapp.services.match.embedding), outside the engine lock.
"""
from __future__ import annotations

import gc
import logging
import threading
import uuid
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from chains.enterprise_models import Enterprise, EnterpriseDeletion
from chains.feedback_models import MatchIndexState
from matching.vectors.meta import IndexMismatchError, check_meta, read_meta
from webapp.services.match.embedding import (
    KIND_BUILTIN,
    embedder_for,
    embedder_kind,
    encode_documents,
    expected_embedder_name,
    vectors_deferred,
)
from webapp.services.match.index_files import ENGINE_DIR, META_FILE, folder_lock, index_folder, save_engine
from webapp.services.match.labels import reapply_learning
from webapp.services.match.profiles import iter_documents

logger = logging.getLogger("chainmatch.matchsvc")

EXTENSION_KEY = "chainmatch.matchsvc"
DATABASE_ID_KEY = "database_id"
# A request applies at most this many changed firms itself; more are synced in the background meanwhile.
INLINE_SYNC_MAX = 200
SYNC_BATCH = 1000

STATUS_MISSING = "missing"
STATUS_BUILDING = "building"
STATUS_READY = "ready"
STATUS_FAILED = "failed"
VECTORS_READY = "ready"  # meta["vectors"]: the dense channel is in the saved index
VECTORS_PENDING = "pending"  # built lexical-first; the embedding job attaches the vectors

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Watermark:
    """What the index holds of the database: latest update, row count, last deletion tombstone."""

    updated_at: str | None
    count: int
    deletion_id: int

    def updated_at_value(self) -> datetime | None:
        return datetime.fromisoformat(self.updated_at) if self.updated_at else None

    def as_list(self) -> list:
        return [self.updated_at, self.count, self.deletion_id]

    @classmethod
    def from_value(cls, value: Any) -> "Watermark":
        if isinstance(value, dict):
            return cls(value.get("updated_at"), int(value.get("count", 0)), int(value.get("deletion_id", 0)))
        updated_at, count, deletion_id = value
        return cls(updated_at, int(count), int(deletion_id))


def current_watermark(session: Session) -> Watermark:
    """The watermark of the database as it is now."""
    # One round trip of three single-aggregate subqueries: the max comes from the updated_at index, the count from
    # the smallest index (as one aggregate query over the table they would read every row).
    latest, count, deletion = session.execute(select(
        select(func.max(Enterprise.updated_at)).scalar_subquery(),
        select(func.count()).select_from(Enterprise).scalar_subquery(),
        select(func.max(EnterpriseDeletion.id)).scalar_subquery(),
    )).one()
    if isinstance(latest, str):  # SQLite hands a subquery's datetime back as text
        latest = datetime.fromisoformat(latest)
    return Watermark(latest.isoformat() if latest else None, int(count or 0), int(deletion or 0))


@dataclass
class SyncResult:
    added: int = 0
    removed: int = 0
    rebuilt: bool = False
    reason: str = ""


@dataclass
class EngineState:
    """Per-process engine cache of one app."""

    engine: Any = None  # matching.engine.MatchEngine once loaded or built
    meta: dict = field(default_factory=dict)
    status: str = STATUS_MISSING
    message: str = ""
    progress: tuple[int, int] = (0, 0)
    lock: threading.RLock = field(default_factory=threading.RLock)  # short: searches, batch updates, swaps
    build_lock: threading.Lock = field(default_factory=threading.Lock)  # long: one sync/rebuild at a time
    thread: threading.Thread | None = None
    filter_cache: dict = field(default_factory=dict)  # resolved SQL filter id sets, keyed with the watermark
    generation: int = 0  # bumped whenever the engine is replaced or changed: part of every result cache key
    page_cache: "OrderedDict[tuple, Any]" = field(default_factory=OrderedDict)  # candidates pages (matchsvc)
    cache_lock: threading.Lock = field(default_factory=threading.Lock)  # guards page_cache and computing
    computing: dict = field(default_factory=dict)  # page key → threading.Event while one thread computes the page
    embed_thread: threading.Thread | None = None  # the embedding job's thread in this process (embed_job)
    embed_queued_at: float = float("-inf")  # monotonic time this process last made sure the embedding is queued
    saved_meta_stamp: int | None = None  # mtime of the saved metadata last looked at while vectors are pending


def state_of(app: Flask) -> EngineState:
    """The engine cache of `app` (created on first use)."""
    state = app.extensions.get(EXTENSION_KEY)
    if state is None:
        state = app.extensions.setdefault(EXTENSION_KEY, EngineState())
    return state


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
    (matching.fusion.pretrained_weights); the built-in LSA's is 0."""
    from matching.engine import MatchEngine
    from matching.fusion import FusionWeights, pretrained_weights

    deferred = vectors_deferred(app)
    learned_from_a_model = embedder_kind(app) != KIND_BUILTIN
    use_vector_service(app)
    return MatchEngine(embedder=None if deferred else embedder_for(app),
                       weights=pretrained_weights(texts) if learned_from_a_model else FusionWeights(),
                       exact_max=int(app.config.get("INDEX_EXACT_MAX", 200_000)),
                       vector_backend=configured_vector_backend(app))


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


def _engine_meta(app: Flask, engine, watermark: Watermark, db_id: str, learned_id: int | None) -> dict:
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
        "engine": _jsonable(info),
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
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
    return engine, _engine_meta(app, engine, watermark, db_id, learned_id)


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
        raise IndexMismatchError(f"saved engine uses vector backend {engine.vector_backend!r}, "
                                 f"configured {configured_vector_backend(app)!r}")
    return engine, meta


def install(state: EngineState, engine, meta: dict) -> None:
    with state.lock:
        state.engine, state.meta = engine, meta
        state.status, state.message = STATUS_READY, ""
        state.filter_cache.clear()
        changed(state)
    _freeze_long_lived()


def changed(state: EngineState) -> None:
    """The engine was replaced or changed: results cached for the previous one no longer apply."""
    state.generation += 1
    with state.cache_lock:
        state.page_cache.clear()


def _freeze_long_lived() -> None:
    """Move the objects alive now (the engine's token lists, documents, …: hundreds of thousands) out of the
    cyclic garbage collector's reach: each full collection would otherwise walk all of them, a pause of tens to
    hundreds of ms in whatever request triggers it. Frozen objects are still freed by reference counting; what
    was frozen before is unfrozen first, so that garbage cycles among older objects are still collected here."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def rebuild(app: Flask, session: Session, progress: Progress | None = None, reason: str = "") -> SyncResult:
    """Full rebuild from the database, saved and installed in the cache (searches go on meanwhile)."""
    state = state_of(app)
    with state.build_lock, folder_lock(app):
        return _rebuild(app, session, state, progress, reason)


def _rebuild(app: Flask, session: Session, state: EngineState, progress: Progress | None, reason: str) -> SyncResult:
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


# ----------------------------------------------------------------------------- incremental sync

def sync(session: Session, app: Flask | None = None, progress: Progress | None = None,
         max_changes: int | None = None) -> SyncResult:
    """Bring the cached engine up to date with the database; loads or (re)builds it when needed.

    With `max_changes`, gives up (returns None-like result with reason "deferred") when more rows changed.
    """
    from flask import current_app

    app = app or current_app._get_current_object()
    state = state_of(app)
    with state.build_lock:
        return sync_locked(app, session, state, progress, max_changes)


def sync_locked(app: Flask, session: Session, state: EngineState, progress: Progress | None,
                 max_changes: int | None, allow_rebuild: bool = True, now: Watermark | None = None) -> SyncResult:
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
                    return _rebuild(app, session, state, progress, reason=str(exc))
        install(state, engine, meta)
    if state.meta.get("vectors") == VECTORS_PENDING:
        _adopt_saved_vectors(app, session, state)
    if state.meta.get("embedder") != expected_embedder_name(app):
        if not allow_rebuild:
            return SyncResult(reason="deferred")
        with folder_lock(app):
            return _rebuild(app, session, state, progress, reason="embedder changed")
    return _apply_changes(app, session, state, max_changes, allow_rebuild, now)


def _apply_changes(app: Flask, session: Session, state: EngineState, max_changes: int | None,
                   allow_rebuild: bool = True, now: Watermark | None = None) -> SyncResult:
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
    deleted = list(session.scalars(select(EnterpriseDeletion.enterprise_id)
                                   .where(EnterpriseDeletion.id > saved.deletion_id)))
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
            return _rebuild(app, session, state, None,
                            reason=f"count mismatch after sync ({count} indexed, {now.count} in database)")
    meta = {**state.meta, **_engine_meta(app, engine, now, state.meta["database_id"],
                                          state.meta.get("learned_weights_id"))}
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
        same = all(saved.get(k) == meta.get(k) for k in ("watermark", "database_id", "embedder", "vectors", "count",
                                                          "learned_weights_id"))
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
        meta = {**state.meta, **_engine_meta(app, engine, Watermark.from_value(state.meta["watermark"]),
                                              state.meta["database_id"], state.meta.get("learned_weights_id"))}
        meta["built_at"] = state.meta.get("built_at", meta["built_at"])
        state.meta = meta
        changed(state)
    with folder_lock(app):
        save_engine(app, engine, meta)
    state.saved_meta_stamp = None
    logger.info("match index vectors attached and saved: %d profiles, %s", meta["count"], meta["embedder"])
