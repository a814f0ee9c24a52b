"""Third-party loggers stay at WARNING (no "DEBUG [bm25s] Building index from tokens" during `chainmatch init`)
unless CHAINMATCH_LOG_LEVEL is DEBUG."""
from __future__ import annotations

import logging

from matching.lexical import BM25Channel
from webapp import create_app


def _app(tmp_path, level: str):
    return create_app({"TESTING": True, "LOG_LEVEL": level, "SECRET_KEY": "x",
                       "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'db.sqlite3'}",
                       "INSTANCE_PATH": str(tmp_path / "instance")})


def _bm25s_debug_lines(caplog) -> list[str]:
    caplog.clear()
    import bm25s  # noqa: F401

    # bm25s sets its logger to DEBUG when imported, which happens after the app is configured in `init`.
    logging.getLogger("bm25s").setLevel(logging.DEBUG)
    BM25Channel("word").build(["船用钢板", "焊丝"], [["船用", "钢板"], ["焊丝"]])
    return [r.getMessage() for r in caplog.records if r.name == "bm25s" and r.levelno < logging.WARNING]


def test_bm25s_debug_lines_are_quiet_by_default_and_shown_at_debug(tmp_path, caplog):
    try:
        _app(tmp_path / "a", "INFO")
        assert _bm25s_debug_lines(caplog) == []
        _app(tmp_path / "b", "DEBUG")
        assert "Building index from tokens" in _bm25s_debug_lines(caplog)
    finally:
        _app(tmp_path / "c", "INFO")
