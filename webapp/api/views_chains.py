"""Chain maps (1张图谱): list, read with links, create or update from YAML text or JSON (admins)."""

from __future__ import annotations

import json
import logging

from flask_login import current_user
from sqlalchemy import select

from chains.chain_models import Chain, SupplyEdge
from chains.chainmap_io import chain_summaries, current_links, import_parsed_chain
from chains.chainmap_parse import ChainMapError, parse_chain_text
from webapp.api import bp
from webapp.api.core import operation
from webapp.api.errors import ApiError
from webapp.api.schemas_chains import ChainDetail, ChainImportOut, ChainInput, ChainSummary, Link, LinkQuery
from webapp.auth.models import ROLE_ADMIN, STAFF_ROLES
from webapp.extensions import db
from webapp.web.integrations import audit

logger = logging.getLogger("chainmatch.api")

TAGS = ["产业链图谱"]


def _chain(chain_id: str) -> Chain:
    chain = db.session.get(Chain, chain_id)
    if chain is None or chain.current_version is None:
        raise ApiError(404, f"产业链 {chain_id} 不存在。")
    return chain


@bp.get("/chains")
@operation("产业链列表", tags=TAGS, roles=STAFF_ROLES, response=ChainSummary, many=True)
def list_chains():
    return chain_summaries(db.session)


@bp.get("/chains/<chain_id>")
@operation("产业链详情（当前版本，含全部环节和供应关系）", tags=TAGS, roles=STAFF_ROLES, response=ChainDetail)
def get_chain(chain_id: str):
    chain = _chain(chain_id)
    version = chain.current_version
    edges = db.session.scalars(
        select(SupplyEdge).where(SupplyEdge.version_id == version.id).order_by(SupplyEdge.from_key, SupplyEdge.to_key)
    ).all()
    return {
        "id": chain.id,
        "name": chain.name,
        "sector": chain.sector,
        "description": chain.description,
        "version": version.version,
        "declared_version": version.declared_version,
        "source": version.source,
        "links": current_links(db.session, chain.id),
        "supply": edges,
    }


@bp.get("/chains/<chain_id>/links")
@operation("产业链环节列表", tags=TAGS, roles=STAFF_ROLES, query=LinkQuery, response=Link, many=True)
def list_links(chain_id: str, query: dict):
    _chain(chain_id)
    links = current_links(db.session, chain_id)
    if query.get("stage"):
        links = [link for link in links if link.stage == query["stage"]]
    return links


@bp.get("/chains/<chain_id>/links/<link_id>")
@operation("环节详情", tags=TAGS, roles=STAFF_ROLES, response=Link)
def get_link(chain_id: str, link_id: str):
    _chain(chain_id)
    for link in current_links(db.session, chain_id):
        if link.key == link_id:
            return link
    raise ApiError(404, f"环节 {link_id} 不存在。")


def _parse(body: dict):
    if "yaml" in body:
        text, name = body["yaml"], "<yaml>"
    else:
        # JSON is YAML: error line numbers then refer to this pretty-printed document.
        text, name = json.dumps(body["document"], ensure_ascii=False, indent=2), "<document>"
    try:
        return parse_chain_text(text, name)
    except ChainMapError as exc:
        raise _validation(exc) from None


def _validation(exc: ChainMapError) -> ApiError:
    return ApiError(
        422,
        "产业链图谱未通过校验，未写入任何数据。",
        {"errors": [{"line": line, "message": message} for _, line, message in exc.errors]},
    )


def _import(parsed) -> dict:
    try:
        result = import_parsed_chain(
            db.session,
            parsed,
            commit=False,
            provenance={
                "kind": "import",
                "author_id": current_user.id,
                "author": current_user.username,
                "reason": "API 导入",
            },
        )
    except ChainMapError as exc:
        raise _validation(exc) from None
    if result.created:
        audit("chain.import", "chain", result.chain_id, version=result.version)
    db.session.commit()
    logger.info("API chain import %s: version %s created=%s", result.chain_id, result.version, result.created)
    return {
        "chain_id": result.chain_id,
        "version": result.version,
        "links": result.links,
        "created": result.created,
        "unchanged": result.unchanged,
    }


@bp.post("/chains")
@operation(
    "新建产业链（YAML 文本或 JSON 文档）",
    tags=TAGS,
    roles=(ROLE_ADMIN,),
    body=ChainInput,
    response=ChainImportOut,
    status=201,
    errors=(400, 401, 403, 409, 415, 422, 429),
    description="与 `chainmatch chains import` 相同的校验；有任何错误时不写入，错误按行列出。已存在的产业链请用 PUT。",
)
def create_chain(body: dict):
    parsed = _parse(body)
    if db.session.get(Chain, parsed.id) is not None:
        raise ApiError(409, f"产业链 {parsed.id} 已存在，请使用 PUT /api/v1/chains/{parsed.id} 更新。")
    return _import(parsed)


@bp.put("/chains/<chain_id>")
@operation(
    "更新产业链（内容变化时写入新版本）",
    tags=TAGS,
    roles=(ROLE_ADMIN,),
    body=ChainInput,
    response=ChainImportOut,
    errors=(400, 401, 403, 404, 415, 422, 429),
    description="内容与当前版本相同则不写入（unchanged=true），否则写入新版本，旧版本保留。",
)
def update_chain(chain_id: str, body: dict):
    _chain(chain_id)
    parsed = _parse(body)
    if parsed.id != chain_id:
        raise ApiError(
            422, "文档中的产业链 id 与地址不一致。", {"errors": [{"line": None, "message": f"id 应为 {chain_id}"}]}
        )
    return _import(parsed)
