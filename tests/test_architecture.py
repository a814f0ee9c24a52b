"""Structural guardrails of issue 18 that import-linter does not check (docs/architecture.md)."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("webapp", "matching", "chains")
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
