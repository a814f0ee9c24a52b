"""Schemas of the shared target register, coordination requests and progress entries."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from webapp.api.schemas import MAX_TEXT, StrictSchema, UtcDateTime
from webapp.api.schemas_leads import ClaimHolderOut


class RegisterQuery(Schema):
    cluster = fields.String(
        validate=validate.Length(max=64), metadata={"description": "只看该集聚区首报或参与竞争的企业"}
    )
    conflicts = fields.Boolean(load_default=False, metadata={"description": "只看有第二报（冲突）的企业"})


class RegisterRowOut(Schema):
    holder = fields.Nested(ClaimHolderOut, required=True, attribute="lead")
    enterprise_id = fields.Integer(required=True, attribute="lead.enterprise_id")
    enterprise_name = fields.String(required=True, attribute="lead.enterprise.name")
    age_days = fields.Integer(required=True, metadata={"description": "首报至今的天数"})
    protected_until = fields.Date(required=True, metadata={"description": "首谈保护截止日（无进展时）"})
    protected = fields.Boolean(required=True)
    conflicts = fields.List(fields.Nested(ClaimHolderOut), required=True, metadata={"description": "第二报线索"})
    pending = fields.Integer(required=True, metadata={"description": "待裁定的协调申请数"})


class CoordinationOut(Schema):
    id = fields.Integer(required=True)
    lead = fields.Nested(ClaimHolderOut, required=True, metadata={"description": "申请方线索"})
    holder_lead = fields.Nested(ClaimHolderOut, required=True, allow_none=True, metadata={"description": "原首报线索"})
    reason = fields.String(required=True, allow_none=True, metadata={"description": "协调理由（仅申请方与管理员可见）"})
    status = fields.String(required=True, metadata={"description": "pending / approved / rejected"})
    decision_note = fields.String(required=True)
    decided_at = UtcDateTime(required=True, allow_none=True)
    created_at = UtcDateTime(required=True)


class CoordinationInput(StrictSchema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=MAX_TEXT))


class DecisionInput(StrictSchema):
    decision = fields.String(required=True, validate=validate.OneOf(("approve", "reject")))
    note = fields.String(load_default="", validate=validate.Length(max=MAX_TEXT))


class ProgressInput(StrictSchema):
    text = fields.String(required=True, validate=validate.Length(min=1, max=MAX_TEXT))


class FundingOut(Schema):
    id = fields.Integer(required=True)
    amount_wan = fields.Float(required=True)
    received_on = fields.Date(required=True)
    note = fields.String(required=True)


class WhatIfRuleOut(Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)
    unit = fields.String(required=True)
    threshold = fields.Float(required=True, allow_none=True)
    before = fields.Float(required=True, allow_none=True)
    after = fields.Float(required=True, allow_none=True)
    passed_before = fields.Boolean(required=True, allow_none=True)
    passed_after = fields.Boolean(required=True, allow_none=True)


class WhatIfOut(Schema):
    mode = fields.String(required=True, metadata={"description": "what-if（按计划投资）/ actual（落地后按到位资金）"})
    year = fields.Integer(required=True)
    rules = fields.List(fields.Nested(WhatIfRuleOut), required=True)
    fixed_investment = fields.List(
        fields.Float(allow_none=True), required=True, metadata={"description": "[当前, 计入项目]"}
    )
    tax = fields.List(fields.Float(allow_none=True), required=True, metadata={"description": "[当前, 计入项目]"})


class ProjectOut(Schema):
    lead_id = fields.Integer(required=True)
    investment_wan = fields.Float(required=True, allow_none=True)
    land_mu = fields.Float(required=True, allow_none=True)
    tax_per_mu_wan = fields.Float(required=True, allow_none=True)
    intensity_wan_per_mu = fields.Float(required=True, allow_none=True)
    energy_tce = fields.Float(required=True, allow_none=True)
    eia_class = fields.String(required=True)
    signed_on = fields.Date(required=True, allow_none=True)
    started_on = fields.Date(required=True, allow_none=True)
    producing_on = fields.Date(required=True, allow_none=True)
    funds_wan = fields.Float(required=True)
    funds = fields.List(fields.Nested(FundingOut), required=True)
    state = fields.String(
        required=True, allow_none=True, metadata={"description": "签约未开工 / 开工未到资 / 在建 / 已投产"}
    )
    state_days = fields.Integer(required=True, allow_none=True)
    what_if = fields.Nested(WhatIfOut, required=True, allow_none=True)


def _amount() -> fields.Float:
    return fields.Float(allow_none=True, allow_nan=False, validate=validate.Range(min=0, max=1e8))


class ProjectInput(StrictSchema):
    investment_wan = _amount()
    land_mu = _amount()
    tax_per_mu_wan = _amount()
    intensity_wan_per_mu = _amount()
    energy_tce = _amount()
    eia_class = fields.String(validate=validate.OneOf(("", "报告书", "报告表", "登记表")))
    signed_on = fields.Date(allow_none=True)
    started_on = fields.Date(allow_none=True)
    producing_on = fields.Date(allow_none=True)


class FundingInput(StrictSchema):
    amount_wan = fields.Float(
        required=True, allow_nan=False, validate=validate.Range(min=0, max=1e8, min_inclusive=False)
    )
    received_on = fields.Date(required=True)
    note = fields.String(load_default="", validate=validate.Length(max=MAX_TEXT))


class KpiQuery(Schema):
    period = fields.String(validate=validate.Length(max=10), metadata={"description": "考核期，如 2026Q4"})
