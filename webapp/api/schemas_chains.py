"""API schemas of chains: summaries, links, supply edges, chain map import."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from webapp.api.schemas import StrictSchema


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
