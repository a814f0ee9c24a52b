"""Marshmallow schemas of the API: the shared base, errors, paging and the account.

Each resource's schemas are in `schemas_<resource>.py` (chains, clusters, enterprises, matching, leads, requests,
register): request validation, response serialisation and the OpenAPI components.
"""

from __future__ import annotations

from datetime import datetime, timezone

from marshmallow import RAISE, Schema, fields

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


# ----------------------------------------------------------------------------- account


class MeOut(Schema):
    id = fields.Integer(required=True)
    username = fields.String(required=True)
    display_name = fields.String(required=True)
    role = fields.String(required=True)
    clusters = fields.Method("_clusters", required=True)
    enterprise_id = fields.Integer(required=True, allow_none=True)

    def _clusters(self, user) -> list[str]:
        return sorted(user.cluster_ids())
