"""The served engine's hubness correction (matching.engine.hubness), measured over the query texts of every current
link of every chain: the links the product matches firms against.

It is measured again, in the background sync, whenever what it was measured on changed: the links (a chain map
saved or imported), the engine (a rebuild, vectors attached) or the firms (the index's watermark). Until then the
engine ranks with the hubness it has (a firm added since has none). The measure is saved beside the index with what
it was measured on, so other processes serving the same index (web workers, the CLI) read it instead of measuring.
Pools larger than HUBNESS_MAX_DOCS are not corrected: measuring scores every firm against every link.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid

import numpy as np
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from chains.chain_models import Chain
from matching.engine.hubness import Hubness, bank_key
from webapp.services.match.engine_state import EngineState, changed
from webapp.services.match.index_files import index_folder
from webapp.services.match.linkcache import chain_views

logger = logging.getLogger("chainmatch.matchsvc")

HUBNESS_MAX_DOCS = 200_000  # larger pools are not corrected (measuring scores every firm against every link)
HUB_CHECK_SECONDS = 30.0  # how often a serving process looks whether its hubness is stale
HUBNESS_FILE = "hubness.npz"  # in the index folder: the last measure and its basis, for the other processes


def link_bank(session: Session, app: Flask) -> list[str]:
    """The query texts of every current link of every chain, chains by id and links in file order."""
    ids = list(session.scalars(select(Chain.id).order_by(Chain.id)))
    return [text for view in chain_views(session, ids, app).values() for text in view.queries.values()]


def _bank_and_basis(app: Flask, session: Session, state: EngineState) -> tuple[list[str], tuple]:
    """The link bank, and what a hubness measured on it depends on: the bank, the index build, its firms and vectors
    (the same in every process serving the same saved index, so one process's measure serves the others)."""
    engine = state.engine
    bank = link_bank(session, app) if len(engine) <= HUBNESS_MAX_DOCS else []
    basis = (
        bank_key(bank) if bank else "",
        str(state.meta.get("built_at") or ""),
        len(engine),
        str(state.meta.get("vectors") or ""),
        repr(state.meta.get("watermark")),
    )
    return bank, basis


def _saved(app: Flask, basis: tuple) -> Hubness | None:
    """The hubness another process saved beside the index for the same basis, if any."""
    path = index_folder(app) / HUBNESS_FILE
    try:
        with np.load(path, allow_pickle=False) as data:
            if json.loads(str(data["basis"])) != list(basis):
                return None
            return Hubness(str(data["key"]), data["ids"].astype(np.int64), data["values"].astype(np.float64))
    except (OSError, KeyError, ValueError):
        return None


def _save(app: Flask, basis: tuple, hubness: Hubness) -> None:
    path = index_folder(app) / HUBNESS_FILE
    staging = path.with_name(f"{path.stem}.{uuid.uuid4().hex[:8]}.tmp.npz")
    try:
        np.savez(staging, basis=json.dumps(list(basis)), key=hubness.key, ids=hubness.ids, values=hubness.values)
        os.replace(staging, path)
    except OSError as exc:  # the folder was swapped by a save meanwhile: the next sync measures again
        logger.info("hubness not saved (%s)", exc)
        staging.unlink(missing_ok=True)


def hubness_stale(app: Flask, session: Session, state: EngineState) -> bool:
    """Whether the served engine's hubness was measured on other links, engine or firms than now; looked at most
    once per HUB_CHECK_SECONDS per process (a request calls it: two small queries)."""
    now = time.monotonic()
    if state.engine is None or now - state.hub_checked_at < HUB_CHECK_SECONDS:
        return False
    state.hub_checked_at = now
    return _bank_and_basis(app, session, state)[1] != state.hub_basis


def refresh_hubness(app: Flask, session: Session, state: EngineState) -> bool:
    """Measure the engine's hubness over the current links unless it was measured on the same links, engine and
    firms; returns whether it changed. Scoring holds the engine lock per chunk of firms, so searches go on."""
    engine = state.engine
    if engine is None:
        return False
    bank, basis = _bank_and_basis(app, session, state)
    if basis == state.hub_basis:
        return False
    started = time.perf_counter()
    hubness = _saved(app, basis) if bank else None
    measured = bool(bank) and hubness is None
    if measured:
        hubness = engine.compute_hubness(bank, lock=state.lock)
        _save(app, basis, hubness)
    with state.lock:
        if state.engine is not engine:  # replaced meanwhile: the next sync measures the new one
            return False
        engine.set_hubness(hubness)
        state.hub_basis = basis
        changed(state)
    logger.info(
        "hubness over %d link queries for %d firms %s in %.1fs",
        len(bank),
        len(engine),
        "measured" if measured else "read",
        time.perf_counter() - started,
    )
    return True
