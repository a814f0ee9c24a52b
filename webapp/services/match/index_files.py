"""Where a saved match index lives and how it is written: one folder per embedder under INDEX_DIR, swapped in whole.

`INDEX_DIR/<folder name of the embedder>/` holds `engine/` (matching.engine's files) and `matchsvc.json` (the
metadata: embedder, count, watermark, database id, vectors ready or pending). A save writes a fresh folder beside it
and renames it into place, so a reader never sees half an index; `folder_lock` keeps two processes from building or
saving the same index at once, and readers from loading while one is swapped.
"""

from __future__ import annotations

import fcntl
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from flask import Flask

from matching.embedders import folder_name
from matching.vectors.meta import write_meta
from webapp.services.match.embedding import expected_embedder_name

META_FILE = "matchsvc.json"
ENGINE_DIR = "engine"


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
