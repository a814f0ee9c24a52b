"""Filters on scalar fields stored with each vector (region, status, tags), for backends that filter inside the
vector search (Milvus: a boolean `filter` expression) instead of taking a list of allowed ids.

A FieldFilter is a conjunction of clauses, each clause a disjunction of conditions on one field each, e.g.
"(province in [山东省] or city in [苏州市]) and status in [存续, 在业] and tags contains any of [专精特新]", with
the meaning of the SQL the web app resolves filters with (webapp/services/match/filters.py; the registry keeps an unknown
province or city as "", never NULL): "in", "not_in", "eq", "ne" compare the value, "contains_any" asks whether a
list field (tags) holds at least one of the values. An empty value ("", None) cannot be a filter value, so a firm
without a province is in no province and outside every excluded one.

`milvus_expression` writes it for Milvus (text values quoted and escaped, or as their `text_code` for the fields a
Milvus index stores as codes); `mask` evaluates it on field columns in
memory, which is how an id list is derived for backends without stored fields (faiss, numpy) and how tests check
Milvus's answer. Filters that cannot be written this way (a roster, any set of ids) stay id lists.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

OPS = ("in", "not_in", "eq", "ne", "contains_any")
EMPTY = ("", None)


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    values: tuple[Any, ...]

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"unknown filter operation {self.op!r}; use one of {OPS}")
        if not self.field.isidentifier():
            raise ValueError(f"field name {self.field!r} is not an identifier")
        if self.op in ("eq", "ne") and len(self.values) != 1:
            raise ValueError(f"{self.op} takes one value, got {len(self.values)}")


@dataclass(frozen=True)
class FieldFilter:
    """Every clause holds; a clause holds when any of its conditions does (see the module docstring)."""

    clauses: tuple[tuple[Condition, ...], ...] = ()

    def fields(self) -> set[str]:
        return {c.field for clause in self.clauses for c in clause}

    def __bool__(self) -> bool:
        return bool(self.clauses)


def condition(field: str, op: str, values: Sequence[Any] | Any) -> Condition:
    """A condition; `values` a sequence (one value for eq/ne may be given alone)."""
    if isinstance(values, (str, bytes, bool, int, float)) or not isinstance(values, Sequence):
        values = (values,)
    values = tuple(v.item() if isinstance(v, np.generic) else v for v in values)
    if any(v in EMPTY for v in values):
        raise ValueError(f"an empty value cannot be matched in a field filter (field {field!r})")
    return Condition(field, op, values)


def text_code(value: str) -> int:
    """A text value as the signed 64-bit integer a Milvus index stores for it (the first 8 bytes of its BLAKE2b
    digest; the empty text is 0). Milvus compares integers about twice as fast as text in a filtered search, and a
    code that is a function of the text needs no dictionary shared between the processes that read one collection."""
    if not value:
        return 0
    return int.from_bytes(hashlib.blake2b(value.encode("utf-8"), digest_size=8).digest(), "big", signed=True)


def _literal(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, float, np.integer, np.floating)):
        return repr(value.item() if isinstance(value, np.generic) else value)
    text = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"


def _list(values: tuple[Any, ...]) -> str:
    return "[" + ", ".join(_literal(v) for v in values) + "]"


def _coded(c: Condition) -> Condition:
    """`c` with its values as their text codes."""
    return Condition(c.field, c.op, tuple(text_code(str(v)) for v in c.values))


def _condition_expression(c: Condition) -> str:
    if c.op == "in":
        return f"{c.field} in {_list(c.values)}" if c.values else "false"
    if c.op == "eq":
        return f"{c.field} == {_literal(c.values[0])}"
    if c.op == "ne":
        return f"{c.field} != {_literal(c.values[0])}"
    if c.op == "not_in":
        return f"{c.field} not in {_list(c.values)}" if c.values else "true"
    return f"array_contains_any({c.field}, {_list(c.values)})" if c.values else "false"


def milvus_expression(flt: FieldFilter, coded: Collection[str] = ()) -> str:
    """The Milvus boolean expression of `flt` ("" when it has no clause); the values of the `coded` fields (stored
    as `text_code`s) written as their codes."""
    parts = []
    for clause in flt.clauses:
        if not clause:
            parts.append("false")  # an empty disjunction holds for nothing
            continue
        conditions = (_coded(c) if c.field in coded else c for c in clause)
        parts.append("(" + " or ".join(_condition_expression(c) for c in conditions) + ")")
    return " and ".join(parts)


def condition_mask(c: Condition, column: Sequence[Any]) -> np.ndarray:
    """Which rows of `column` (one value per row) pass condition `c`."""
    values = set(c.values)
    if c.op == "contains_any":
        return np.fromiter((bool(values.intersection(v or ())) for v in column), bool, len(column))
    passes = np.fromiter((v in values for v in column), bool, len(column))  # in, eq
    return ~passes if c.op in ("not_in", "ne") else passes


def combine(flt: FieldFilter, count: int, passing: Callable[[Condition], np.ndarray]) -> np.ndarray:
    """Which of `count` rows pass `flt`, given the rows `passing(c)` each of its conditions lets through: every clause
    holds, a clause when any of its conditions does."""
    out = np.ones(count, bool)
    for clause in flt.clauses:
        passed = np.zeros(count, bool)
        for c in clause:
            passed |= passing(c)
        out &= passed
    return out


def mask(flt: FieldFilter, columns: Mapping[str, Sequence[Any]], count: int) -> np.ndarray:
    """Which of `count` rows pass `flt`, given each field's values per row (a missing field: every value empty)."""

    def passing(c: Condition) -> np.ndarray:
        column = columns.get(c.field)
        return condition_mask(c, [None] * count if column is None else column)

    return combine(flt, count, passing)
