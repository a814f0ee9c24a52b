"""The one table of candidate filter fields, read by the filter form, the API's query schema and the CLI's options.

Each field of `CandidateFilters` is listed once with its kind and its name in each vocabulary: the form uses the
field's own name (checkbox semantics), the API and the CLI their public names, where a flag may be stated the other
way round (`any_status` = not `active_only`). `webapp/candidates/filters.py` parses the form from it,
`webapp/api/schemas_matching.py` builds the query schema from it and `webapp/cli/match.py` its options, and
`CandidateFilters.from_mapping` coerces values by their kind; a test checks that the table covers every field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

KIND_LIST = "list"  # any-of names (regions, countries, tags)
KIND_FLAG = "flag"
KIND_NUMBER = "number"  # 万元 amounts
KIND_INTEGER = "integer"  # counts

MAX_CAPITAL_WAN = 1e9  # upper bound of a capital filter, 万元


@dataclass(frozen=True)
class FilterField:
    """One CandidateFilters field: `name` is its attribute (and the form's name); `api` / `cli` its public names
    (None: not offered there); `inverted` when the public flag states the opposite of the attribute."""

    name: str
    kind: str
    api: str | None
    cli: str | None
    label: str  # Chinese, for the form's errors and the API's description
    help: str  # English, for `chainmatch match --help`
    inverted: bool = False


FILTER_FIELDS: tuple[FilterField, ...] = (
    FilterField(
        "provinces", KIND_LIST, "province", "--province", "省份（任一）", "Only firms in this province (repeatable)."
    ),
    FilterField("cities", KIND_LIST, "city", "--city", "城市（任一）", "Only firms in this city (repeatable)."),
    FilterField(
        "countries", KIND_LIST, "country", "--country", "国家（任一）", "Only firms in this country (repeatable)."
    ),
    FilterField(
        "tags",
        KIND_LIST,
        "tag",
        "--tag",
        "企业标签（任一）",
        "Only firms with any of these tags, e.g. 专精特新 (repeatable).",
    ),
    FilterField(
        "exclude_provinces",
        KIND_LIST,
        "exclude_provinces",
        "--exclude-provinces",
        "排除这些省份的企业",
        "Leave out firms in this province (repeatable; firms with no province stay).",
    ),
    FilterField(
        "exclude_cities",
        KIND_LIST,
        "exclude_cities",
        "--exclude-cities",
        "排除这些城市的企业",
        "Leave out firms in this city (repeatable; firms with no city stay).",
    ),
    FilterField(
        "capital_min",
        KIND_NUMBER,
        "capital_min",
        "--capital-min",
        "注册资本下限",
        "Minimum registered capital, 万元人民币.",
    ),
    FilterField(
        "capital_max",
        KIND_NUMBER,
        "capital_max",
        "--capital-max",
        "注册资本上限",
        "Maximum registered capital, 万元人民币.",
    ),
    FilterField(
        "employees_min",
        KIND_INTEGER,
        "employees_min",
        "--employees-min",
        "参保人数下限",
        "Minimum number of insured employees.",
    ),
    FilterField(
        "employees_max",
        KIND_INTEGER,
        "employees_max",
        "--employees-max",
        "参保人数上限",
        "Maximum number of insured employees.",
    ),
    FilterField(
        "exclude_cluster_firms",
        KIND_FLAG,
        "include_cluster_firms",
        "--include-cluster-firms",
        "包含集聚区已有企业",
        "Keep firms already on the cluster's roster.",
        inverted=True,
    ),
    FilterField(
        "exclude_cluster_city",
        KIND_FLAG,
        "exclude_city",
        "--exclude-city",
        "排除集聚区所在城市的企业",
        "Leave out firms in the cluster's own city.",
    ),
    FilterField(
        "exclude_cluster_province",
        KIND_FLAG,
        "exclude_province",
        "--exclude-province",
        "排除集聚区所在省份的企业",
        "Leave out firms in the cluster's own province.",
    ),
    FilterField(
        "active_only",
        KIND_FLAG,
        "any_status",
        "--any-status",
        "包含非存续企业",
        "Include firms that are not 存续/在业.",
        inverted=True,
    ),
)
FIELDS_BY_NAME = {f.name: f for f in FILTER_FIELDS}
RANGES = (("capital_min", "capital_max"), ("employees_min", "employees_max"))  # (lower, upper) pairs


def public_values(values: Mapping[str, Any], vocabulary: str) -> dict[str, Any]:
    """CandidateFilters field values from values keyed by the API's (`vocabulary="api"`) or the CLI's parameter
    names (`"cli"`: the option's name without dashes, in snake case). A flag that is false or absent leaves the
    field at its default, as do empty lists and missing numbers."""
    out: dict[str, Any] = {}
    for f in FILTER_FIELDS:
        public = getattr(f, vocabulary)
        if public is None:
            continue
        key = public.lstrip("-").replace("-", "_")
        value = values.get(key)
        if f.kind == KIND_FLAG:
            if value:
                out[f.name] = not f.inverted
        elif f.kind == KIND_LIST:
            if value:
                out[f.name] = tuple(value)
        elif value is not None:
            out[f.name] = value
    return out


def range_errors(values: Mapping[str, Any]) -> list[str]:
    """Chinese messages for ranges whose lower bound is above the upper one."""
    errors = []
    for low, high in RANGES:
        if values.get(low) is not None and values.get(high) is not None and values[low] > values[high]:
            errors.append(f"{FIELDS_BY_NAME[low].label}不能大于上限")
    return errors
