"""The match engine of one app process: built from the database, saved under INDEX_DIR, kept in sync incrementally.

The database is the source of truth. A saved index carries a watermark of the data it holds
(max Enterprise.updated_at, enterprise count, max EnterpriseDeletion.id) and the database's random id; anything
that does not fit (another embedder, a damaged or missing file, another database) is rebuilt from scratch.
"""
from __future__ import annotations

import fcntl
import gc
import hashlib
import logging
import re
import shutil
import threading
import uuid
from contextlib import contextmanager
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from chains.enterprise_models import Enterprise, EnterpriseDeletion
from chains.feedback_models import MatchIndexState
from matching.vectors.meta import IndexMismatchError, check_meta, read_meta, write_meta
from webapp.matchsvc.profiles import iter_documents

logger = logging.getLogger("chainmatch.matchsvc")

EXTENSION_KEY = "chainmatch.matchsvc"
META_FILE = "matchsvc.json"
ENGINE_DIR = "engine"
DATABASE_ID_KEY = "database_id"
# A request applies at most this many changed firms itself; more are synced in the background meanwhile.
INLINE_SYNC_MAX = 200
SYNC_BATCH = 1000

STATUS_MISSING = "missing"
STATUS_BUILDING = "building"
STATUS_READY = "ready"
STATUS_FAILED = "failed"

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


def state_of(app: Flask) -> EngineState:
    """The engine cache of `app` (created on first use)."""
    state = app.extensions.get(EXTENSION_KEY)
    if state is None:
        state = app.extensions.setdefault(EXTENSION_KEY, EngineState())
    return state


# ----------------------------------------------------------------------------- identity and files

def configured_model(app: Flask) -> str:
    return str(app.config.get("EMBEDDING_MODEL") or "").strip()


def embedder_options(app: Flask) -> dict:
    """Backend, thread count and ONNX cache folder for the configured sentence-transformers model."""
    return {"backend": str(app.config.get("EMBEDDING_BACKEND") or "auto"),
            "threads": int(app.config.get("EMBEDDING_THREADS") or 0),
            "cache_dir": Path(app.instance_path) / "onnx-cache"}


def expected_embedder_name(app: Flask) -> str:
    """Name of the configured embedder, without loading a model."""
    from matching.embedders import embedder_name_for

    return embedder_name_for(configured_model(app), embedder_options(app)["backend"])


def folder_name(embedder_name: str) -> str:
    """A file-system-safe folder name for an embedder name (readable part + short hash)."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "-", embedder_name).strip("-.")[-48:] or "embedder"
    digest = hashlib.sha1(embedder_name.encode("utf-8")).hexdigest()[:8]
    return f"{readable}-{digest}"


def index_folder(app: Flask, embedder_name: str | None = None) -> Path:
    """INDEX_DIR/<embedder-name>/ of the configured (or given) embedder."""
    return Path(app.config["INDEX_DIR"]) / folder_name(embedder_name or expected_embedder_name(app))


@contextmanager
def folder_lock(app: Flask, blocking: bool = True, shared: bool = False) -> Iterator[bool]:
    """An inter-process lock on the configured embedder's index folder (server workers, CLI).

    Exclusive while an index is rebuilt or saved, shared while one is loaded: worker processes load at the same
    time, never while another process swaps the folder, and two processes never build the same index at once.
    Yields whether it was taken (always True when blocking).
    """
    folder = index_folder(app)
    folder.parent.mkdir(parents=True, exist_ok=True)
    mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
    with open(folder.with_name(f".{folder.name}.lock"), "a+b") as fh:
        try:
            fcntl.flock(fh.fileno(), mode | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _load_shared(app: Flask, session: Session):
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

def _new_engine(app: Flask):
    from matching.embedders import make_embedder
    from matching.engine import MatchEngine

    from matching.fusion import PRETRAINED_DENSE_WEIGHT, FusionWeights

    model = configured_model(app)
    embedder = make_embedder(model, **embedder_options(app))
    # The built-in embedder does not help the fused ranking (Q's benchmark); a pretrained model gets a dense share.
    weights = FusionWeights(dense=PRETRAINED_DENSE_WEIGHT) if model else FusionWeights()
    return MatchEngine(embedder=embedder, weights=weights, exact_max=int(app.config.get("INDEX_EXACT_MAX", 200_000)),
                       vector_backend=configured_vector_backend(app))


def configured_vector_backend(app: Flask) -> str:
    return str(app.config.get("VECTOR_BACKEND") or "faiss")


def _apply_adopted_learning(session: Session, engine) -> int | None:
    """Re-learn on a rebuilt engine when a learned model had been adopted; the adopted row id, or None."""
    from webapp.matchsvc.learning import reapply_learning

    try:
        return reapply_learning(session, engine)
    except Exception:  # noqa: BLE001 - learning must never block serving with the default ranking
        logger.exception("could not re-apply learning after rebuild; using the default ranking")
        return None


def _engine_meta(engine, watermark: Watermark, db_id: str, learned_id: int | None) -> dict:
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
        "embedder": info.get("embedder"),
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


def save_engine(app: Flask, engine, meta: dict) -> Path:
    """Write engine + metadata into a fresh folder, then swap it in place of the old one."""
    target = index_folder(app, meta["embedder"])
    staging = target.with_name(target.name + f".tmp-{uuid.uuid4().hex[:8]}")
    engine.save(staging / ENGINE_DIR)
    write_meta(staging / META_FILE, meta)
    old = target.with_name(target.name + f".old-{uuid.uuid4().hex[:8]}")
    if target.exists():
        target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    return target


def build_engine(app: Flask, session: Session, progress: Progress | None = None):
    """Build a fresh engine over every enterprise; returns (engine, meta). Does not touch the cache."""
    db_id = database_id(session)
    watermark = current_watermark(session)  # taken first: rows changed while reading are caught by the next sync
    engine = _new_engine(app)
    docs = [doc for batch in iter_documents(session) for doc in batch]
    logger.info("building match index over %d enterprises with %s", len(docs), engine.info().get("embedder"))
    engine.build(docs, progress=progress)
    learned_id = _apply_adopted_learning(session, engine)
    return engine, _engine_meta(engine, watermark, db_id, learned_id)


def load_saved_engine(app: Flask, session: Session):
    """The saved engine and its metadata; IndexMismatchError when missing, damaged or from elsewhere."""
    from matching.engine import MatchEngine

    folder = index_folder(app)
    meta = read_meta(folder / META_FILE)
    check_meta(meta, {"embedder": expected_embedder_name(app), "database_id": database_id(session, create=False)})
    try:
        # Memory-mapped: the worker processes of `chainmatch serve` share the arrays through the page cache until a
        # sync rewrites a channel in RAM; save_engine swaps in a new folder, so mapped files are never overwritten.
        engine = MatchEngine.load(folder / ENGINE_DIR, mmap=True)
    except Exception as exc:  # noqa: BLE001 - whatever broke, the answer is a rebuild
        raise IndexMismatchError(f"saved engine unreadable: {exc}") from exc
    info = engine.info()
    if info.get("count") != meta.get("count") or info.get("embedder") != meta.get("embedder"):
        raise IndexMismatchError("saved engine does not match its metadata")
    if engine.vector_backend != configured_vector_backend(app):
        raise IndexMismatchError(f"saved engine uses vector backend {engine.vector_backend!r}, "
                                 f"configured {configured_vector_backend(app)!r}")
    return engine, meta


def _install(state: EngineState, engine, meta: dict) -> None:
    with state.lock:
        state.engine, state.meta = engine, meta
        state.status, state.message = STATUS_READY, ""
        state.filter_cache.clear()
        _changed(state)
    _freeze_long_lived()


def _changed(state: EngineState) -> None:
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
    _install(state, engine, meta)
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
        return _sync_locked(app, session, state, progress, max_changes)


def _sync_locked(app: Flask, session: Session, state: EngineState, progress: Progress | None,
                 max_changes: int | None, allow_rebuild: bool = True, now: Watermark | None = None) -> SyncResult:
    if state.engine is None and not allow_rebuild:
        return SyncResult(reason="deferred")
    if state.engine is None:
        # Another process (worker, CLI) building or saving this index holds the lock: wait, then load its result.
        try:
            engine, meta = _load_shared(app, session)
        except IndexMismatchError:
            with folder_lock(app):  # exclusive; look again: another process may have just built it
                try:
                    engine, meta = load_saved_engine(app, session)
                except IndexMismatchError as exc:
                    logger.info("match index not usable (%s); rebuilding", exc)
                    return _rebuild(app, session, state, progress, reason=str(exc))
        _install(state, engine, meta)
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
            _changed(state)
    added = 0
    # Small batches, each under the short lock, so searches interleave with a long sync.
    for batch in iter_documents(session, where=changed_filter, batch=SYNC_BATCH):
        with state.lock:
            engine.add(batch)
            _changed(state)
        added += len(batch)
    count = int(engine.info().get("count", -1))
    if count != now.count and not allow_rebuild:
        return SyncResult(added=added, removed=len(set(deleted)), reason="deferred")
    if count != now.count:
        # Rows vanished without a tombstone or appeared with an old timestamp: only a rebuild is trustworthy.
        with folder_lock(app):
            return _rebuild(app, session, state, None,
                            reason=f"count mismatch after sync ({count} indexed, {now.count} in database)")
    meta = {**state.meta, **_engine_meta(engine, now, state.meta["database_id"], state.meta.get("learned_weights_id"))}
    meta["built_at"] = state.meta.get("built_at", meta["built_at"])
    _save_synced(app, engine, meta)
    with state.lock:
        state.meta = meta
        state.filter_cache.clear()
        _changed(state)
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
        same = all(saved.get(k) == meta.get(k) for k in ("watermark", "database_id", "embedder", "count",
                                                          "learned_weights_id"))
        if not same:
            save_engine(app, engine, meta)


# ----------------------------------------------------------------------------- background and status

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
    with app.app_context():
        try:
            def progress(done: int, total: int) -> None:
                state.progress = (done, total)

            sync(db.session, app, progress=progress)
        except Exception as exc:  # noqa: BLE001 - logged; the UI shows the status
            logger.exception("background index sync failed")
            with state.lock:
                if state.engine is None:
                    state.status, state.message = STATUS_FAILED, str(exc)
        finally:
            db.session.remove()


def wait_for_background(app: Flask, timeout: float | None = None) -> None:
    """Wait for a running background build (CLI and tests)."""
    thread = state_of(app).thread
    if thread is not None:
        thread.join(timeout)


def request_engine(session: Session, app: Flask | None = None) -> tuple[Any, Watermark | None]:
    """(engine, the database's watermark as read now) for a request; the engine is synced when few rows changed.

    (None, None) while the engine is not ready (a background load or build is started).
    """
    from flask import current_app

    app = app or current_app._get_current_object()
    state = state_of(app)
    if state.engine is None:
        ensure_index_async(app)
        return None, None
    now = current_watermark(session)
    if not state.build_lock.acquire(blocking=False):  # a running sync/rebuild is never waited for
        return state.engine, now
    deferred = False
    try:
        deferred = _sync_locked(app, session, state, None, INLINE_SYNC_MAX, allow_rebuild=False,
                                now=now).reason == "deferred"
    except Exception:  # noqa: BLE001 - serve the engine we have
        logger.exception("inline index sync failed")
    finally:
        state.build_lock.release()
    if deferred:
        ensure_index_async(app)
    return state.engine, now


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
                        engine, meta = _load_shared(app, db.session)
                        _install(state, engine, meta)
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


WARM_UP_QUERY = "产业链 配套 企业"


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


def active_embedder_info(app: Flask, session: Session | None = None) -> dict:
    """What the UI and CLI show: embedder name, dim, count, kind, watermark, status, and staleness."""
    state = state_of(app)
    meta = dict(state.meta)
    on_disk = False
    if not meta:
        try:
            meta = read_meta(index_folder(app) / META_FILE)
            on_disk = True
        except IndexMismatchError:
            meta = {}
    info = {
        "embedder": meta.get("embedder") or expected_embedder_name(app),
        "configured_model": configured_model(app) or "(builtin)",
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
    if meta and meta.get("embedder") != expected_embedder_name(app):
        info["stale"] = True
    elif session is not None and meta.get("watermark"):
        info["stale"] = Watermark.from_value(meta["watermark"]) != current_watermark(session)
    elif session is not None:
        info["stale"] = True
    return info
