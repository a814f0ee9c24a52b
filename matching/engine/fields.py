"""Scalar fields of the pooled documents (Document.fields: region, status, tags, …) and product filters over them.

Invariants:
- a document's fields are what the caller gave with it (None: none); `columns` reads them per pool row, so they are
  rebuilt when the row order is replaced (a changed document is re-added, which replaces the rows);
- `mask(flt)` is the pool rows passing a matching.vectors.filters.FieldFilter, with the filter module's meaning (a
  missing value is empty: in no listed place, outside every excluded one). The engine intersects it with the id
  sets, so the lexical channels and exact scoring see one membership whichever way a filter arrived. A column is
  read once per pool state into integer codes (scalar fields) or rows per item (list fields such as tags), so a
  new filter costs a numpy pass over the codes, not a Python loop over the rows (≈ 90 ms per filter at 1M firms),
  and each condition's mask is kept, as filters share conditions (the status beside each region);
- `for_index(docs)` is what a vector index that stores fields (Milvus) is given for `docs`: every field any of them
  has, a missing value written as an empty one of the field's kind ("" or []), which Milvus also fills in for a
  vector appended without fields, so Milvus's filter and `mask` agree on every row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from matching.engine.pool import Document, Pool
from matching.vectors.filters import Condition, FieldFilter, combine, condition_mask

MASK_CACHE_SIZE = 16  # filters whose row masks are kept per pool state (a web page set repeats a few filters)
# Conditions whose row masks are kept per pool state: filters share conditions ("active" beside each region), so a
# new filter often only needs its region's. At 1M rows each mask is 1 MB.
CONDITION_CACHE_SIZE = 32
# A scalar condition listing at most this many values compares the row codes with each (~0.15 ms per value at 1M
# rows); more values look every row's code up in a table (~3 ms). np.isin took 5–6 ms for one or two values.
COMPARE_MAX_VALUES = 8
LIST_TYPES = (list, tuple, set, frozenset)  # a field holding these is a list field (tags)


def for_index(docs: Sequence[Document]) -> dict[str, list[Any]] | None:
    """The fields of `docs` as columns for VectorIndex.index/append (None: no document has fields)."""
    names: dict[str, None] = {}
    for doc in docs:
        names.update(dict.fromkeys(doc.fields or ()))
    if not names:
        return None
    out: dict[str, list[Any]] = {}
    for name in names:
        values = [(doc.fields or {}).get(name) for doc in docs]
        is_list = any(isinstance(v, LIST_TYPES) for v in values)
        empty: Any = [] if is_list else ""
        out[name] = [(list(empty) if is_list else empty) if v is None else v for v in values]
    return out


class CodedColumn:
    """One field of every pool row, coded for filtering: a scalar field as integer codes (value → code), a list
    field as the rows holding each item."""

    def __init__(self, values: list[Any]) -> None:
        self.values = values
        self.count = len(values)
        self.codes: dict[Any, int] = {}
        self.rows_by_item: dict[Any, np.ndarray] = {}
        self.row_codes = np.zeros(0, np.int32)
        # One pass codes a scalar column; a list or set value (unhashable) or a tuple among the distinct values
        # makes it a list column (a million rows: ~0.3 s less than checking every value's type first).
        try:
            codes = self.codes
            self.row_codes = np.fromiter((codes.setdefault(v, len(codes)) for v in values), np.int32, self.count)
            self.is_list = any(isinstance(v, LIST_TYPES) for v in codes)
        except TypeError:
            self.is_list = True
        if self.is_list:
            self.codes, self.row_codes = {}, np.zeros(0, np.int32)
            rows: dict[Any, list[int]] = {}
            for row, value in enumerate(values):
                for item in set(value or ()):  # a text in a list column counts by its characters, as in `mask`
                    rows.setdefault(item, []).append(row)
            self.rows_by_item = {item: np.asarray(r, np.int64) for item, r in rows.items()}

    def condition(self, c: Condition) -> np.ndarray:
        """Rows passing `c`, as matching.vectors.filters.condition_mask decides over the plain values."""
        if c.op == "contains_any" and self.is_list:
            out = np.zeros(self.count, bool)
            for item in set(c.values):
                rows = self.rows_by_item.get(item)
                if rows is not None:
                    out[rows] = True
            return out
        if c.op == "contains_any" or self.is_list:  # no coded form: the plain values, as the filter module does
            return condition_mask(c, self.values)
        present = sorted({self.codes[v] for v in c.values if v in self.codes})
        if len(present) <= COMPARE_MAX_VALUES:
            passes = np.zeros(self.count, bool)
            for code in present:
                passes |= self.row_codes == code
        else:
            table = np.zeros(len(self.codes), bool)
            table[present] = True
            passes = table[self.row_codes]
        return ~passes if c.op in ("not_in", "ne") else passes


class FieldColumns:
    """Per-row field values of the pool and cached row masks of field filters."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self._rows: np.ndarray | None = None  # the row_ids the columns and masks below belong to
        self._columns: dict[str, CodedColumn] = {}
        self._masks: dict[FieldFilter, np.ndarray] = {}
        self._conditions: dict[Condition, np.ndarray] = {}

    def _current(self) -> None:
        if self._rows is not self._pool.row_ids:
            self._rows, self._columns, self._masks, self._conditions = self._pool.row_ids, {}, {}, {}

    def column(self, name: str) -> CodedColumn:
        """Field `name` of every pool row (None where a document has none), coded for filtering."""
        self._current()
        if name not in self._columns:
            docs = self._pool.docs
            self._columns[name] = CodedColumn([(docs[i].fields or {}).get(name) for i in self._pool.row_ids.tolist()])
        return self._columns[name]

    def prepare(self, names: Iterable[str]) -> None:
        """Code the columns of fields `names` now rather than in the first search filtering on them (~0.3 s each
        at 1M rows)."""
        for name in names:
            self.column(name)

    def mask(self, flt: FieldFilter) -> np.ndarray:
        """Boolean per pool row: passes `flt` (read-only; shared between calls)."""
        self._current()
        out = self._masks.get(flt)
        if out is None:
            out = combine(flt, len(self._pool.row_ids), self._condition)
            out.flags.writeable = False
            if len(self._masks) >= MASK_CACHE_SIZE:
                self._masks.pop(next(iter(self._masks)))
            self._masks[flt] = out
        return out

    def _condition(self, c: Condition) -> np.ndarray:
        """Rows passing one condition (read-only; cached)."""
        out = self._conditions.get(c)
        if out is None:
            out = self.column(c.field).condition(c)
            out.flags.writeable = False
            if len(self._conditions) >= CONDITION_CACHE_SIZE:
                self._conditions.pop(next(iter(self._conditions)))
            self._conditions[c] = out
        return out
