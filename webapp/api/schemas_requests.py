"""API schemas of matchmaking requests (供需对接) and their events."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from webapp.api.core import PageQuery, id_field
from webapp.api.schemas import StrictSchema, UtcDateTime
from webapp.api.schemas_leads import LeadEventOut


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
    link_key = fields.String(
        allow_none=True,
        validate=validate.Length(max=128),
        metadata={"description": "需求环节（上游环节），或改填 need_text"},
    )
    need_text = fields.String(validate=validate.Length(max=500))
    note = fields.String(load_default="", validate=validate.Length(max=2000))


class RequestStatusInput(StrictSchema):
    status = fields.String(required=True, metadata={"description": "待处理 / 对接中 / 已完成 / 已拒绝"})
    note = fields.String(validate=validate.Length(max=2000))
