"""The OpenAPI 3 document, generated from the URL map and each view's `operation` declaration; docs page."""

from __future__ import annotations

import re
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask, current_app, jsonify, render_template

from webapp.api import bp
from webapp.api.core import OPERATION_ATTR, Operation, operation
from webapp.api.errors import ERRORS
from webapp.api.schemas import Error

TITLE = "chainmatch API"
VERSION = "1.0.0"
OPENAPI_VERSION = "3.0.3"
SPEC_CACHE_KEY = "chainmatch.api.spec"
_CONVERTER = re.compile(r"<(?:(?P<conv>[a-z]+)(?:\([^)]*\))?:)?(?P<name>\w+)>")
_TYPES = {"int": {"type": "integer", "minimum": 0}, "float": {"type": "number"}}
DESCRIPTION = (
    "产业链精准招商匹配平台的版本化 JSON API。认证：`Authorization: Bearer <令牌>`（在 /api/tokens 页面或用 "
    '`chainmatch tokens create` 创建）。错误统一为 `{"error": {"code", "message", "details"}}`。'
)


def _schema_name(schema_cls: type) -> str:
    return schema_cls.__name__


def _path_and_params(rule: str) -> tuple[str, list[dict]]:
    params = []
    for match in _CONVERTER.finditer(rule):
        schema = dict(_TYPES.get(match.group("conv") or "", {"type": "string"}))
        if schema.get("type") == "string":
            schema["pattern"] = "^[^/]+$"  # Flask's default converter never matches a slash
            schema["minLength"] = 1
        params.append({"name": match.group("name"), "in": "path", "required": True, "schema": schema})
    return _CONVERTER.sub(lambda m: "{" + m.group("name") + "}", rule), params


def _query_params(spec: APISpec, op: Operation) -> list[dict]:
    converter = spec.plugins[0].converter  # type: ignore[attr-defined]
    return converter.schema2parameters(op.query(), location="query")


def _response_schema(op: Operation) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{_schema_name(op.response)}"}
    if op.paginated:
        integer = {"type": "integer", "minimum": 0}
        return {
            "type": "object",
            "additionalProperties": False,
            "required": ["items", "page", "limit", "total", "pages"],
            "properties": {
                "items": {"type": "array", "items": ref},
                "page": integer,
                "limit": integer,
                "total": integer,
                "pages": integer,
            },
        }
    if op.many:
        return {"type": "array", "items": ref}
    return ref


def build_spec(app: Flask) -> dict:
    plugin = MarshmallowPlugin(schema_name_resolver=lambda schema: None)
    spec = APISpec(
        title=TITLE,
        version=VERSION,
        openapi_version=OPENAPI_VERSION,
        plugins=[plugin],
        info={"description": DESCRIPTION},
        servers=[{"url": "/"}],
    )
    spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "description": "API 令牌：cm_<前缀>_<密钥>"}
    )
    spec.components.schema("Error", schema=Error)
    for code, (error_code, message) in ERRORS.items():
        spec.components.response(
            f"E{code}",
            {
                "description": message,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            },
        )
    seen_schemas: set[type] = {Error}

    def register(schema_cls: type | None) -> None:
        if schema_cls is not None and schema_cls not in seen_schemas:
            seen_schemas.add(schema_cls)
            spec.components.schema(_schema_name(schema_cls), schema=schema_cls)

    rules = sorted((r for r in app.url_map.iter_rules() if r.endpoint.startswith(bp.name + ".")), key=lambda r: r.rule)
    paths: dict[str, dict] = {}
    for rule in rules:
        view = app.view_functions[rule.endpoint]
        op: Operation | None = getattr(view, OPERATION_ATTR, None)
        if op is None:
            continue
        path, path_params = _path_and_params(rule.rule)
        for method in sorted(m for m in rule.methods if m not in ("HEAD", "OPTIONS")):
            for schema_cls in (op.query, op.body, op.response):
                register(schema_cls)
            entry: dict[str, Any] = {
                "operationId": rule.endpoint.split(".", 1)[1],
                "summary": op.summary,
                "tags": op.tags,
                "parameters": list(path_params) + (_query_params(spec, op) if op.query else []),
                "responses": {},
            }
            if op.description:
                entry["description"] = op.description
            if op.roles:
                entry["x-roles"] = list(op.roles)
                entry["description"] = (entry.get("description", "") + "\n\n允许的角色：" + "、".join(op.roles)).strip()
            if op.public:
                entry["security"] = []
            if op.body is not None:
                entry["requestBody"] = {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": f"#/components/schemas/{_schema_name(op.body)}"}}
                    },
                }
            if op.status == 204:
                entry["responses"]["204"] = {"description": "成功，无内容"}
            else:
                schema = (
                    _response_schema(op)
                    if op.response is not None
                    else ({"type": "object"} if op.media == "application/json" else {"type": "string"})
                )
                ok = {"description": "成功", "content": {op.media: {"schema": schema}}}
                links = _links(view.__name__)
                if links:
                    ok["links"] = links
                entry["responses"][str(op.status)] = ok
                if view.__name__ in _IDEMPOTENT_CREATES:
                    entry["responses"]["200"] = {**ok, "description": "已存在相同的进行中记录，返回该记录"}
            codes = set(op.errors) | {500, 503}
            if op.public:
                codes -= {401, 403}
            if path_params or op.query is not None:
                codes |= {404, 422}
            if op.body is not None:
                codes |= {400, 413, 415, 422}
            for code in sorted(codes):
                entry["responses"][str(code)] = {"$ref": f"#/components/responses/E{code}"}
            paths.setdefault(path, {})[method.lower()] = entry
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    document = spec.to_dict()
    document["security"] = [{"bearerAuth": []}]
    return document


_IDEMPOTENT_CREATES = {"post_lead", "post_request"}

# OpenAPI links: the id a create (or update) returns addresses the operations on that object, so clients and
# stateful testers (schemathesis) can follow create → read → update. Keyed by view name:
# (path parameter, where the response carries the id, {link name: target operationId}).
LINKS: dict[str, tuple[str, str, dict[str, str]]] = {
    "post_lead": (
        "lead_id",
        "$response.body#/id",
        {
            "GetLead": "get_lead",
            "PatchLead": "patch_lead",
            "ChangeLeadStage": "post_lead_stage",
            "GetLeadProject": "get_project",
            "DeleteLead": "delete_lead",
        },
    ),
    "patch_lead": ("lead_id", "$response.body#/id", {"GetLead": "get_lead"}),
    "post_lead_stage": ("lead_id", "$response.body#/id", {"GetLead": "get_lead"}),
    "post_request": (
        "request_id",
        "$response.body#/id",
        {"GetRequest": "get_request", "ChangeRequestStatus": "post_request_status"},
    ),
    "post_request_status": ("request_id", "$response.body#/id", {"GetRequest": "get_request"}),
    "create_chain": (
        "chain_id",
        "$response.body#/chain_id",
        {"GetChain": "get_chain", "UpdateChain": "update_chain", "ListChainLinks": "list_links"},
    ),
    "update_chain": ("chain_id", "$response.body#/chain_id", {"GetChain": "get_chain"}),
}
# The operations that create an API object: each must have links to read and to change what it created.
CREATE_OPERATIONS = ("post_lead", "post_request", "create_chain")


def _links(view_name: str) -> dict[str, dict]:
    if view_name not in LINKS:
        return {}
    param, expression, targets = LINKS[view_name]
    return {name: {"operationId": target, "parameters": {param: expression}} for name, target in targets.items()}


def cached_spec() -> dict:
    app = current_app._get_current_object()
    document = app.extensions.get(SPEC_CACHE_KEY)
    if document is None:
        document = app.extensions[SPEC_CACHE_KEY] = build_spec(app)
    return document


@bp.get("/openapi.json")
@operation("OpenAPI 3 文档（由代码生成）", tags=["文档"], public=True, errors=(429,))
def openapi_json():
    return jsonify(cached_spec())


@bp.get("/docs")
@operation("API 文档页面（由 OpenAPI 文档在服务端渲染）", tags=["文档"], public=True, errors=(429,), media="text/html")
def docs():
    document = cached_spec()
    return render_template(
        "api/docs.html",
        spec=document,
        operations=_operations(document),
        schemas=document.get("components", {}).get("schemas", {}),
    )


def _operations(document: dict) -> list[dict]:
    out = []
    for path, methods in document.get("paths", {}).items():
        for method, op in methods.items():
            out.append({"path": path, "method": method.upper(), **op})
    tags_order: dict[str, int] = {}
    for op in out:
        tags_order.setdefault((op.get("tags") or [""])[0], len(tags_order))
    return sorted(out, key=lambda o: (tags_order[(o.get("tags") or [""])[0]], o["path"], o["method"]))
