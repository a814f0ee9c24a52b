"""The filter form of the candidate, enterprise-search and supplier pages (GET args ↔ matchsvc filters)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping

from webapp.services.match.filter_fields import (
    FIELDS_BY_NAME,
    FILTER_FIELDS,
    KIND_FLAG,
    KIND_INTEGER,
    KIND_LIST,
    MAX_CAPITAL_WAN,
    range_errors,
)
from webapp.services.match.filters import CandidateFilters

# Tags offered as checkboxes (the registry's normalised tag names).
KNOWN_TAGS = (
    "上市",
    "专精特新",
    '专精特新"小巨人"',
    "高新技术企业",
    "科技型中小企业",
    "瞪羚",
    "单项冠军",
    "500强",
    "外资",
)
MAX_LIST_VALUES = 20  # region / country names accepted per field
MAX_NAME_LENGTH = 64
MAX_EMPLOYEES = 10_000_000
FLAG_FIELDS = tuple(f.name for f in FILTER_FIELDS if f.kind == KIND_FLAG)
_SPLIT = re.compile(r"[，,、；;\s]+")


def supported(name: str) -> bool:
    """Whether the match service understands filter `name` (only those are offered in the form)."""
    return name in FIELDS_BY_NAME


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


def _number(value: str, label: str, errors: list[str], integer: bool = False) -> float | int | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        number = int(value) if integer else float(value)
    except ValueError:
        errors.append(f"{label}必须是整数" if integer else f"{label}必须是数字（单位：万元）")
        return None
    if not 0 <= number <= (MAX_EMPLOYEES if integer else MAX_CAPITAL_WAN):
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
    getlist = getattr(args, "getlist", lambda key: [args[key]] if key in args else [])
    for f in FILTER_FIELDS:  # webapp.services.match.filter_fields: the form uses each field's own name
        if f.name == "tags":  # checkboxes of the known tags
            values[f.name] = [t for t in getlist(f.name) if t in KNOWN_TAGS]
        elif f.kind == KIND_LIST:
            values[f.name] = _names(args.get(f.name, ""))
        elif f.kind == KIND_FLAG:
            values[f.name] = args.get(f.name) in ("1", "on", "true")
        else:
            values[f.name] = _number(args.get(f.name, ""), f.label, errors, integer=f.kind == KIND_INTEGER)
    errors.extend(range_errors(values))
    return FilterForm(values=values, errors=errors)
