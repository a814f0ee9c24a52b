"""Enterprise registry: search with filters, read, bulk upsert through the file import's parsing and row report."""

from __future__ import annotations

import logging

from sqlalchemy import exists, func, or_, select

from chains.enterprise_models import Enterprise, EnterpriseTag
from chains.enterprises.importer import import_table
from chains.enterprises.readers import Table
from webapp.api import bp
from webapp.api.core import operation, paginate
from webapp.api.errors import ApiError
from webapp.api.schemas_enterprises import BulkUpsertInput, BulkUpsertOut, EnterpriseOut, EnterpriseQuery
from webapp.auth.models import ROLE_ADMIN, ROLE_STAFF, STAFF_ROLES
from webapp.extensions import db
from webapp.web.integrations import audit

logger = logging.getLogger("chainmatch.api")

IMPORT_ROLES = (ROLE_ADMIN, ROLE_STAFF)  # same as the file import page
TAGS = ["企业库"]


def _conditions(query: dict) -> list:
    conds = []
    if query.get("q"):
        text = query["q"].strip()
        conds.append(
            or_(
                Enterprise.name.contains(text, autoescape=True),
                Enterprise.main_products.contains(text, autoescape=True),
                Enterprise.business_scope.contains(text, autoescape=True),
            )
        )
    if query.get("province"):
        conds.append(Enterprise.province.in_(query["province"]))
    if query.get("city"):
        conds.append(Enterprise.city.in_(query["city"]))
    if query.get("tag"):
        conds.append(exists().where(EnterpriseTag.enterprise_id == Enterprise.id, EnterpriseTag.tag.in_(query["tag"])))
    code = (query.get("industry_code") or "").strip().upper()
    if code:
        section, digits = code[:1], code[1:]
        conds.append(Enterprise.industry_section == section)
        if digits:
            column = {2: Enterprise.industry_division, 3: Enterprise.industry_group}.get(
                len(digits), Enterprise.industry_class
            )
            conds.append(column == digits[:4])
    if query.get("status"):
        conds.append(Enterprise.status == query["status"])
    if query.get("capital_min") is not None:
        conds.append(Enterprise.capital_wan_cny >= query["capital_min"])
    if query.get("capital_max") is not None:
        conds.append(Enterprise.capital_wan_cny <= query["capital_max"])
    if query.get("external_id"):
        conds.append(Enterprise.external_id == query["external_id"])
    if query.get("credit_code"):
        conds.append(Enterprise.credit_code == query["credit_code"].strip().upper())
    return conds


@bp.get("/enterprises")
@operation(
    "企业检索（名称/产品/经营范围、地区、标签、行业、注册资本）",
    tags=TAGS,
    roles=STAFF_ROLES,
    query=EnterpriseQuery,
    response=EnterpriseOut,
    paginated=True,
)
def search_enterprises(query: dict):
    conds = _conditions(query)
    total = db.session.scalar(select(func.count(Enterprise.id)).where(*conds)) or 0
    page, limit = query["page"], query["limit"]
    rows = db.session.scalars(
        select(Enterprise).where(*conds).order_by(Enterprise.id).offset((page - 1) * limit).limit(limit)
    ).all()
    return paginate(total, page, limit, list(rows))


@bp.get("/enterprises/<int:enterprise_id>")
@operation("企业详情", tags=TAGS, roles=STAFF_ROLES, response=EnterpriseOut)
def get_enterprise(enterprise_id: int):
    ent = db.session.get(Enterprise, enterprise_id)
    if ent is None:
        raise ApiError(404, f"企业 {enterprise_id} 不存在。")
    return ent


@bp.post("/enterprises/bulk")
@operation(
    "批量新增或更新企业（与文件导入相同的校验与逐行报告）",
    tags=TAGS,
    roles=IMPORT_ROLES,
    body=BulkUpsertInput,
    response=BulkUpsertOut,
    errors=(400, 401, 403, 415, 422, 429),
    description="一次调用为一个事务：全部写入或（出错时）全部不写。身份依次按统一社会信用代码、外部编号、"
    "名称+城市识别；空值不会覆盖已有数据；被拒绝的行在报告中给出原因（其余行照常写入）。",
)
def bulk_upsert(body: dict):
    rows = body["rows"]
    keys = sorted({k for row in rows for k in row})
    # Line numbers in the report are the 1-based positions in `rows`.
    table = Table(
        columns=dict(enumerate(keys)),
        header_row=0,
        rows=iter([(i, {k: row.get(k) for k in keys}) for i, row in enumerate(rows, start=1)]),
        encoding="json",
    )
    try:
        result = import_table(db.session, table, source_file=f"api:{body['source']}")
        audit("enterprise.bulk_upsert", "enterprise", "", **result.counts())
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    logger.info("API bulk upsert: %s", result.counts())
    return {"counts": result.counts(), "report": result.report}
