"""Configuration options: every option is listed once in OPTIONS, read from `CHAINMATCH_*` env vars.

The README documents each option; `tests/test_docs.py` checks that it names every one.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

ENV_PREFIX = "CHAINMATCH_"

# Lead workflow rules (docs/workflow.md): typical values, each overridable by its option below.
CLAIM_PROTECTION_DAYS = 90  # 首谈保护: days without progress after which a first claim no longer blocks others
ADMIN_ASSIGN_INVESTMENT_WAN = 100_000  # 万元 (10 亿元); planned investment from which an admin must assign; 0 = off
FIRST_RESPONSE_WORKDAYS = 1  # first response within N working days of assignment
ASSESSMENT_DAYS = 3  # relevance assessment within N days of creation
FIRM_FEEDBACK_DAYS = 7  # feedback to the firm within N days of first contact (已接洽)
NEGOTIATION_PROGRESS_DAYS = 14  # a progress entry every N days while in 洽谈


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _lower(value: str) -> str:
    return value.strip().lower()


@dataclass(frozen=True)
class Option:
    env: str  # name after the CHAINMATCH_ prefix
    key: str  # Flask config key
    default: Any
    help: str
    parse: Callable[[str], Any] = str


OPTIONS: tuple[Option, ...] = (
    Option(
        "INSTANCE_PATH",
        "INSTANCE_PATH",
        None,
        "Instance folder (database, secret key, indexes, uploads); default Flask's `instance/` beside the code.",
    ),
    Option(
        "DATABASE_URL",
        "SQLALCHEMY_DATABASE_URI",
        None,
        "SQLAlchemy URL of the database; default a SQLite file `chainmatch.sqlite3` in the instance folder (WAL mode).",
    ),
    Option("SECRET_KEY", "SECRET_KEY", None, "Session signing key; default generated once into `instance/secret_key`."),
    Option("INDEX_DIR", "INDEX_DIR", None, "Folder for vector and lexical index files; default `instance/indexes`."),
    Option(
        "UPLOAD_DIR",
        "UPLOAD_DIR",
        None,
        "Folder for uploaded import files and their row reports; default `instance/uploads`.",
    ),
    Option(
        "EMBEDDING_MODEL",
        "EMBEDDING_MODEL",
        "",
        "Embedding model: empty for the bundled multilingual-e5-small (converted once into MODEL_DIR), `builtin` for "
        "the built-in LSA embedder (no model), or the local path (or cached name) of another sentence-transformers "
        "model. Never downloaded.",
    ),
    Option(
        "MODEL_DIR",
        "MODEL_DIR",
        None,
        "Folder of derived model files: the converted bundled model and ONNX exports (`onnx-cache/`); default "
        "`instance/models`.",
    ),
    Option(
        "EMBEDDER",
        "EMBEDDER",
        "auto",
        "Which embedder searches with the pretrained model: transformer (the model itself), static (a static "
        "embedder trained from it with `chainmatch embedder train-static`: thousands of profiles/s), or auto (the "
        "static one above STATIC_EMBEDDER_ABOVE firms when one is trained, else the transformer). Part of the index "
        "name: changing it rebuilds the index.",
        _lower,
    ),
    Option(
        "STATIC_EMBEDDER_ABOVE",
        "STATIC_EMBEDDER_ABOVE",
        200_000,
        "With EMBEDDER=auto, registries of more firms than this search with the static embedder (when trained).",
        int,
    ),
    Option(
        "EMBEDDING_BACKEND",
        "EMBEDDING_BACKEND",
        "auto",
        "How a sentence-transformers model runs: torch, onnx, onnx-int8, or auto (onnx-int8 when onnxruntime is "
        "installed, else torch). ONNX files are exported once into `MODEL_DIR/onnx-cache`.",
        _lower,
    ),
    Option(
        "EMBEDDING_THREADS",
        "EMBEDDING_THREADS",
        0,
        "onnxruntime threads for the ONNX backends; 0 means one per available CPU.",
        int,
    ),
    Option(
        "INDEX_EXACT_MAX",
        "INDEX_EXACT_MAX",
        200_000,
        "Largest pool searched with an exact flat index; larger pools use IVF-PQ.",
        int,
    ),
    Option(
        "VECTOR_BACKEND",
        "VECTOR_BACKEND",
        "faiss",
        "Vector index backend, a name registered with `matching.vectors.register_backend` (built in: faiss, numpy, "
        "milvus); "
        "changing it rebuilds the index.",
        _lower,
    ),
    Option(
        "VECTOR_URI",
        "VECTOR_URI",
        "",
        "Milvus server or cluster for the milvus vector backend, e.g. http://127.0.0.1:19530; empty: Milvus's "
        "engine embedded (milvus-lite) in the index folder.",
    ),
    Option(
        "SESSION_MINUTES", "SESSION_MINUTES", 120, "Minutes of inactivity after which a login session expires.", int
    ),
    Option(
        "SESSION_MAX_HOURS",
        "SESSION_MAX_HOURS",
        12,
        "Hours after the login at which a session ends however active it is (absolute lifetime).",
        int,
    ),
    Option(
        "SECURE_COOKIES",
        "SESSION_COOKIE_SECURE",
        False,
        "Send session cookies only over HTTPS (set true behind TLS).",
        _bool,
    ),
    Option(
        "LOGIN_RATE_LIMIT",
        "LOGIN_RATE_LIMIT",
        "10 per minute",
        "Flask-Limiter rate for login attempts per client address.",
    ),
    Option(
        "TRUSTED_PROXY_HOPS",
        "TRUSTED_PROXY_HOPS",
        0,
        "Reverse proxies in front of the app whose X-Forwarded-For/-Proto are trusted (Werkzeug ProxyFix); 0 (off) "
        "uses the connection's address. Set it to the number of proxies, never more.",
        int,
    ),
    Option(
        "RATELIMIT_STORAGE_URI",
        "RATELIMIT_STORAGE_URI",
        "memory://",
        "Flask-Limiter storage, e.g. redis://127.0.0.1:6379 for several workers.",
    ),
    Option(
        "API_RATE_LIMIT",
        "API_RATE_LIMIT",
        "300 per minute",
        "Flask-Limiter rate for JSON API calls per verified API token (per client address without a valid token).",
    ),
    Option(
        "API_MAX_BODY_KB",
        "API_MAX_BODY_KB",
        4096,
        "Largest JSON request body of the API, in KB (answered with 413); file uploads keep MAX_UPLOAD_MB.",
        int,
    ),
    Option(
        "API_TOKEN_DAYS",
        "API_TOKEN_DAYS",
        90,
        "Days an API token is valid after it is created; 0 means tokens never expire.",
        int,
    ),
    Option(
        "UPLOAD_RETENTION_DAYS",
        "UPLOAD_RETENTION_DAYS",
        30,
        "Days uploaded import files and their row reports are kept (removed at the next upload); 0 keeps them.",
        int,
    ),
    Option("LOG_LEVEL", "LOG_LEVEL", "INFO", "Logging level (DEBUG, INFO, WARNING, ERROR)."),
    Option("MAX_UPLOAD_MB", "MAX_UPLOAD_MB", 200, "Largest accepted upload, in MB.", int),
    Option(
        "WEB_WORKERS",
        "WEB_WORKERS",
        0,
        "Worker processes of `chainmatch serve` (gunicorn); 0 means one per CPU core.",
        int,
    ),
    Option(
        "WEB_THREADS",
        "WEB_THREADS",
        4,
        "Threads per worker process of `chainmatch serve` (requests served at once by one worker).",
        int,
    ),
    Option(
        "TASK_QUEUE",
        "TASK_QUEUE",
        "sqlite",
        "Where background jobs (imports, placement runs, the index's embedding) wait for the task worker "
        "(`chainmatch worker`, started by `chainmatch serve` and `chainmatch run`): sqlite (a Huey queue in "
        "`instance/tasks.sqlite3`, one machine), redis (REDIS_URL) or thread (no worker: a thread of the web "
        "process; for tests).",
        _lower,
    ),
    Option(
        "REDIS_URL", "REDIS_URL", "redis://127.0.0.1:6379/0", "Redis server of the task queue when TASK_QUEUE is redis."
    ),
    Option(
        "TASK_QUEUE_NAME",
        "TASK_QUEUE_NAME",
        "chainmatch",
        "Name of the task queue (its Redis key prefix): instances sharing one Redis need different names.",
    ),
    Option(
        "TASK_WORKERS",
        "TASK_WORKERS",
        2,
        "Jobs the task worker runs at once (threads of one process), e.g. an import beside a long embedding.",
        int,
    ),
    Option(
        "JOB_STALE_SECONDS",
        "JOB_STALE_SECONDS",
        60,
        "Seconds without a heartbeat after which a background job whose worker process is gone is marked failed.",
        int,
    ),
    Option(
        "MAP_REVIEW_DAYS",
        "MAP_REVIEW_DAYS",
        180,
        "Days after which a chain map not reviewed for a cluster is shown as stale.",
        int,
    ),
    Option(
        "MAP_CANDIDATE_CHANGE",
        "MAP_CANDIDATE_CHANGE",
        50,
        "Percentage of a gap link's top candidates replaced since the last review above which the map is stale.",
        int,
    ),
    Option(
        "CLAIM_PROTECTION_DAYS",
        "CLAIM_PROTECTION_DAYS",
        CLAIM_PROTECTION_DAYS,
        "首谈保护: days without progress (stage change or progress entry) after which a first claim on a firm "
        "lapses and a new lead elsewhere becomes the first claim.",
        int,
    ),
    Option(
        "ADMIN_ASSIGN_INVESTMENT_WAN",
        "ADMIN_ASSIGN_INVESTMENT_WAN",
        ADMIN_ASSIGN_INVESTMENT_WAN,
        "Planned investment (万元) from which a lead cannot move past 候选 until an administrator assigns its "
        "owner; 0 turns the rule off.",
        int,
    ),
    Option(
        "FIRST_RESPONSE_WORKDAYS",
        "FIRST_RESPONSE_WORKDAYS",
        FIRST_RESPONSE_WORKDAYS,
        "Working days (Mon–Fri) after a lead is assigned within which its owner must respond (leave 候选 or "
        "record progress).",
        int,
    ),
    Option(
        "ASSESSMENT_DAYS",
        "ASSESSMENT_DAYS",
        ASSESSMENT_DAYS,
        "Days after creation within which a lead's relevance is assessed (相关/不相关) or it moves past 已接洽.",
        int,
    ),
    Option(
        "FIRM_FEEDBACK_DAYS",
        "FIRM_FEEDBACK_DAYS",
        FIRM_FEEDBACK_DAYS,
        "Days after reaching 已接洽 within which feedback to the firm is recorded (a progress entry or the next "
        "stage).",
        int,
    ),
    Option(
        "NEGOTIATION_PROGRESS_DAYS",
        "NEGOTIATION_PROGRESS_DAYS",
        NEGOTIATION_PROGRESS_DAYS,
        "While a lead is in 洽谈, a progress entry is due every this many days.",
        int,
    ),
    Option(
        "SMTP_HOST",
        "SMTP_HOST",
        "",
        "SMTP server for the daily overdue digest (`chainmatch leads digest --mail`); empty: printed only.",
    ),
    Option("SMTP_PORT", "SMTP_PORT", 25, "SMTP port of SMTP_HOST.", int),
    Option("DIGEST_FROM", "DIGEST_FROM", "chainmatch@localhost", "Sender address of the digest e-mail."),
    Option(
        "DIGEST_TO",
        "DIGEST_TO",
        "",
        "Comma-separated recipients of the digest e-mail (e.g. the managers' shared mailbox).",
    ),
)


def options_from_env(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """Config values for the options set in the environment."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for opt in OPTIONS:
        raw = environ.get(ENV_PREFIX + opt.env)
        if raw is not None and raw != "":
            values[opt.key] = opt.parse(raw)
    return values


def defaults() -> dict[str, Any]:
    return {opt.key: opt.default for opt in OPTIONS if opt.default is not None}


def load_or_create_secret(instance_path: str) -> str:
    """Read the instance secret key, creating it (mode 0600) on first run.

    Several server workers may start at once on a fresh instance: the key is written to a private temporary file
    and linked into place, so each process either creates it or reads the complete key another one created.
    """
    path = Path(instance_path) / "secret_key"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    temporary = path.with_name(f".secret_key.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(key)
        try:
            os.link(temporary, path)
        except FileExistsError:
            return path.read_text().strip()
    finally:
        temporary.unlink(missing_ok=True)
    return key
