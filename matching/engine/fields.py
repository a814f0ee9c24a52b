"""Scalar fields of the pooled documents (Document.fields: region, status, tags, …) and product filters over them.

Invariants:
- a document's fields are what the caller gave with it (None: none); `columns` reads them per pool row, so they are
  rebuilt when the row order is replaced (a changed document is re-added, which replaces the rows);
- `mask(flt)` is the pool rows passing a matching.vectors.filters.FieldFilter, with the filter module's meaning (a
  missing value is empty: in no listed place, outside every excluded one). The engine intersects it with the id
  sets, so the lexical channels and exact scoring see one membership whichever way a filter arrived;
- `for_index(docs)` is what a vector index that stores fields (Milvus) is given for `docs`: every field any of them
  has, a missing value written as an empty one of the field's kind ("" or []), which Milvus also fills in for a
  vector appended without fields, so Milvus's filter and `mask` agree on every row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from matching.engine.pool import Document, Pool
from matching.vectors.filters import FieldFilter, mask

MASK_CACHE_SIZE = 16  # filters whose row masks are kept per pool state (a web page set repeats a few filters)


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
        is_list = any(isinstance(v, (list, tuple, set, frozenset)) for v in values)
        empty: Any = [] if is_list else ""
        out[name] = [(list(empty) if is_list else empty) if v is None else v for v in values]
    return out


class FieldColumns:
    """Per-row field values of the pool and cached row masks of field filters."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self._rows: np.ndarray | None = None  # the row_ids the columns and masks below belong to
        self._columns: dict[str, list[Any]] = {}
        self._masks: dict[FieldFilter, np.ndarray] = {}

    def _current(self) -> None:
        if self._rows is not self._pool.row_ids:
            self._rows, self._columns, self._masks = self._pool.row_ids, {}, {}

    def column(self, name: str) -> list[Any]:
        """The value of field `name` of every pool row (None where a document has none)."""
        self._current()
        if name not in self._columns:
            docs = self._pool.docs
            self._columns[name] = [(docs[int(i)].fields or {}).get(name) for i in self._pool.row_ids]
        return self._columns[name]

    def mask(self, flt: FieldFilter) -> np.ndarray:
        """Boolean per pool row: passes `flt` (read-only; shared between calls)."""
        self._current()
        out = self._masks.get(flt)
        if out is None:
            out = mask(flt, {name: self.column(name) for name in flt.fields()}, len(self._pool.row_ids))
            out.flags.writeable = False
            if len(self._masks) >= MASK_CACHE_SIZE:
                self._masks.pop(next(iter(self._masks)))
            self._masks[flt] = out
        return out
