"""Third-party loggers stay at WARNING (no "DEBUG [jieba] Building prefix dict …" during `chainmatch init`)
unless CHAINMATCH_LOG_LEVEL is DEBUG."""

from __future__ import annotations

import logging

from webapp import create_app


def _app(tmp_path, level: str):
    return create_app(
        {
            "TESTING": True,
            "LOG_LEVEL": level,
            "SECRET_KEY": "x",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'db.sqlite3'}",
            "INSTANCE_PATH": str(tmp_path / "instance"),
        }
    )


def _jieba_debug_lines(caplog) -> list[str]:
    caplog.clear()
    import jieba

    # jieba sets its logger to DEBUG when imported, which happens after the app is configured in `init`.
    logging.getLogger("jieba").setLevel(logging.DEBUG)
    jieba.Tokenizer().initialize()  # a fresh tokenizer loads its dictionary (and logs it) again
    return [r.getMessage() for r in caplog.records if r.name == "jieba" and r.levelno < logging.WARNING]


def test_jieba_debug_lines_are_quiet_by_default_and_shown_at_debug(tmp_path, caplog):
    try:
        _app(tmp_path / "a", "INFO")
        assert _jieba_debug_lines(caplog) == []
        _app(tmp_path / "b", "DEBUG")
        assert any("prefix dict" in line for line in _jieba_debug_lines(caplog))
    finally:
        _app(tmp_path / "c", "INFO")
