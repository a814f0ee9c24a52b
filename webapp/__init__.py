"""chainmatch web application: the Flask app factory."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine

from webapp import config as config_module
from webapp.extensions import csrf, db, htmx, limiter, login_manager, migrate

MIGRATIONS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "migrations")


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Create and configure the app: defaults < instance/config.py < CHAINMATCH_* env < test_config."""
    instance_path = (test_config or {}).get("INSTANCE_PATH") or os.environ.get("CHAINMATCH_INSTANCE_PATH") or None
    app = Flask(__name__, instance_path=instance_path, instance_relative_config=True)
    os.makedirs(app.instance_path, exist_ok=True)

    app.config.update(config_module.defaults())
    app.config.update(
        SQLALCHEMY_DATABASE_URI="sqlite:///" + os.path.join(app.instance_path, "chainmatch.sqlite3"),
        INDEX_DIR=os.path.join(app.instance_path, "indexes"),
        UPLOAD_DIR=os.path.join(app.instance_path, "uploads"),
        MODEL_DIR=os.path.join(app.instance_path, "models"),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        WTF_CSRF_TIME_LIMIT=None,
        JSON_AS_ASCII=False,
    )
    app.config.from_pyfile("config.py", silent=True)
    app.config.update(config_module.options_from_env())
    if test_config is not None:
        app.config.update(test_config)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = config_module.load_or_create_secret(app.instance_path)
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(minutes=int(app.config["SESSION_MINUTES"]))
    # A pooled connection is checked before use, so requests succeed at once after a database restart.
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {"pool_pre_ping": True})
    app.config["MAX_CONTENT_LENGTH"] = int(app.config["MAX_UPLOAD_MB"]) * 1024 * 1024
    app.config["RATELIMIT_STORAGE_URI"] = app.config.get("RATELIMIT_STORAGE_URI", "memory://")
    # The Limiter is process-global and keeps the last app's `enabled`; set it for every app explicitly.
    app.config.setdefault("RATELIMIT_ENABLED", True)
    for key in ("INDEX_DIR", "UPLOAD_DIR"):
        os.makedirs(app.config[key], exist_ok=True)
    _trust_proxies(app, int(app.config.get("TRUSTED_PROXY_HOPS") or 0))

    from webapp import logs, models  # noqa: F401  (models registers every table)

    logs.init_app(app)
    db.init_app(app)
    migrate.init_app(app, db, directory=MIGRATIONS_DIR, render_as_batch=True, compare_type=True)
    csrf.init_app(app)
    login_manager.init_app(app)
    htmx.init_app(app)
    limiter.init_app(app)

    from webapp import errors, security

    errors.init_app(app)
    security.init_app(app)
    _register_blueprints(app)
    _register_commands(app)
    return app


def _trust_proxies(app: Flask, hops: int) -> None:
    """Behind `hops` reverse proxies, take the client address and scheme from their forwarded headers (off at 0)."""
    if hops <= 0:
        return
    from werkzeug.middleware.proxy_fix import ProxyFix

    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]


def _register_blueprints(app: Flask) -> None:
    """The feature blueprints, listed here so that the app's parts are read in one place (tests/test_architecture.py
    checks that every feature package with a blueprint is listed)."""
    from webapp import (
        api,
        audit,
        auth,
        candidates,
        chainmaps,
        clusters,
        firms,
        imports,
        leads,
        main,
        reports,
        suppliers,
    )

    for feature in (api, audit, auth, candidates, chainmaps, clusters, firms, imports, leads, main, reports, suppliers):
        app.register_blueprint(feature.bp)


def _register_commands(app: Flask) -> None:
    """The `chainmatch` commands of webapp.cli.COMMAND_MODULES."""
    from webapp.cli import all_commands

    for command in all_commands():
        app.cli.add_command(command)


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record) -> None:  # pragma: no cover - trivial glue
    """WAL for concurrent readers during imports; enforce foreign keys."""
    import sqlite3

    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=15000")
        cursor.close()
