"""Turn one raw table row ({field key: cell}) into Enterprise column values, with errors and warnings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import String

from chains.enterprise_models import Enterprise
from chains.enterprises import capital as cap
from chains.enterprises import normalize as nz
from chains.enterprises.creditcode import credit_code_error, normalize_credit_code
from chains.enterprises.import_fields import CONTACT_FIELDS

# Column lengths of chains.enterprise_models.Enterprise, read from the model; longer input is cut, not rejected.
MAX_LENGTHS = {
    column.name: column.type.length
    for column in Enterprise.__table__.columns
    if isinstance(column.type, String) and column.type.length
}
DEMO_MARK = "演示数据"
SYNTHETIC_MARK = "合成数据"


@dataclass
class ParsedRow:
    values: dict[str, Any] = field(default_factory=dict)  # only the fields given (non-empty) in the row
    tags: list[str] | None = None  # None: no tag cell in this row
    errors: list[str] = field(default_factory=list)  # any error rejects the row
    warnings: list[str] = field(default_factory=list)

    @property
    def identity(self) -> tuple[str, str]:
        """(kind, key): credit code, else external id, else normalised name + city."""
        if self.values.get("credit_code"):
            return "credit_code", self.values["credit_code"]
        if self.values.get("external_id"):
            return "external_id", self.values["external_id"]
        return "name", f"{self.values.get('name_norm', '')}|{self.values.get('city', '')}"


def identity_label(identity: tuple[str, str]) -> str:
    kind, key = identity
    labels = {"credit_code": "信用代码", "external_id": "外部编号", "name": "名称+城市"}
    return f"{labels[kind]}:{key}"


def _unit(units: dict[str, str], key: str) -> str:
    """元 when the header says the column is in 元 (e.g. 注册资本（元）), else 万."""
    unit = units.get(key, "")
    return cap.UNIT_YUAN if "元" in unit and "万" not in unit and "亿" not in unit else cap.UNIT_WAN


def parse_row(raw: dict[str, Any], units: dict[str, str] | None = None) -> ParsedRow:
    """Parse one row; never raises on any cell content."""
    units = units or {}
    row = ParsedRow()
    v = row.values
    texts = {key: nz.clean_text(cell) for key, cell in raw.items()}

    name = nz.clean_name(texts.get("name"))
    if not name:
        row.errors.append("缺少企业名称")
    else:
        v["name"] = name[: MAX_LENGTHS["name"]]
        v["name_norm"] = nz.name_key(name)[: MAX_LENGTHS["name_norm"]]

    code_raw = texts.get("credit_code")
    if code_raw:
        code = normalize_credit_code(code_raw)
        problem = credit_code_error(code)
        if problem:
            row.errors.append(f"{problem}：{code_raw[:40]}")
        else:
            v["credit_code"] = code

    for key in (
        "external_id",
        "district",
        "address",
        *CONTACT_FIELDS,
        "business_scope",
        "main_products",
        "country",
        "data_note",
    ):
        text = texts.get(key)
        if text:
            v[key] = text[: MAX_LENGTHS[key]] if key in MAX_LENGTHS else text
    if texts.get("province"):
        v["province"] = nz.normalize_province(texts["province"])[: MAX_LENGTHS["province"]]
    if texts.get("city"):
        v["city"] = nz.normalize_city(texts["city"])[: MAX_LENGTHS["city"]]

    status_raw = texts.get("status")
    if status_raw:
        v["status_raw"] = status_raw[: MAX_LENGTHS["status_raw"]]
        v["status"] = nz.normalize_status(status_raw)

    if texts.get("founded_on"):
        parsed_date = nz.parse_date(raw["founded_on"])
        if parsed_date is None:
            row.warnings.append(f"成立日期无法识别，已忽略：{texts['founded_on'][:40]}")
        else:
            v["founded_on"] = parsed_date

    if texts.get("capital"):
        capital = cap.parse_capital(raw["capital"], _unit(units, "capital"))
        if capital is None:
            row.warnings.append(f"注册资本无法识别，已忽略：{texts['capital'][:40]}")
        else:
            v["capital_amount"], v["capital_currency"], v["capital_wan_cny"] = (
                capital.amount_wan,
                capital.currency,
                capital.wan_cny,
            )

    if texts.get("revenue"):
        revenue = cap.parse_capital(raw["revenue"], _unit(units, "revenue"))
        if revenue is None:
            row.warnings.append(f"营业收入无法识别，已忽略：{texts['revenue'][:40]}")
        else:
            v["revenue_wan"] = revenue.wan_cny

    if texts.get("employees"):
        employees = nz.parse_int(raw["employees"])
        if employees is None:
            row.warnings.append(f"参保人数无法识别，已忽略：{texts['employees'][:40]}")
        else:
            v["employees"] = employees

    industry_name = texts.get("industry_name", "")
    code_text = texts.get("industry_code", "")
    industry = nz.parse_industry_code(code_text or industry_name)
    if industry is not None:
        v["industry_section"], v["industry_division"] = industry.section, industry.division
        v["industry_group"], v["industry_class"] = industry.group, industry.klass
        if not code_text:
            industry_name = nz.industry_name_from(industry_name)
    elif code_text:
        row.warnings.append(f"国标行业代码无法识别，已忽略：{code_text[:40]}")
    if industry_name:
        v["industry_name"] = industry_name[: MAX_LENGTHS["industry_name"]]

    if texts.get("former_names"):
        v["former_names"] = nz.parse_list(texts["former_names"])
    if texts.get("tags"):
        row.tags = nz.parse_tags(texts["tags"])

    note = v.get("data_note", "")
    if note:
        v["is_demo"] = DEMO_MARK in note
        v["is_synthetic"] = SYNTHETIC_MARK in note
    return row
