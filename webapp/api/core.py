"""The `operation` decorator: one declaration per endpoint drives validation, serialisation, roles and the spec.

Each API view declares its query/body/response schemas and roles here; `webapp.api.spec` walks the URL map
and builds the OpenAPI document from the same declarations, so the document cannot drift from the code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import wraps
from typing import Any, Callable

from flask import Response, current_app, g, jsonify, request
from flask_login import current_user
from marshmallow import Schema, ValidationError, fields, validate

from webapp.api.errors import ApiError

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_DB_INT = 2**31 - 1  # INTEGER columns on PostgreSQL
MAX_PAGE = 1_000_000  # keeps OFFSET within every database's integer range
OPERATION_ATTR = "_api_operation"
STANDARD_ERRORS = (400, 401, 403, 404, 405, 422, 429)


@dataclass
class Operation:
    summary: str
    tags: list[str]
    roles: tuple[str, ...]
    description: str = ""
    query: type[Schema] | None = None
    body: type[Schema] | None = None
    response: type[Schema] | None = None
    status: int = 200
    paginated: bool = False
    many: bool = False
    public: bool = False
    errors: tuple[int, ...] = STANDARD_ERRORS
    media: str = "application/json"  # of the success response


class PageQuery(Schema):
    """page/limit pagination parameters shared by every list endpoint."""

    page = fields.Integer(
        load_default=1, validate=validate.Range(min=1, max=MAX_PAGE), metadata={"description": "页码，从 1 开始"}
    )
    limit = fields.Integer(
        load_default=DEFAULT_LIMIT,
        validate=validate.Range(min=1, max=MAX_LIMIT),
        metadata={"description": f"每页条数，1–{MAX_LIMIT}，默认 {DEFAULT_LIMIT}"},
    )


def has_nul(value: Any) -> bool:
    """NUL characters cannot be stored (PostgreSQL text) and never occur in real input: reject them early."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(has_nul(v) for v in value)
    return False


def check_path_args(view_args: dict | None) -> None:
    """Path parameters: no NUL characters (422); integer ids beyond the database range cannot exist (404)."""
    for name, value in (view_args or {}).items():
        if has_nul(value):
            raise ApiError(422, "路径参数包含非法字符。", {"path": {name: ["包含 NUL 字符"]}})
        if isinstance(value, int) and value > MAX_DB_INT:
            raise ApiError(404)


def _schema_errors(exc: ValidationError) -> dict:
    messages = exc.messages
    return messages if isinstance(messages, dict) else {"_schema": messages}


def load_query(schema_cls: type[Schema]) -> dict:
    """Query string → validated dict; list fields take repeated parameters (and comma-separated values)."""
    schema = schema_cls()
    raw: dict[str, Any] = {}
    for name, fld in schema.fields.items():
        key = fld.data_key or name
        if key not in request.args:
            continue
        if isinstance(fld, fields.List):
            values = []
            for v in request.args.getlist(key):
                values.extend(s for s in (x.strip() for x in v.replace("，", ",").split(",")) if s)
            raw[key] = values
        else:
            raw[key] = request.args.get(key)
    if has_nul(raw):
        raise ApiError(422, "查询参数包含非法字符（NUL）。", {"query": {"_schema": ["包含 NUL 字符"]}})
    try:
        return schema.load(raw, unknown="exclude")
    except ValidationError as exc:
        raise ApiError(422, "查询参数未通过校验。", {"query": _schema_errors(exc)}) from None


def load_body(schema_cls: type[Schema]) -> dict:
    if not request.is_json:
        raise ApiError(415)
    data = request.get_json(silent=True)
    if data is None:
        raise ApiError(400, "请求体不是有效的 JSON。")
    if has_nul(data):
        raise ApiError(422, "请求数据包含非法字符（NUL）。", {"body": {"_schema": ["包含 NUL 字符"]}})
    try:
        return schema_cls().load(data)
    except ValidationError as exc:
        raise ApiError(422, "请求数据未通过校验。", {"body": _schema_errors(exc)}) from None


def paginate(total: int, page: int, limit: int, items: list) -> dict:
    return {
        "items": items,
        "page": page,
        "limit": limit,
        "total": total,
        "pages": max(1, math.ceil(total / limit)) if limit else 1,
    }


def require_role(roles: tuple[str, ...]) -> None:
    if not current_user.is_authenticated:
        raise ApiError(401)
    if current_user.role not in roles:
        raise ApiError(403)


def require_cluster(cluster_id: str) -> None:
    """403 unless the API user may see this cluster (same rule as the web UI)."""
    if not current_user.can_access_cluster(cluster_id):
        raise ApiError(403, "无权访问该集聚区的数据。")


def operation(
    summary: str,
    *,
    tags: list[str],
    roles: tuple[str, ...] = (),
    description: str = "",
    query: type[Schema] | None = None,
    body: type[Schema] | None = None,
    response: type[Schema] | None = None,
    status: int = 200,
    paginated: bool = False,
    many: bool = False,
    public: bool = False,
    errors: tuple[int, ...] = STANDARD_ERRORS,
    media: str = "application/json",
) -> Callable:
    """Declare an API operation. The view receives `query=` / `body=` (validated dicts) when declared and
    returns the data to serialise with `response` (or a Flask response, passed through)."""
    op = Operation(
        summary, tags, roles, description, query, body, response, status, paginated, many, public, errors, media
    )

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not op.public:
                require_role(op.roles)
            check_path_args(request.view_args)
            if op.query is not None:
                kwargs["query"] = load_query(op.query)
            if op.body is not None:
                kwargs["body"] = load_body(op.body)
            result = view(*args, **kwargs)
            if isinstance(result, (Response, tuple, str)):
                return result
            return dump(op, result)

        setattr(wrapped, OPERATION_ATTR, op)
        return wrapped

    return decorator


def dump(op: Operation, result: Any):
    if op.response is None:
        response = jsonify(result)
    elif op.paginated:
        schema = op.response()
        response = jsonify({**result, "items": schema.dump(result["items"], many=True)})
    else:
        response = jsonify(op.response().dump(result, many=op.many))
    response.status_code = op.status
    return response


def api_user():
    return current_user._get_current_object()


def via_token() -> bool:
    return getattr(g, "api_token", None) is not None


def config(key: str) -> Any:
    return current_app.config[key]


def id_field(**kwargs) -> fields.Integer:
    """A database id: a strict integer within the INTEGER range."""
    return fields.Integer(strict=True, validate=validate.Range(min=1, max=MAX_DB_INT), **kwargs)
