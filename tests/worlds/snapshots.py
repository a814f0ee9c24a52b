"""Seeded worlds built once per test session (per xdist worker), backend and app config, and copied into each test.

A world builder (`build(app) -> ids`) runs once into a template app of its own: its rows and everything it writes
in the instance folder (the saved match index under INDEX_DIR, uploads) are the snapshot. Each test that asks for the
world gets a copy in its own database and instance folder, so a test that writes changes nothing another test sees:

- SQLite: the snapshot's database file (a clean copy made with SQLite's backup API, no WAL left over) is copied over
  the test's database file.
- PostgreSQL: the template schema's non-empty tables are copied into the test's schema (`INSERT … SELECT` in
  dependency order, a foreign key to a table copied later filled in afterwards) and every sequence is set where the
  template's stood, so new rows get fresh ids exactly as they would have in the built world.
- The template's instance folder is copied into the test's instance folder.

A saved index stays valid in the copy as the product checks it: its metadata names the embedder, the database's
random id (a row of match_index_state, copied with the others) and the watermark of the firms (their count,
latest updated_at and last deletion tombstone, copied as they are); no path of the template is recorded in it.
Per-process caches (the engine, candidate pages, chain views, rendered fragments) live in `app.extensions` of each
test's app, so copies never share them. Builders must not write data that depends on the app's SECRET_KEY (each
test's app has its own), e.g. signed tokens.
"""

from __future__ import annotations

import copy
import shutil
import sqlite3
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from flask import Flask
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import Engine

from webapp.extensions import db
from webapp.services.match import engine_state, sync, wait_for_background

Build = Callable[[Flask], Any]
MakeApp = Callable[..., Flask]


@dataclass
class Snapshot:
    """One built world: where its rows and instance folder are kept, and what its builder returned."""

    backend: str
    instance: Path
    result: Any
    sqlite_file: Path | None = None
    schema: str | None = None
    tables: list[str] = field(default_factory=list)  # PostgreSQL: the non-empty tables, in dependency order
    sequences: dict[str, int] = field(default_factory=dict)  # PostgreSQL: sequence name → last value handed out


def backend_of(app: Flask) -> str:
    return "sqlite" if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite") else "postgresql"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class WorldSnapshots:
    """The session's cache of built worlds; `restore` copies one into a test's app (building it on first use)."""

    def __init__(self, root: Path, make_app: MakeApp, pg_url: str, schema_url: Callable[[str], str]) -> None:
        self.root = root
        self._make_app = make_app
        self._pg_url = pg_url
        self._schema_url = schema_url
        self._snapshots: dict[tuple, Snapshot] = {}
        self._schemas: list[str] = []  # template schemas made, dropped by close()
        self._admin: Engine | None = None

    # ------------------------------------------------------------------------- public

    def restore(self, app: Flask, build: Build, overrides: dict | None = None) -> Any:
        """Give `app` (fresh, tables created, nothing written yet) a copy of `build`'s world; returns a copy of what
        `build` returned. `overrides` are the app's config overrides: a world built under other config (another
        embedder or vector backend) is another snapshot."""
        overrides = dict(overrides or {})
        backend = backend_of(app)
        key = (build.__module__, build.__qualname__, backend, repr(sorted(overrides.items())))
        snapshot = self._snapshots.get(key)
        if snapshot is None:
            snapshot = self._snapshots[key] = self._build(build, backend, overrides)
        if backend == "sqlite":
            self._copy_sqlite(app, snapshot)
        else:
            self._copy_postgres(app, snapshot)
        instance = Path(app.config["INSTANCE_PATH"])
        shutil.copytree(snapshot.instance, instance, dirs_exist_ok=True)
        return copy.deepcopy(snapshot.result)

    def close(self) -> None:
        """Drop the template schemas (the files go with the session's temporary folders)."""
        if self._admin is not None:
            with self._admin.connect() as conn:
                for schema in self._schemas:
                    conn.execute(text(f"DROP SCHEMA IF EXISTS {_quote(schema)} CASCADE"))
            self._admin.dispose()
        self._schemas.clear()
        self._snapshots.clear()

    # ------------------------------------------------------------------------- building

    def _admin_engine(self) -> Engine:
        if self._admin is None:
            self._admin = create_engine(self._pg_url, isolation_level="AUTOCOMMIT")
        return self._admin

    def _build(self, build: Build, backend: str, overrides: dict) -> Snapshot:
        folder = Path(tempfile.mkdtemp(prefix="world-", dir=self.root))
        schema = None
        if backend == "sqlite":
            url = f"sqlite:///{folder / 'template.sqlite3'}"
        else:
            schema = f"w_{uuid.uuid4().hex[:12]}"
            self._schemas.append(schema)
            with self._admin_engine().connect() as conn:
                conn.execute(text(f"CREATE SCHEMA {_quote(schema)}"))
            url = self._schema_url(schema)
        template = self._make_app(url, folder, **overrides)
        result = build(template)
        wait_for_background(template)  # background work the builder started (a sync, an embedding job) ends first
        snapshot = Snapshot(backend=backend, instance=folder / "instance", result=result, schema=schema)
        with template.app_context():
            db.session.remove()
            if backend == "postgresql":
                self._describe_postgres(snapshot)
            db.engine.dispose()
        template.extensions.pop(engine_state.EXTENSION_KEY, None)  # its engine is saved; the copies load it
        if backend == "sqlite":
            snapshot.sqlite_file = folder / "world.sqlite3"
            self._sqlite_backup(folder / "template.sqlite3", snapshot.sqlite_file)
        snapshot.instance.mkdir(parents=True, exist_ok=True)
        return snapshot

    @staticmethod
    def _sqlite_backup(source: Path, target: Path) -> None:
        """A self-contained copy of a SQLite database (whatever is still in its WAL included)."""
        src, dst = sqlite3.connect(source), sqlite3.connect(target)
        try:
            src.backup(dst)
        finally:
            src.close()
            dst.close()

    def _describe_postgres(self, snapshot: Snapshot) -> None:
        """Record the template's non-empty tables and its sequences' positions."""
        with db.engine.connect() as conn:
            snapshot.tables = [
                table.name
                for table in db.metadata.sorted_tables
                if conn.execute(select(func.count()).select_from(table)).scalar()
            ]
            rows = conn.execute(
                text("SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = :schema"),
                {"schema": snapshot.schema},
            )
            snapshot.sequences = {name: int(value) for name, value in rows if value is not None}

    # ------------------------------------------------------------------------- copying

    @staticmethod
    def _copy_sqlite(app: Flask, snapshot: Snapshot) -> None:
        target = Path(app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///"))
        with app.app_context():  # no connection of the app may hold the file being replaced
            db.session.remove()
            db.engine.dispose()
        for leftover in (target.with_name(target.name + "-wal"), target.with_name(target.name + "-shm")):
            leftover.unlink(missing_ok=True)
        shutil.copyfile(snapshot.sqlite_file, target)

    def _copy_postgres(self, app: Flask, snapshot: Snapshot) -> None:
        target = app.config["SQLALCHEMY_DATABASE_URI"].rsplit("search_path%3D", 1)[1]
        with self._admin_engine().connect() as conn:
            conn.exec_driver_sql(copy_rows_script(snapshot, target))


def copy_rows_script(snapshot: Snapshot, target: str) -> str:
    """SQL that copies the snapshot schema's rows into the `target` schema (same tables, empty) and sets its
    sequences, in one transaction."""
    order = {name: i for i, name in enumerate(snapshot.tables)}
    src, dst = _quote(snapshot.schema), _quote(target)
    inserts, late_updates = [], []
    for name in snapshot.tables:
        table = db.metadata.tables[name]
        # A foreign key to a table copied later (chains.current_version_id → chain_versions) is a cycle: the column
        # is copied as NULL first and filled in once every table holds its rows.
        late = {
            fk.parent.name
            for fk in table.foreign_keys
            if fk.column.table.name != name and order.get(fk.column.table.name, -1) > order[name]
        }
        columns = [c.name for c in table.columns if c.computed is None]
        values = ", ".join("NULL" if c in late else _quote(c) for c in columns)
        names = ", ".join(_quote(c) for c in columns)
        inserts.append(f"INSERT INTO {dst}.{_quote(name)} ({names}) SELECT {values} FROM {src}.{_quote(name)}")
        if late:
            keys = [c.name for c in table.primary_key.columns]
            sets = ", ".join(f"{_quote(c)} = o.{_quote(c)}" for c in sorted(late))
            match = " AND ".join(f"n.{_quote(k)} = o.{_quote(k)}" for k in keys)
            late_updates.append(
                f"UPDATE {dst}.{_quote(name)} AS n SET {sets} FROM {src}.{_quote(name)} AS o WHERE {match}"
            )
    sequences = [f"SELECT setval('{dst}.{_quote(seq)}', {value}, true)" for seq, value in snapshot.sequences.items()]
    return ";\n".join(["BEGIN", *inserts, *late_updates, *sequences, "COMMIT"]) + ";"


def restore_indexed(app: Flask, world_copy: Callable[[Build], Any], build: Build) -> Any:
    """A copy of `build`'s world (one that saves a match index) in `app`, its saved index loaded as a restarted
    process loads it; fails if the copy's index had to be rebuilt (its metadata must fit the copy)."""
    ids = world_copy(build)
    with app.app_context():
        result = sync(db.session, app)
    assert not result.rebuilt, result.reason
    return ids
