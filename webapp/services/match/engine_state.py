"""The per-process engine cache of one app: its state, the database watermark it is synced to, installing an engine."""

from __future__ import annotations

import gc
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from chains.enterprise_models import Enterprise, EnterpriseDeletion
from webapp.services.cache import LruCache

EXTENSION_KEY = "chainmatch.matchsvc"
FILTER_CACHE_SIZE = 16  # resolved filter id sets kept per process
PAGE_CACHE_SIZE = 256  # candidate pages kept per process (a page is ~20 candidates of plain data)

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
    latest, count, deletion = session.execute(
        select(
            select(func.max(Enterprise.updated_at)).scalar_subquery(),
            select(func.count()).select_from(Enterprise).scalar_subquery(),
            select(func.max(EnterpriseDeletion.id)).scalar_subquery(),
        )
    ).one()
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
    # resolved SQL filter id sets, keyed with the watermark
    filter_cache: LruCache = field(default_factory=lambda: LruCache(FILTER_CACHE_SIZE))
    generation: int = 0  # bumped whenever the engine is replaced or changed: part of every result cache key
    pages: LruCache = field(default_factory=lambda: LruCache(PAGE_CACHE_SIZE))  # candidates pages (candidates.py)
    embed_thread: threading.Thread | None = None  # the embedding job's thread in this process (embed_job)
    embed_queued_at: float = float("-inf")  # monotonic time this process last made sure the embedding is queued
    saved_meta_stamp: int | None = None  # mtime of the saved metadata last looked at while vectors are pending
    hub_basis: tuple | None = None  # what the engine's hubness was measured on (webapp.services.match.hubness)
    hub_checked_at: float = float("-inf")  # monotonic time a request last looked whether the hubness is stale


def state_of(app: Flask) -> EngineState:
    """The engine cache of `app` (created on first use)."""
    state = app.extensions.get(EXTENSION_KEY)
    if state is None:
        state = app.extensions.setdefault(EXTENSION_KEY, EngineState())
    return state


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
    state.pages.clear()


def _freeze_long_lived() -> None:
    """Move the objects alive now (the engine's token lists, documents, …: hundreds of thousands) out of the
    cyclic garbage collector's reach: each full collection would otherwise walk all of them, a pause of tens to
    hundreds of ms in whatever request triggers it. Frozen objects are still freed by reference counting; what
    was frozen before is unfrozen first, so that garbage cycles among older objects are still collected here."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
