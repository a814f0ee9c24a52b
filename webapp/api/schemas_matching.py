"""API schemas of matching: candidates, look-alikes and feedback."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from webapp.api.core import MAX_DB_INT, MAX_LIMIT, id_field
from webapp.api.schemas import StrictSchema, UtcDateTime
from webapp.services.match.filter_fields import FILTER_FIELDS, KIND_FLAG, KIND_INTEGER, KIND_LIST, FilterField


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
    match_score = fields.Integer(
        required=True,
        allow_none=True,
        metadata={"description": "匹配度 0–100，同一企业与环节在各页面一致；关键词兜底时为空"},
    )
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


def _filter_field(f: FilterField) -> fields.Field:
    """The query parameter of one candidate filter (webapp.services.match.filter_fields)."""
    meta = {"metadata": {"description": f.label}}
    if f.kind == KIND_LIST:
        return fields.List(fields.String(), **meta)
    if f.kind == KIND_FLAG:
        return fields.Boolean(**meta)
    if f.kind == KIND_INTEGER:
        return fields.Integer(validate=validate.Range(min=0, max=MAX_DB_INT), **meta)
    return fields.Float(**meta)


# The query parameters of every candidate filter, named as the API names them.
CandidateFilterQuery = Schema.from_dict(
    {f.api: _filter_field(f) for f in FILTER_FIELDS if f.api}, name="CandidateFilterQuery"
)


class CandidatePageQuery(CandidateFilterQuery):
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0, max=MAX_LIMIT * 5))
    k = fields.Integer(load_default=20, validate=validate.Range(min=1, max=MAX_LIMIT))


class CandidatePageOut(Schema):
    cluster_id = fields.String(required=True)
    link = fields.Nested(LinkRefOut, required=True)
    offset = fields.Integer(required=True)
    k = fields.Integer(required=True)
    state = fields.String(
        required=True, metadata={"description": "ready（完整匹配）或 fallback（索引构建中，仅关键词）"}
    )
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
    label = fields.String(
        required=True,
        validate=validate.OneOf(("relevant", "not_relevant", "contacted")),
        metadata={"description": "relevant 相关 / not_relevant 不相关 / contacted 已接洽"},
    )


class FeedbackOut(Schema):
    id = fields.Integer(required=True)
    cluster_id = fields.String(required=True)
    link_key = fields.String(required=True)
    enterprise_id = fields.Integer(required=True)
    label = fields.String(required=True)
    created_at = UtcDateTime(required=True)
