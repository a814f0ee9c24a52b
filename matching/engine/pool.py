"""The engine's pool: the documents by id, the row order every channel shares, and changes not yet applied.

Invariants:
- `row_ids[r]` is the document id of row r of every channel (lexical matrices, statistics samples); the pooled
  documents are `docs` in insertion order, which is row order once pending changes are applied (a replaced
  document is re-inserted at the end, as its new row is appended after the kept ones);
- `add` and `remove` only record what changes (`stale`: ids whose rows go, `added`: ids appended, the last entries
  of `docs`); the engine applies them to its channels and then to the rows on the next refresh
  (`pending_change`, `set_rows`, `clear_pending`), so a burst of updates costs one re-weighting;
- `row_ids` is replaced, never edited in place: the id → row look-up (`RowOf`) and the rows in id order are
  rebuilt on first use after a replacement (they are cached against the array they were built from).
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from matching.vectors.base import position_table

# The built-in embedder learns its vocabulary and SVD basis from at most this many profiles spread over the pool.
EMBEDDER_FIT_SAMPLE = 50_000


@dataclass(slots=True)
class Document:
    id: int
    name: str
    text: str  # profile text (matching.profiles.enterprise_profile)
    products: str = ""
    # Scalar fields stored with the document's vector where the backend filters on them (matching.engine.fields:
    # e.g. province, city, status, tags); None: the document has none.
    fields: dict[str, Any] | None = None


def indexed_text(doc: Document) -> str:
    """The text the word and character BM25 channels index: the profile plus the name and products it lacks, each its
    own segment (matching.segments)."""
    text = doc.text if doc.name in doc.text else f"{doc.name}；{doc.text}"
    if doc.products and doc.products not in text:
        text = f"{text}；{doc.products}"
    return text


def spread(n: int, size: int) -> np.ndarray:
    """`size` row positions spread evenly over 0..n-1 (all rows when n <= size)."""
    if n <= size:
        return np.arange(n, dtype=np.int64)
    return np.unique(np.linspace(0, n - 1, size).astype(np.int64))


class RowOf:
    """Document id → pool row, vectorised (a dict of a million ints would cost ≈ 100 MB)."""

    def __init__(self, row_ids: np.ndarray) -> None:
        self.row_ids = row_ids
        ids = row_ids
        # Small non-negative ids: a lookup table; else the sorted ids and their rows.
        self.table: np.ndarray | None = position_table(ids)
        self.sorted: tuple[np.ndarray, np.ndarray] | None = None
        if self.table is None:
            order = np.argsort(ids, kind="stable")
            self.sorted = (ids[order], order)

    def rows(self, ids: np.ndarray) -> np.ndarray:
        """Row of each id, -1 where unknown."""
        ids = np.asarray(ids, np.int64)
        if self.table is not None:
            out = np.full(len(ids), -1, np.int64)
            inside = (ids >= 0) & (ids < len(self.table))
            out[inside] = self.table[ids[inside]]
            return out
        assert self.sorted is not None  # no table: the sorted ids
        keys, order = self.sorted
        if not len(keys):
            return np.full(len(ids), -1, np.int64)
        pos = np.minimum(np.searchsorted(keys, ids), len(keys) - 1)
        return np.where(keys[pos] == ids, order[pos], -1)

    def get(self, doc_id: int, default: int | None = None) -> int | None:
        """Row of one id, `default` where unknown."""
        row = int(self.rows(np.asarray([doc_id]))[0])
        return default if row < 0 else row

    def __getitem__(self, doc_id: int) -> int:
        row = self.get(doc_id)
        if row is None:
            raise KeyError(doc_id)
        return row

    def __contains__(self, doc_id: int) -> bool:
        return self.get(doc_id) is not None


@dataclass
class PoolChange:
    """Pending additions and removals: which current rows stay, and the documents appended after them."""

    keep: np.ndarray  # bool per current row
    new_docs: list[Document]  # in insertion order
    rows: np.ndarray  # the row ids once applied (kept rows, then the new documents)


class Pool:
    """Documents by id and their rows (see the module docstring for the invariants)."""

    def __init__(self) -> None:
        self.docs: dict[int, Document] = {}
        self.row_ids = np.zeros(0, np.int64)
        self.stale: set[int] = set()  # ids whose rows go at the next refresh (removed or replaced)
        self.added: set[int] = set()  # ids appended at the next refresh (the last entries of docs)
        self._row_of: RowOf | None = None
        self._by_id: tuple[np.ndarray, np.ndarray] | None = None  # (row_ids it belongs to, rows in id order)

    # ---- contents -------------------------------------------------------------------------------
    def reset(self, docs: Sequence[Document]) -> None:
        """Hold exactly `docs` (a later one with the same id replaces an earlier one), rows in their order."""
        self.docs = {}
        for doc in docs:
            self.docs[int(doc.id)] = doc
        self.stale, self.added = set(), set()
        self.set_rows(self.doc_ids())

    def doc_ids(self) -> np.ndarray:
        """Every pooled document id in insertion order."""
        return np.fromiter(self.docs.keys(), dtype=np.int64, count=len(self.docs))

    def add(self, docs: Sequence[Document]) -> None:
        """Record insertions and replacements (same id replaces); rows change at the next refresh."""
        for doc in docs:
            doc_id = int(doc.id)
            if doc_id in self.docs:
                del self.docs[doc_id]  # re-inserted at the end: new rows follow the kept ones in dict order
                self.stale.add(doc_id)
            self.docs[doc_id] = doc
            self.added.add(doc_id)

    def remove(self, ids: Sequence[int]) -> list[int]:
        """Record removals; returns the ids that were pooled (unknown ids are ignored)."""
        gone = [int(i) for i in ids if int(i) in self.docs]
        for i in gone:
            del self.docs[i]
            self.stale.add(i)
            self.added.discard(i)
        return gone

    def texts(self) -> list[str]:
        """Profile texts in row order."""
        return [self.docs[int(i)].text for i in self.row_ids]

    def fit_sample(self) -> list[str]:
        """Profile texts an embedder is fitted on: at most EMBEDDER_FIT_SAMPLE, spread over the pool."""
        docs = list(self.docs.values())
        return [docs[i].text for i in spread(len(docs), EMBEDDER_FIT_SAMPLE)]

    # ---- pending changes ------------------------------------------------------------------------
    def has_pending(self) -> bool:
        """Whether additions or removals wait for the next refresh."""
        return bool(self.stale or self.added)

    def pending_change(self) -> PoolChange | None:
        """What the next refresh applies, or None when nothing is pending."""
        if not self.has_pending():
            return None
        stale = np.fromiter(self.stale, np.int64, len(self.stale))
        keep = ~np.isin(self.row_ids, stale) if len(stale) else np.ones(len(self.row_ids), bool)
        new_ids = list(itertools.islice(reversed(self.docs), len(self.added)))[::-1]
        rows = np.concatenate([self.row_ids[keep], np.asarray(new_ids, np.int64)])
        return PoolChange(keep, [self.docs[i] for i in new_ids], rows)

    def clear_pending(self) -> None:
        """Forget the pending changes once the engine has applied them."""
        self.stale, self.added = set(), set()

    def set_rows(self, row_ids: np.ndarray) -> None:
        """Replace the row order (the look-ups derived from it are rebuilt when next used)."""
        self.row_ids = row_ids
        self._row_of = None

    # ---- rows -----------------------------------------------------------------------------------
    @property
    def row_of(self) -> RowOf:
        """The id → row look-up of the current rows."""
        if self._row_of is None or self._row_of.row_ids is not self.row_ids:
            self._row_of = RowOf(self.row_ids)
        return self._row_of

    def rows_of(self, ids: Collection[int]) -> np.ndarray:
        """Pool rows of the given document ids (unknown ids dropped), vectorised: filters can hold most of the pool."""
        if isinstance(ids, np.ndarray):
            ids = ids.astype(np.int64, copy=False)
        elif isinstance(ids, (list, tuple)):
            ids = np.asarray(ids, dtype=np.int64)  # one C pass; a generator of int() costs ~10x more per id
        else:
            ids = np.fromiter(ids, np.int64, len(ids))
        rows = self.row_of.rows(ids)
        return rows[rows >= 0]

    def mask(self, allowed_ids: Collection[int] | None, excluded_ids: Collection[int] | None) -> np.ndarray:
        """Boolean pool membership per row: the allowed ids (all when None) minus the excluded ones."""
        mask = np.ones(len(self.row_ids), bool)
        if allowed_ids is not None:
            mask[:] = False
            mask[self.rows_of(allowed_ids)] = True
        if excluded_ids is not None and len(excluded_ids):
            mask[self.rows_of(excluded_ids)] = False
        return mask

    def flags(self, allowed_ids: Collection[int] | None, excluded_ids: Collection[int] | None) -> np.ndarray | None:
        """uint8 pool membership per row for sparse_topk (None: the whole pool)."""
        if allowed_ids is None and (excluded_ids is None or not len(excluded_ids)):
            return None
        return self.mask(allowed_ids, excluded_ids).view(np.uint8)

    def rows_by_id(self, count: int, flags: np.ndarray | None, skip: np.ndarray) -> np.ndarray:
        """The `count` pool rows with the smallest document ids, leaving out `skip`."""
        if self._by_id is None or self._by_id[0] is not self.row_ids:
            self._by_id = (self.row_ids, np.argsort(self.row_ids, kind="stable"))
        by_id = self._by_id[1]
        want = count + len(skip)
        while True:
            head = by_id[:want]
            if flags is not None:
                head = head[flags[head] == 1]
            head = head[~np.isin(head, skip)]
            if len(head) >= count or want >= len(by_id):
                return head[:count]
            want *= 2
