"""Structural guardrails of issue 18 that import-linter does not check (docs/architecture.md)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("webapp", "matching", "chains", "bench")
MAX_MODULE_LINES = 500


def test_no_module_is_longer_than_500_lines():
    """A module over 500 lines is split by what it holds (as webapp/api/schemas_*.py are by resource)."""
    too_long = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            lines = len(path.read_text(encoding="utf-8").splitlines())
            if lines > MAX_MODULE_LINES:
                too_long[str(path.relative_to(ROOT))] = lines
    assert not too_long, f"modules over {MAX_MODULE_LINES} lines: {too_long}"


def _feature_packages() -> list[str]:
    return sorted(p.parent.name for p in (ROOT / "webapp").glob("*/__init__.py"))


def test_app_factory_registers_every_feature_blueprint(app):
    """Blueprints are listed in create_app, not found by scanning: a feature package's `bp` left off the list would
    silently serve nothing."""
    import importlib

    expected = set()
    for name in _feature_packages():
        bp = getattr(importlib.import_module(f"webapp.{name}"), "bp", None)
        if bp is not None:
            expected.add(bp.name)
    assert expected and expected <= set(app.blueprints)


def test_every_command_module_and_models_module_is_listed():
    """`chainmatch` has the commands of every module in webapp/cli/, and the shared metadata every feature's
    tables (webapp/models.py lists the models modules)."""
    import webapp.cli
    import webapp.models  # noqa: F401  (registers the tables)
    from webapp.extensions import db

    listed = {m.__name__ for m in webapp.cli.COMMAND_MODULES}
    # webapp/cli/main.py is the command group itself, not a module of commands.
    on_disk = {
        f"webapp.cli.{p.stem}" for p in (ROOT / "webapp" / "cli").glob("*.py") if p.stem not in ("__init__", "main")
    }
    assert listed == on_disk
    listed_models = (ROOT / "webapp" / "models.py").read_text(encoding="utf-8")
    for path in sorted((ROOT / "webapp").glob("*/**/models.py")):
        package = ".".join(path.parent.relative_to(ROOT).parts)
        assert f"from {package} import models" in listed_models, (
            f"{path.relative_to(ROOT)} is not listed in webapp/models.py"
        )
    tables = set(db.metadata.tables)
    assert {"users", "background_jobs"} <= tables
