"""Marshmallow schemas of the API: request validation, response serialisation and the OpenAPI components."""
from __future__ import annotations

from datetime import datetime, timezone

from marshmallow import RAISE, Schema, fields, validate, validates_schema, ValidationError

from webapp.api.core import MAX_DB_INT, MAX_LIMIT, PageQuery, id_field

MAX_BULK_ROWS = 1000  # rows per bulk upsert call: one transaction of bounded size
MAX_TEXT = 4000


class UtcDateTime(fields.DateTime):
    """ISO 8601 with a UTC offset even when the database returns a naive value (SQLite)."""

    def _serialize(self, value, attr, obj, **kwargs):
        if isinstance(value, datetime) and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return super()._serialize(value, attr, obj, **kwargs)


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


# ----------------------------------------------------------------------------- errors and paging

class ErrorDetail(Schema):
    code = fields.String(required=True, metadata={"description": "机器可读的错误代码，如 not_found、validation_error"})
    message = fields.String(required=True, metadata={"description": "中文错误说明"})
    details = fields.Raw(required=True, metadata={"description": "附加信息（校验错误按字段列出）"})


class Error(Schema):
    error = fields.Nested(ErrorDetail, required=True)


class PageMeta(Schema):
    page = fields.Integer(required=True)
    limit = fields.Integer(required=True)
    total = fields.Integer(required=True)
    pages = fields.Integer(required=True)


# ----------------------------------------------------------------------------- chains

class ChainSummary(Schema):
    id = fields.String(required=True)
    name = fields.String(required=True)
    sector = fields.String(required=True)
    version = fields.Integer(required=True, allow_none=True)
    links = fields.Integer(required=True)
    depth = fields.Integer(required=True)


class Link(Schema):
    id = fields.String(required=True, attribute="key")
    parent_id = fields.String(required=True, allow_none=True, attribute="parent_key")
    name = fields.String(required=True)
    stage = fields.String(required=True)
    depth = fields.Integer(required=True)
    description = fields.String(required=True)
    keywords = fields.List(fields.String(), required=True)
    synonyms = fields.List(fields.String(), required=True)
    products = fields.List(fields.String(), required=True)
    industry_codes = fields.List(fields.String(), required=True)
    key_tech = fields.Boolean(required=True)
    key_tech_note = fields.String(required=True)


class SupplyEdgeOut(Schema):
    from_id = fields.String(required=True, attribute="from_key", data_key="from")
    to_id = fields.String(required=True, attribute="to_key", data_key="to")
    note = fields.String(required=True)


class ChainDetail(Schema):
    id = fields.String(required=True)
    name = fields.String(required=True)
    sector = fields.String(required=True)
    description = fields.String(required=True)
    version = fields.Integer(required=True, allow_none=True)
    declared_version = fields.String(required=True)
    source = fields.String(required=True)
    links = fields.List(fields.Nested(Link), required=True)
    supply = fields.List(fields.Nested(SupplyEdgeOut), required=True)


class ChainInput(StrictSchema):
    """A chain map as YAML text (`yaml`) or as the same document in JSON (`document`); exactly one."""

    yaml = fields.String(metadata={"description": "产业链图谱 YAML 文本（格式见 docs/chain-format.md）"})
    document = fields.Dict(metadata={"description": "与 YAML 相同结构的 JSON 对象"})

    @validates_schema
    def _one_of(self, data, **kwargs):
        if ("yaml" in data) == ("document" in data):
            raise ValidationError("请提供 yaml 或 document 之一。")


class ChainImportOut(Schema):
    chain_id = fields.String(required=True)
    version = fields.Integer(required=True)
    links = fields.Integer(required=True)
    created = fields.Boolean(required=True, metadata={"description": "写入了新版本"})
    unchanged = fields.Boolean(required=True, metadata={"description": "与当前版本相同，未写入"})


class LinkQuery(Schema):
    stage = fields.String(validate=validate.OneOf(("上游", "中游", "下游")))


# ----------------------------------------------------------------------------- clusters, gaps, evaluation, lists

class ClusterSummary(Schema):
    id = fields.String(required=True)
    name = fields.String(required=True)
    province = fields.String(required=True)
    city = fields.String(required=True)
    cluster_type = fields.String(required=True)
    chains = fields.List(fields.String(), required=True)
    firms = fields.Integer(required=True)


class Indicator(Schema):
    year = fields.Integer(required=True)
    output_value = fields.Float(required=True, allow_none=True)
    revenue = fields.Float(required=True, allow_none=True)
    tax = fields.Float(required=True, allow_none=True)
    fixed_investment = fields.Float(required=True, allow_none=True)
    leading_revenue = fields.Float(required=True, allow_none=True)
    source = fields.String(required=True)


class RosterFirm(Schema):
    enterprise_id = fields.Integer(required=True)
    name = fields.String(required=True, attribute="enterprise.name")
    role = fields.String(required=True)


class ClusterDetail(ClusterSummary):
    district = fields.String(required=True)
    leading_industry = fields.String(required=True)
    area_mu = fields.Float(required=True, allow_none=True)
    area_km2 = fields.Float(required=True, allow_none=True)
    description = fields.String(required=True)
    data_note = fields.String(required=True)
    is_demo = fields.Boolean(required=True)
    indicators = fields.List(fields.Nested(Indicator), required=True)
    roster = fields.List(fields.Nested(RosterFirm), required=True)


class GapQuery(Schema):
    chain = fields.String(metadata={"description": "只分析该产业链"})


class GapFirm(Schema):
    enterprise_id = fields.Integer(required=True)
    name = fields.String(required=True)
    role = fields.String(required=True)
    revenue_wan = fields.Float(required=True, allow_none=True)
    direct = fields.Boolean(required=True)


class GapLink(Schema):
    link_id = fields.String(required=True)
    name = fields.String(required=True)
    stage = fields.String(required=True)
    depth = fields.Integer(required=True)
    parent_id = fields.String(required=True, allow_none=True)
    is_leaf = fields.Boolean(required=True)
    key_tech = fields.Boolean(required=True)
    status = fields.String(required=True, metadata={"description": "空白 / 薄弱 / 一般 / 优势"})
    firms = fields.Integer(required=True)
    direct_firms = fields.Integer(required=True)
    revenue_wan = fields.Float(required=True)
    revenue_known = fields.Integer(required=True)
    has_leader = fields.Boolean(required=True)
    firm_list = fields.List(fields.Nested(GapFirm), required=True)


class Rollup(Schema):
    links = fields.Integer(required=True)
    leaf_links = fields.Integer(required=True)
    covered_leaf_links = fields.Integer(required=True)
    counts = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    leaf_counts = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    local_rate = fields.Float(required=True, allow_none=True, metadata={"description": "本地配套率 0–1"})
    weighted_local_rate = fields.Float(required=True, allow_none=True)
    firms = fields.Integer(required=True)
    revenue_wan = fields.Float(required=True)


class Thresholds(Schema):
    weak_max = fields.Integer(required=True)
    strong_min = fields.Integer(required=True)


class ChainGapOut(Schema):
    chain_id = fields.String(required=True)
    chain_name = fields.String(required=True)
    version = fields.Integer(required=True, allow_none=True)
    thresholds = fields.Nested(Thresholds, required=True)
    links = fields.List(fields.Nested(GapLink), required=True)
    stages = fields.Dict(keys=fields.String(), values=fields.Nested(Rollup), required=True)
    rollup = fields.Nested(Rollup, required=True)


class GapsOut(Schema):
    cluster_id = fields.String(required=True)
    chains = fields.List(fields.Nested(ChainGapOut), required=True)


class RuleOut(Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)
    value = fields.Float(required=True, allow_none=True)
    unit = fields.String(required=True)
    threshold = fields.Float(required=True, allow_none=True)
    target = fields.Float(required=True, allow_none=True)
    passed = fields.Boolean(required=True, allow_none=True)
    met_target = fields.Boolean(required=True, allow_none=True)
    explanation = fields.String(required=True)
    source = fields.String(required=True)
    year = fields.Integer(required=True, allow_none=True)
    alternative_of = fields.String(required=True, allow_none=True)


class EvaluationOut(Schema):
    cluster_id = fields.String(required=True)
    cluster_name = fields.String(required=True)
    year = fields.Integer(required=True, allow_none=True)
    passed = fields.Boolean(required=True, allow_none=True)
    rules = fields.List(fields.Nested(RuleOut), required=True)


class ListEntryOut(Schema):
    id = fields.Integer(required=True)
    item_key = fields.String(required=True)
    enterprise_id = fields.Integer(required=True, allow_none=True)
    link_key = fields.String(required=True, allow_none=True)
    source = fields.String(required=True)
    pinned = fields.Boolean(required=True)
    removed = fields.Boolean(required=True)
    note = fields.String(required=True)
    data = fields.Dict(required=True)


class ListOut(Schema):
    list_type = fields.String(required=True)
    title = fields.String(required=True)
    entries = fields.List(fields.Nested(ListEntryOut), required=True)


class ListsOut(Schema):
    cluster_id = fields.String(required=True)
    chain_id = fields.String(required=True)
    lists = fields.List(fields.Nested(ListOut), required=True)


class ListsQuery(Schema):
    list_type = fields.List(fields.String(), data_key="list",
                            metadata={"description": "清单类型（可重复）：leaders, suppliers, weak_links, "
                                                     "strong_links, targets, projects, key_tech"})


# ----------------------------------------------------------------------------- enterprises

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


_ROW_FIELDS = ("name", "credit_code", "external_id", "status", "founded_on", "capital", "province", "city",
               "district", "address", "industry_code", "industry_name", "business_scope", "main_products", "tags",
               "employees", "revenue", "former_names", "country", "data_note")


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
    rows = fields.List(fields.Nested(EnterpriseRow), required=True,
                       validate=validate.Length(min=1, max=MAX_BULK_ROWS))
    source = fields.String(load_default="api", validate=validate.Length(max=100),
                           metadata={"description": "记录在变更历史中的来源名称"})


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


# ----------------------------------------------------------------------------- matching

class LinkRefOut(Schema):
    chain_id = fields.String(required=True)
    key = fields.String(required=True)
    name = fields.String(required=True)
    score = fields.Float(required=True, allow_none=True, metadata={"description": "匹配度 0–100（最契合环节时）"})


class SimilarLocal(Schema):
    enterprise_id = fields.Integer(required=True)
    name = fields.String(required=True)
    similarity = fields.Float(required=True, metadata={"description": "相似度 0–100"})


class CandidateOut(Schema):
    enterprise_id = fields.Integer(required=True)
    name = fields.String(required=True)
    rank = fields.Integer(required=True)
    score = fields.Float(required=True, metadata={"description": "融合得分（各通道 z 分数加权和）"})
    match_score = fields.Integer(required=True, allow_none=True,
                                 metadata={"description": "匹配度 0–100，同一企业与环节在各页面一致；关键词兜底时为空"})
    evidence = fields.String(required=True, metadata={"description": "证据强度：strong / medium / weak"})
    evidence_label = fields.String(required=True, metadata={"description": "证据强度：强 / 中 / 弱"})
    province = fields.String(required=True)
    city = fields.String(required=True)
    region = fields.String(required=True)
    country = fields.String(required=True)
    status = fields.String(required=True)
    tags = fields.List(fields.String(), required=True)
    channels = fields.Dict(keys=fields.String(), values=fields.Float(), required=True)
    matched_terms = fields.List(fields.String(), required=True)
    matched_products = fields.List(fields.String(), required=True)
    best_link = fields.Nested(LinkRefOut, required=True, allow_none=True)
    similar_local = fields.Nested(SimilarLocal, required=True, allow_none=True)
    explanation = fields.List(fields.String(), required=True, metadata={"description": "中文匹配理由"})


class CandidateFilterQuery(Schema):
    province = fields.List(fields.String(), metadata={"description": "省份（任一）"})
    city = fields.List(fields.String(), metadata={"description": "城市（任一）"})
    country = fields.List(fields.String(), metadata={"description": "国家（任一）"})
    tag = fields.List(fields.String(), metadata={"description": "企业标签（任一）"})
    capital_min = fields.Float()
    capital_max = fields.Float()
    employees_min = fields.Integer(validate=validate.Range(min=0, max=MAX_DB_INT))
    employees_max = fields.Integer(validate=validate.Range(min=0, max=MAX_DB_INT))
    exclude_city = fields.Boolean(metadata={"description": "排除集聚区所在城市的企业"})
    exclude_province = fields.Boolean()
    include_cluster_firms = fields.Boolean(metadata={"description": "包含集聚区已有企业"})
    any_status = fields.Boolean(metadata={"description": "包含非存续企业"})


class CandidateQuery(CandidateFilterQuery):
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0, max=MAX_LIMIT * 5))
    k = fields.Integer(load_default=20, validate=validate.Range(min=1, max=MAX_LIMIT))


class CandidatePageOut(Schema):
    cluster_id = fields.String(required=True)
    link = fields.Nested(LinkRefOut, required=True)
    offset = fields.Integer(required=True)
    k = fields.Integer(required=True)
    state = fields.String(required=True, metadata={"description": "ready（完整匹配）或 fallback（索引构建中，仅关键词）"})
    message = fields.String(required=True)
    embedder = fields.String(required=True)
    filters = fields.Dict(required=True)
    items = fields.List(fields.Nested(CandidateOut), required=True)


class LookAlikeQuery(CandidateFilterQuery):
    k = fields.Integer(load_default=10, validate=validate.Range(min=1, max=MAX_LIMIT))


class LookAlikesOut(Schema):
    enterprise_id = fields.Integer(required=True)
    items = fields.List(fields.Nested(CandidateOut), required=True)


class FeedbackInput(StrictSchema):
    link_key = fields.String(required=True, validate=validate.Length(min=1, max=128))
    enterprise_id = id_field(required=True)
    label = fields.String(required=True, validate=validate.OneOf(("relevant", "not_relevant", "contacted")),
                          metadata={"description": "relevant 相关 / not_relevant 不相关 / contacted 已接洽"})


class FeedbackOut(Schema):
    id = fields.Integer(required=True)
    cluster_id = fields.String(required=True)
    link_key = fields.String(required=True)
    enterprise_id = fields.Integer(required=True)
    label = fields.String(required=True)
    created_at = UtcDateTime(required=True)


# ----------------------------------------------------------------------------- leads

class LeadEventOut(Schema):
    id = fields.Integer(required=True)
    at = UtcDateTime(required=True)
    user_id = fields.Integer(required=True, allow_none=True)
    field = fields.String(required=True)
    old = fields.String(required=True, allow_none=True)
    new = fields.String(required=True, allow_none=True)


class LeadOut(Schema):
    id = fields.Integer(required=True)
    cluster_id = fields.String(required=True)
    chain_id = fields.String(required=True, allow_none=True)
    link_key = fields.String(required=True, allow_none=True)
    enterprise_id = fields.Integer(required=True)
    enterprise_name = fields.String(required=True, attribute="enterprise.name")
    stage = fields.String(required=True)
    abandon_reason = fields.String(required=True)
    owner_id = fields.Integer(required=True, allow_none=True)
    next_step = fields.String(required=True)
    next_step_date = fields.Date(required=True, allow_none=True)
    notes = fields.String(required=True)
    feedback = fields.String(required=True)
    claim = fields.String(required=True, metadata={"description": "首报登记：first（首报）/ second（第二报）"})
    claim_holder = fields.Nested("ClaimHolderOut", required=True, allow_none=True,
                                 metadata={"description": "第二报时：持有首报的线索（不含其备注）"})
    planned_investment_wan = fields.Float(required=True, allow_none=True, metadata={"description": "计划投资额（万元）"})
    created_at = UtcDateTime(required=True)
    updated_at = UtcDateTime(required=True)


class ClaimHolderOut(Schema):
    """Another cluster's lead as the register shows it: who, since when, which stage — never its notes."""

    lead_id = fields.Integer(required=True, attribute="id")
    cluster_id = fields.String(required=True)
    cluster_name = fields.String(required=True, attribute="cluster.name")
    stage = fields.String(required=True)
    since = UtcDateTime(required=True, allow_none=True, attribute="claim_since", metadata={"description": "首报时间"})


class LeadDetailOut(LeadOut):
    events = fields.List(fields.Nested(LeadEventOut), required=True, metadata={"description": "变更历史"})


class LeadQuery(PageQuery):
    cluster = fields.String()
    stage = fields.String()
    owner = fields.Integer(validate=validate.Range(min=1, max=MAX_DB_INT))
    enterprise_id = fields.Integer(validate=validate.Range(min=1, max=MAX_DB_INT))


class LeadCreateInput(StrictSchema):
    cluster_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    enterprise_id = id_field(required=True)
    chain_id = fields.String(allow_none=True, validate=validate.Length(max=64))
    link_key = fields.String(allow_none=True, validate=validate.Length(max=128))


class LeadUpdateInput(StrictSchema):
    owner_id = id_field(allow_none=True)
    next_step = fields.String(validate=validate.Length(max=MAX_TEXT))
    next_step_date = fields.Date(allow_none=True)
    notes = fields.String(validate=validate.Length(max=MAX_TEXT))
    planned_investment_wan = fields.Float(allow_none=True, allow_nan=False, validate=validate.Range(min=0, max=1e8))


class LeadStageInput(StrictSchema):
    stage = fields.String(required=True, metadata={"description": "候选 / 已接洽 / 实地考察 / 洽谈 / 签约 / 落地 / 放弃"})
    reason = fields.String(load_default="", validate=validate.Length(max=MAX_TEXT),
                           metadata={"description": "放弃原因（阶段为“放弃”时必填）"})


# ----------------------------------------------------------------------------- matchmaking requests

class RequestEventOut(LeadEventOut):
    pass


class RequestOut(Schema):
    id = fields.Integer(required=True)
    requester_id = fields.Integer(required=True)
    requester_name = fields.String(required=True, attribute="requester.name")
    supplier_id = fields.Integer(required=True)
    supplier_name = fields.String(required=True, attribute="supplier.name")
    cluster_id = fields.String(required=True)
    chain_id = fields.String(required=True, allow_none=True)
    link_key = fields.String(required=True, allow_none=True)
    need_text = fields.String(required=True)
    status = fields.String(required=True, metadata={"description": "待处理 / 对接中 / 已完成 / 已拒绝"})
    note = fields.String(required=True)
    created_at = UtcDateTime(required=True)
    updated_at = UtcDateTime(required=True)


class RequestDetailOut(RequestOut):
    events = fields.List(fields.Nested(RequestEventOut), required=True)


class RequestQuery(PageQuery):
    status = fields.String()
    cluster = fields.String()


class RequestCreateInput(StrictSchema):
    supplier_id = id_field(required=True)
    cluster_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    link_key = fields.String(allow_none=True, validate=validate.Length(max=128),
                             metadata={"description": "需求环节（上游环节），或改填 need_text"})
    need_text = fields.String(validate=validate.Length(max=500))
    note = fields.String(load_default="", validate=validate.Length(max=2000))


class RequestStatusInput(StrictSchema):
    status = fields.String(required=True, metadata={"description": "待处理 / 对接中 / 已完成 / 已拒绝"})
    note = fields.String(validate=validate.Length(max=2000))


class MeOut(Schema):
    id = fields.Integer(required=True)
    username = fields.String(required=True)
    display_name = fields.String(required=True)
    role = fields.String(required=True)
    clusters = fields.Method("_clusters", required=True)
    enterprise_id = fields.Integer(required=True, allow_none=True)

    def _clusters(self, user) -> list[str]:
        return sorted(user.cluster_ids())
