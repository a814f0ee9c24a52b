"""The enterprise fields an import compares and writes; a new firm's values for the fields its row leaves empty."""

from __future__ import annotations

from typing import Any

# A firm's contacts as registry exports give them (法定代表人, 电话, 邮箱, 网址): plain text, "" when unknown.
CONTACT_FIELDS = ("legal_representative", "phone", "email", "website")
# Fields compared and written; bookkeeping fields (source_file, as_of, timestamps) never count as changes.
DATA_FIELDS = (
    "name",
    "name_norm",
    "credit_code",
    "external_id",
    "former_names",
    "status",
    "status_raw",
    "founded_on",
    "capital_amount",
    "capital_currency",
    "capital_wan_cny",
    "province",
    "city",
    "district",
    "address",
    *CONTACT_FIELDS,
    "industry_section",
    "industry_division",
    "industry_group",
    "industry_class",
    "industry_name",
    "business_scope",
    "main_products",
    "employees",
    "revenue_wan",
    "country",
    "data_note",
    "is_demo",
    "is_synthetic",
)
# Values of a new enterprise for the fields its row leaves empty.
INSERT_DEFAULTS: dict[str, Any] = {
    "credit_code": None,
    "external_id": None,
    "former_names": [],
    "status": "",
    "status_raw": "",
    "founded_on": None,
    "capital_amount": None,
    "capital_currency": "",
    "capital_wan_cny": None,
    "province": "",
    "city": "",
    "district": "",
    "address": "",
    **{key: "" for key in CONTACT_FIELDS},
    "industry_section": "",
    "industry_division": "",
    "industry_group": "",
    "industry_class": "",
    "industry_name": "",
    "business_scope": "",
    "main_products": "",
    "employees": None,
    "revenue_wan": None,
    "country": "中国",
    "data_note": "",
    "is_demo": False,
    "is_synthetic": False,
}
