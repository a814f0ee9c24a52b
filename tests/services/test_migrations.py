"""The Alembic migrations build the same schema as the models, on every backend."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import upgrade

from chains.db import Base
from tests.conftest import make_app  # noqa: F401
from webapp import create_app
from webapp.extensions import db


def test_migrations_match_models(database_url, tmp_path):
    app = create_app(
        {"SQLALCHEMY_DATABASE_URI": database_url, "INSTANCE_PATH": str(tmp_path / "inst"), "TESTING": True}
    )
    with app.app_context():
        upgrade()
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, Base.metadata)
        db.engine.dispose()
    assert diff == [], f"models and migrations differ: {diff}"


def test_migrations_downgrade_to_empty_and_back(database_url, tmp_path):
    from flask_migrate import downgrade
    from sqlalchemy import inspect

    app = create_app(
        {"SQLALCHEMY_DATABASE_URI": database_url, "INSTANCE_PATH": str(tmp_path / "inst"), "TESTING": True}
    )
    with app.app_context():
        upgrade()
        downgrade(revision="base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
        upgrade()
        assert "enterprises" in inspect(db.engine).get_table_names()
        db.engine.dispose()
