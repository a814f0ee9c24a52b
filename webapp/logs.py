"""Request logging: a request id and duration on every line; secrets never logged."""

from __future__ import annotations

import logging
import time
import uuid

from flask import Flask, g, has_request_context, request

logger = logging.getLogger("chainmatch.request")

# Libraries that log chatty DEBUG/INFO lines (jieba: its dictionary load; numba: compilation).
# jieba sets its own logger to DEBUG when first imported, after the app is configured, so a filter
# (which a later setLevel does not undo) keeps them at WARNING unless CHAINMATCH_LOG_LEVEL is DEBUG.
THIRD_PARTY_LOGGERS = (
    "jieba",
    "faiss",
    "faiss.loader",
    "sentence_transformers",
    "transformers",
    "huggingface_hub",
    "urllib3",
    "filelock",
    "numba",
    "PIL",
    "matplotlib",
)
THIRD_PARTY_LEVEL = logging.WARNING


class _MinLevelFilter(logging.Filter):
    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= self.level


_QUIET = _MinLevelFilter(THIRD_PARTY_LEVEL)


def quiet_third_party(verbose: bool) -> None:
    """Third-party loggers at WARNING (or left as they are when `verbose`, i.e. the app logs at DEBUG)."""
    for name in THIRD_PARTY_LOGGERS:
        if verbose:
            if (
                name in logging.root.manager.loggerDict
            ):  # not created here: alembic's fileConfig disables existing loggers
                logging.getLogger(name).removeFilter(_QUIET)
            continue
        lib = logging.getLogger(name)
        lib.setLevel(THIRD_PARTY_LEVEL)
        if _QUIET not in lib.filters:
            lib.addFilter(_QUIET)


CHAINMATCH_HANDLER_ATTR = "_chainmatch"
_LINE_BREAKS = str.maketrans({"\n": "\\n", "\r": "\\r", "\u2028": "\\u2028", "\u2029": "\\u2029"})


class OneLineFormatter(logging.Formatter):
    """Escapes line breaks in the message, so values such as typed user names cannot forge log lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        """The formatted line with the message's own line breaks escaped (tracebacks stay multi-line)."""
        record.message = record.message.translate(_LINE_BREAKS)
        return super().formatMessage(record)


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = g.get("request_id", "-") if has_request_context() else "-"
        return True


def init_app(app: Flask) -> None:
    level = getattr(logging, str(app.config.get("LOG_LEVEL", "INFO")).upper(), logging.INFO)
    root = logging.getLogger("chainmatch")
    root.setLevel(level)
    quiet_third_party(verbose=level <= logging.DEBUG)
    if not any(getattr(h, CHAINMATCH_HANDLER_ATTR, False) for h in root.handlers):
        handler = logging.StreamHandler()
        setattr(handler, CHAINMATCH_HANDLER_ATTR, True)
        handler.addFilter(RequestIdFilter())
        handler.setFormatter(OneLineFormatter("%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"))
        root.addHandler(handler)

    @app.before_request
    def _start() -> None:
        g.request_id = request.headers.get("X-Request-ID", "")[:64] or uuid.uuid4().hex[:12]
        g.request_started = time.perf_counter()

    @app.after_request
    def _log(response):
        started = g.get("request_started")
        if started is not None:
            ms = (time.perf_counter() - started) * 1000
            # Path only: query strings may carry tokens and are not logged.
            logger.info("%s %s %s %.1fms", request.method, request.path, response.status_code, ms)
            response.headers["X-Request-ID"] = g.request_id
        return response
