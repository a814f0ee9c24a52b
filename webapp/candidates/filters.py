"""The filter form of the candidate, enterprise-search and supplier pages (GET args ↔ matchsvc filters)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from typing import Mapping

from webapp.services.match.filters import CandidateFilters

# Tags offered as checkboxes (the registry's normalised tag names).
KNOWN_TAGS = ("上市", "专精特新", '专精特新"小巨人"', "高新技术企业", "科技型中小企业", "瞪羚", "单项冠军", "500强", "外资")
MAX_LIST_VALUES = 20  # region / country names accepted per field
MAX_NAME_LENGTH = 64
MAX_CAPITAL_WAN = 1e9
LIST_FIELDS = ("provinces", "cities", "countries", "exclude_provinces", "exclude_cities")
FLAG_FIELDS = ("active_only", "exclude_cluster_firms", "exclude_cluster_city", "exclude_cluster_province")
_SPLIT = re.compile(r"[，,、；;\s]+")


def supported(name: str) -> bool:
    """Whether the match service understands filter `name` (only those are offered in the form)."""
    return name in {f.name for f in fields(CandidateFilters)}


@dataclass
class FilterForm:
    """The form's values; `submitted` is False on a first visit, when the defaults apply."""

    values: dict = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def text(self, name: str) -> str:
        value = self.values.get(name)
        if isinstance(value, list):
            return "、".join(value)
        return "" if value is None else _fmt(value)

    def has(self, name: str, item: str) -> bool:
        return item in (self.values.get(name) or [])

    def on(self, name: str) -> bool:
        return bool(self.values.get(name))

    def service_filters(self) -> CandidateFilters:
        data = {k: v for k, v in self.values.items() if supported(k)}
        return CandidateFilters.from_mapping(data)

    def query_args(self) -> dict:
        """The filters as query-string arguments (pagination links keep them)."""
        args: dict = {"f": "1"}
        for name, value in self.values.items():
            if name in FLAG_FIELDS:
                if value:
                    args[name] = "1"
            elif isinstance(value, list):
                if value:
                    args[name] = value if name == "tags" else "、".join(value)
            elif value is not None and value != "":
                args[name] = _fmt(value)
        return args


def _fmt(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _names(value: str) -> list[str]:
    out: list[str] = []
    for part in _SPLIT.split(value or ""):
        part = part.strip()[:MAX_NAME_LENGTH]
        if part and part not in out:
            out.append(part)
    return out[:MAX_LIST_VALUES]


def _number(value: str, label: str, errors: list[str]) -> float | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        errors.append(f"{label}必须是数字（单位：万元）")
        return None
    if not 0 <= number <= MAX_CAPITAL_WAN:
        errors.append(f"{label}超出范围")
        return None
    return number


def parse_filters(args: Mapping, defaults: dict | None = None) -> FilterForm:
    """The form from request args (a MultiDict); a first visit (no `f`) gets `defaults`."""
    base = {"active_only": True, "exclude_cluster_firms": True}
    base.update(defaults or {})
    if not args.get("f"):
        return FilterForm(values=base)
    errors: list[str] = []
    values: dict = {}
    for name in LIST_FIELDS:
        values[name] = _names(args.get(name, ""))
    getlist = getattr(args, "getlist", lambda key: [args[key]] if key in args else [])
    values["tags"] = [t for t in getlist("tags") if t in KNOWN_TAGS]
    for name in FLAG_FIELDS:
        values[name] = args.get(name) in ("1", "on", "true")
    values["capital_min"] = _number(args.get("capital_min", ""), "注册资本下限", errors)
    values["capital_max"] = _number(args.get("capital_max", ""), "注册资本上限", errors)
    if values["capital_min"] is not None and values["capital_max"] is not None \
            and values["capital_min"] > values["capital_max"]:
        errors.append("注册资本下限不能大于上限")
    return FilterForm(values=values, errors=errors)
