"""The NumPy backend ("numpy"): exact inner-product search over float32 rows held in RAM.

For small pools and tests, and as the reference a vector service plugs in beside (matching.vectors.registry): no
faiss, no compression, no approximate step. Every search scores every (allowed) stored vector, so it costs
O(count × dim) per query and 4 × dim bytes of RAM per vector; above a few hundred thousand vectors use "faiss".
It is always of kind "flat" (exact); `make_vector_index(…, backend="numpy")` ignores `exact_max` and `refine`.

Invariants: `_data` is (ids, rows): ids ascending and unique, rows[i] the vector of ids[i]; `index`, `append` and
`delete` replace the pair with one assignment and never edit it in place, so a search reads one consistent version
(updates themselves must not run concurrently with each other). Ties in score are ordered by id ascending, so
results are a total order. Saved as one .npz file (ids and rows) at the index path, metadata beside it (matching.vectors.meta).
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from matching.vectors.base import KIND_FLAT, VectorIndex, as_ids, caller_metadata, now, search_arrays, unique_ids
from matching.vectors.meta import IndexMismatchError, atomic_write_bytes, check_meta, meta_path, read_meta, write_meta


class NumpyIndex(VectorIndex):
    """Exact inner product over numpy rows sorted by id (see the module docstring)."""

    kind = KIND_FLAT
    backend = "numpy"

    def __init__(self, dim: int) -> None:
        super().__init__(dim)
        self._data = (np.zeros(0, np.int64), np.zeros((0, self.dim), np.float32))

    def _set(self, ids: np.ndarray, rows: np.ndarray) -> None:
        order = np.argsort(ids, kind="stable")
        self._data = (ids[order], np.ascontiguousarray(rows[order]))

    def index(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids, vectors = self._check(ids, vectors)
        self._set(ids.copy(), vectors.copy())
        self.built_at = now()

    def append(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids, vectors = self._check(ids, vectors)
        if not len(ids):
            return
        have, rows = self._data
        keep = ~np.isin(have, ids)
        self._set(np.concatenate([have[keep], ids]), np.concatenate([rows[keep], vectors]))

    def delete(self, ids: np.ndarray) -> None:
        ids = as_ids(ids)
        if len(ids):
            have, rows = self._data
            keep = ~np.isin(have, ids)
            self._data = (have[keep], rows[keep])

    def __len__(self) -> int:
        return len(self._data[0])

    def ids(self) -> np.ndarray:
        return self._data[0].copy()

    @staticmethod
    def _positions(have: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row of each id among the stored ids `have`, mask of the ids present); rows are meaningful where the
        mask is set."""
        if not len(have):
            return np.zeros(len(ids), np.int64), np.zeros(len(ids), bool)
        pos = np.minimum(np.searchsorted(have, ids), len(have) - 1)
        return pos, have[pos] == ids

    def vectors(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        have, rows = self._data
        pos, present = self._positions(have, as_ids(ids))
        return rows[pos[present]], present

    def search(
        self, queries: np.ndarray, k: int, allowed_ids: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        queries, k, scores, found = search_arrays(queries, self.dim, k)
        ids, rows = self._data
        if allowed_ids is not None:
            pos, present = self._positions(ids, unique_ids(allowed_ids))
            ids, rows = ids[pos[present]], rows[pos[present]]  # still ascending: allowed ids were sorted
        if not k or not len(ids):
            return scores, found
        for q, s in enumerate(queries @ rows.T):
            top = _best(s, k)
            scores[q, : len(top)], found[q, : len(top)] = s[top], ids[top]
        return scores, found

    def save(self, path: Path) -> None:
        path = Path(path)
        buffer = io.BytesIO()
        ids, rows = self._data
        np.savez(buffer, ids=ids, rows=rows)
        atomic_write_bytes(path, buffer.getvalue())
        write_meta(
            meta_path(path),
            {
                **self.metadata,
                "backend": self.backend,
                "kind": self.kind,
                "dim": self.dim,
                "count": len(self),
                "built_at": self.built_at,
            },
        )

    @classmethod
    def load(
        cls, path: Path, expected: Mapping[str, Any] | None = None, mmap_store: bool | None = None
    ) -> "NumpyIndex":
        """Read an index `save` wrote (`mmap_store` is accepted for the common signature: rows are always in RAM)."""
        path = Path(path)
        meta = read_meta(meta_path(path))
        check_meta(meta, expected)
        if not isinstance(meta.get("dim"), int):
            raise IndexMismatchError(f"index metadata lacks dim: {path}")
        try:
            with np.load(path, allow_pickle=False) as data:
                ids, rows = data["ids"], data["rows"]
        except FileNotFoundError as exc:
            raise IndexMismatchError(f"index file missing: {path}") from exc
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, AttributeError) as exc:
            raise IndexMismatchError(f"index file unreadable: {path}: {exc}") from exc
        index = cls(meta["dim"])
        if (
            ids.dtype != np.int64
            or rows.dtype != np.float32
            or rows.shape != (len(ids), index.dim)
            or len(ids) != meta.get("count")
            or (len(ids) > 1 and not np.all(ids[1:] > ids[:-1]))
        ):
            raise IndexMismatchError(f"index file does not match its metadata: {path}")
        index._data = (ids, np.ascontiguousarray(rows))
        index.built_at = meta.get("built_at", "")
        index.metadata = caller_metadata(meta)
        return index


def _best(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k highest scores, best first, ties by position (= by id, rows being sorted by id)."""
    if k < len(scores):
        cutoff = scores[np.argpartition(-scores, k - 1)[k - 1]]
        candidates = np.flatnonzero(scores >= cutoff)  # every score tied with the k-th, so ties cut by id
    else:
        candidates = np.arange(len(scores))
    return candidates[np.argsort(-scores[candidates], kind="stable")[:k]]
