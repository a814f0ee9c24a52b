"""API schemas of enterprises: the register, its query and the bulk upsert."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from chains.enterprises.import_fields import CONTACT_FIELDS
from webapp.api.core import PageQuery
from webapp.api.schemas import MAX_BULK_ROWS, StrictSchema, UtcDateTime


class EnterpriseOut(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    credit_code = fields.String(required=True, allow_none=True)
    external_id = fields.String(required=True, allow_none=True)
    status = fields.String(required=True)
    founded_on = fields.Date(required=True, allow_none=True)
    capital_wan_cny = fields.Float(required=True, allow_none=True)
    province = fields.String(required=True)
    city = fields.String(required=True)
    district = fields.String(required=True)
    address = fields.String(required=True)
    legal_representative = fields.String(required=True, metadata={"description": "法定代表人"})
    phone = fields.String(required=True, metadata={"description": "电话"})
    email = fields.String(required=True, metadata={"description": "邮箱"})
    website = fields.String(required=True, metadata={"description": "网址"})
    industry_code = fields.Method("_industry_code", required=True)
    industry_name = fields.String(required=True)
    business_scope = fields.String(required=True)
    main_products = fields.String(required=True)
    employees = fields.Integer(required=True, allow_none=True)
    revenue_wan = fields.Float(required=True, allow_none=True)
    country = fields.String(required=True)
    tags = fields.List(fields.String(), required=True, attribute="tag_names")
    is_demo = fields.Boolean(required=True)
    is_synthetic = fields.Boolean(required=True)
    data_note = fields.String(required=True)
    updated_at = UtcDateTime(required=True, allow_none=True)

    def _industry_code(self, ent) -> str:
        return ent.industry_section + (ent.industry_class or ent.industry_group or ent.industry_division or "")


class EnterpriseQuery(PageQuery):
    q = fields.String(metadata={"description": "企业名称、主营产品或经营范围包含的文字"})
    province = fields.List(fields.String(), metadata={"description": "省份（可重复）"})
    city = fields.List(fields.String(), metadata={"description": "城市（可重复）"})
    tag = fields.List(fields.String(), metadata={"description": "企业标签，任一即可（可重复）"})
    industry_code = fields.String(metadata={"description": "国标行业代码前缀，如 C38"})
    status = fields.String(metadata={"description": "登记状态，如 存续"})
    capital_min = fields.Float(metadata={"description": "注册资本下限（万元人民币）"})
    capital_max = fields.Float(metadata={"description": "注册资本上限（万元人民币）"})
    external_id = fields.String()
    credit_code = fields.String()


_ROW_FIELDS = (
    "name",
    "credit_code",
    "external_id",
    "status",
    "founded_on",
    "capital",
    "province",
    "city",
    "district",
    "address",
    *CONTACT_FIELDS,
    "industry_code",
    "industry_name",
    "business_scope",
    "main_products",
    "tags",
    "employees",
    "revenue",
    "former_names",
    "country",
    "data_note",
)


class EnterpriseRow(StrictSchema):
    """One enterprise as in the import file (same field keys, same parsing and validation)."""

    name = fields.String(metadata={"description": "企业名称（必填，缺少时该行被拒绝）"})
    credit_code = fields.String(metadata={"description": "统一社会信用代码"})
    external_id = fields.String(metadata={"description": "外部编号"})
    status = fields.String(metadata={"description": "登记状态"})
    founded_on = fields.String(metadata={"description": "成立日期"})
    capital = fields.String(metadata={"description": "注册资本（默认单位万元，如“5000万元人民币”）"})
    province = fields.String()
    city = fields.String()
    district = fields.String()
    address = fields.String()
    legal_representative = fields.String(metadata={"description": "法定代表人"})
    phone = fields.String(metadata={"description": "电话"})
    email = fields.String(metadata={"description": "邮箱"})
    website = fields.String(metadata={"description": "网址"})
    industry_code = fields.String(metadata={"description": "国标行业代码，如 C3841"})
    industry_name = fields.String(metadata={"description": "所属行业"})
    business_scope = fields.String(metadata={"description": "经营范围"})
    main_products = fields.String(metadata={"description": "主营产品"})
    tags = fields.String(metadata={"description": "企业标签，以“；”或“,”分隔"})
    employees = fields.String(metadata={"description": "参保人数"})
    revenue = fields.String(metadata={"description": "营业收入（默认单位万元）"})
    former_names = fields.String(metadata={"description": "曾用名"})
    country = fields.String()
    data_note = fields.String(metadata={"description": "数据说明"})


class BulkUpsertInput(StrictSchema):
    rows = fields.List(fields.Nested(EnterpriseRow), required=True, validate=validate.Length(min=1, max=MAX_BULK_ROWS))
    source = fields.String(
        load_default="api", validate=validate.Length(max=100), metadata={"description": "记录在变更历史中的来源名称"}
    )


class ReportRowOut(Schema):
    line = fields.Integer(required=True, metadata={"description": "rows 中的序号，从 1 开始"})
    name = fields.String(required=True)
    identity = fields.String(required=True)
    outcome = fields.String(required=True, metadata={"description": "inserted/updated/unchanged/rejected/merged"})
    reason = fields.String(required=True)


class Counts(Schema):
    inserted = fields.Integer(required=True)
    updated = fields.Integer(required=True)
    unchanged = fields.Integer(required=True)
    rejected = fields.Integer(required=True)
    duplicates_merged = fields.Integer(required=True)


class BulkUpsertOut(Schema):
    counts = fields.Nested(Counts, required=True)
    report = fields.List(fields.Nested(ReportRowOut), required=True)
