"""API schemas of leads: the pipeline, its events and claim holders."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from webapp.api.core import MAX_DB_INT, PageQuery, id_field
from webapp.api.schemas import MAX_TEXT, StrictSchema, UtcDateTime


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
    claim_holder = fields.Nested(
        "ClaimHolderOut",
        required=True,
        allow_none=True,
        metadata={"description": "第二报时：持有首报的线索（不含其备注）"},
    )
    planned_investment_wan = fields.Float(
        required=True, allow_none=True, metadata={"description": "计划投资额（万元）"}
    )
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
    stage = fields.String(
        required=True, metadata={"description": "候选 / 已接洽 / 实地考察 / 洽谈 / 签约 / 落地 / 放弃"}
    )
    reason = fields.String(
        load_default="",
        validate=validate.Length(max=MAX_TEXT),
        metadata={"description": "放弃原因（阶段为“放弃”时必填）"},
    )
