"""API schemas of clusters: summaries, indicators, gap analysis, evaluation, the N lists."""

from __future__ import annotations

from marshmallow import Schema, fields


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
    list_type = fields.List(
        fields.String(),
        data_key="list",
        metadata={
            "description": "清单类型（可重复）：leaders, suppliers, weak_links, "
            "strong_links, targets, projects, key_tech"
        },
    )
