"""Schemas of the shared target register, coordination requests and progress entries."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from webapp.api.schemas import MAX_TEXT, ClaimHolderOut, StrictSchema, UtcDateTime


class RegisterQuery(Schema):
    cluster = fields.String(validate=validate.Length(max=64), metadata={"description": "只看该集聚区首报或参与竞争的企业"})
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
