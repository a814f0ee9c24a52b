"""Float32 vector rows by id, kept on disk and memory-mapped, with an in-RAM delta for incremental updates.

The IVF-PQ index re-scores its candidates against these exact float32 vectors (matching.vectors.faiss_index,
refine "fp32"). Layout of a saved store (two .npy files beside the index file):

- `<index>.fp32.npy`: float32 rows (count, dim), sorted by id;
- `<index>.fp32.ids.npy`: the int64 ids of those rows, ascending.

Loaded memory-mapped, only the ids stay in anonymous memory (8 bytes per row; when they are a database's small ids,
their position table, 4 bytes per id up to the largest, which turns a look-up's binary search into one gather; a
tombstone mask of 1 byte per row once something is deleted); the rows are file-backed pages that the OS caches and
may drop. A mapped file is never written: `upsert` puts vectors into a small in-RAM delta (sorted ids + rows)
searched together with the mapped rows and `delete` marks mapped rows dead; `save` writes base and delta merged into
new files (replaced atomically) and, for a mapped store, maps the new file and empties the delta.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

import numpy as np

from matching.vectors.base import position_table, unique_ids
from matching.vectors.meta import IndexMismatchError, atomic_write_bytes

ROWS_SUFFIX = ".fp32.npy"
IDS_SUFFIX = ".fp32.ids.npy"
WRITE_CHUNK = 65_536  # rows copied per step when writing a store (bounds the temporary memory of a save)


def rows_path(index_path: Path) -> Path:
    index_path = Path(index_path)
    return index_path.with_name(index_path.name + ROWS_SUFFIX)


def ids_path(index_path: Path) -> Path:
    index_path = Path(index_path)
    return index_path.with_name(index_path.name + IDS_SUFFIX)


def _empty_rows(dim: int) -> np.ndarray:
    return np.zeros((0, dim), np.float32)


@dataclass(frozen=True)
class _State:
    """One consistent version of the store; replaced as a whole, so a search reading it is never half-updated."""

    base_ids: np.ndarray  # ascending int64
    base: np.ndarray  # ndarray or read-only np.memmap; row i belongs to base_ids[i]
    alive: np.ndarray | None  # bool per base row once a base row was deleted or replaced
    base_live: int
    delta_ids: np.ndarray  # ascending, disjoint from the live base ids
    delta: np.ndarray
    source: Path | None  # the rows file the base is mapped from
    base_table: np.ndarray | None = None  # base_ids' position_table (None: binary search)


class RowStore:
    """id → float32 row; base rows (in RAM or memory-mapped, sorted by id) + tombstones + an in-RAM delta.

    Updates build a new `_State` and swap it in with one assignment; look-ups read one `_State`, so a search
    running while `save` re-maps the store sees either the old or the new version. `upsert`/`delete` themselves
    must not run concurrently with each other (the engine's callers hold a lock for them)."""

    def __init__(self, dim: int) -> None:
        self.dim = int(dim)
        self.prefer_mmap = True  # after `save`, map the written file instead of keeping rows in RAM
        self._s = _State(
            np.zeros(0, np.int64), _empty_rows(self.dim), None, 0, np.zeros(0, np.int64), _empty_rows(self.dim), None
        )

    # -- building and opening ----------------------------------------------------------------------------------
    @classmethod
    def from_arrays(cls, ids: np.ndarray, vectors: np.ndarray) -> "RowStore":
        """A store holding a copy of `vectors` (rows of the unique int64 `ids`) in RAM (until saved)."""
        store = cls(vectors.shape[1])
        ids = np.asarray(ids, np.int64)
        if len(ids) < 2 or bool(np.all(ids[1:] > ids[:-1])):
            base_ids, base = ids.copy(), np.array(vectors, np.float32, order="C", copy=True)
        else:
            order = np.argsort(ids, kind="stable")
            base_ids, base = ids[order], np.ascontiguousarray(vectors[order], dtype=np.float32)
        store._s = replace(
            store._s, base_ids=base_ids, base=base, base_live=len(base_ids), base_table=position_table(base_ids)
        )
        return store

    @classmethod
    def open(cls, index_path: Path, dim: int, mmap: bool = True) -> "RowStore":
        """Read a saved store; `mmap`: map the rows file instead of reading it into RAM."""
        rpath, ipath = rows_path(index_path), ids_path(index_path)
        try:
            ids = np.load(ipath, allow_pickle=False)
            rows = np.load(rpath, mmap_mode="r" if mmap else None, allow_pickle=False)
        except FileNotFoundError as exc:
            raise IndexMismatchError(f"refine store missing: {exc.filename}") from exc
        except (OSError, ValueError) as exc:
            raise IndexMismatchError(f"refine store unreadable: {rpath}: {exc}") from exc
        if (
            ids.dtype != np.int64
            or ids.ndim != 1
            or rows.dtype != np.float32
            or rows.ndim != 2
            or rows.shape != (len(ids), int(dim))
            or (len(ids) > 1 and not np.all(ids[1:] > ids[:-1]))
        ):
            raise IndexMismatchError(
                f"refine store damaged: ids {ids.dtype}{ids.shape}, rows {rows.dtype}{rows.shape}, dim {dim}: {rpath}"
            )
        store = cls(dim)
        store.prefer_mmap = mmap
        store._s = replace(
            store._s,
            base_ids=ids,
            base=rows,
            base_live=len(ids),
            source=rpath if mmap else None,
            base_table=position_table(ids),
        )
        return store

    @property
    def mapped(self) -> bool:
        return isinstance(self._s.base, np.memmap)

    def mapped_files(self) -> list[Path]:
        """The rows file when the base rows are memory-mapped from it."""
        s = self._s
        return [s.source] if isinstance(s.base, np.memmap) and s.source is not None else []

    @property
    def changed(self) -> bool:
        """Whether the content differs from the base rows (a delta or tombstones exist)."""
        s = self._s
        return bool(len(s.delta_ids)) or s.base_live != len(s.base_ids)

    def __len__(self) -> int:
        s = self._s
        return s.base_live + len(s.delta_ids)

    def delta_count(self) -> int:
        return len(self._s.delta_ids)

    def resident_bytes(self) -> int:
        """Anonymous memory held (ids, tombstones, delta; plus the rows when not mapped)."""
        s = self._s
        total = s.base_ids.nbytes + s.delta_ids.nbytes + s.delta.nbytes
        total += sum(0 if a is None else a.nbytes for a in (s.alive, s.base_table))
        return total + (0 if isinstance(s.base, np.memmap) else s.base.nbytes)

    # -- look-ups -------------------------------------------------------------------------------------------------
    @staticmethod
    def _locate(s: _State, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(in live base, base row, in delta, delta slot) for each id (rows/slots meaningful where the mask is set)."""
        nb, nd = len(s.base_ids), len(s.delta_ids)
        if nb and s.base_table is not None:
            inside = (ids >= 0) & (ids < len(s.base_table))
            bpos = np.full(len(ids), -1, np.int64)
            bpos[inside] = s.base_table[ids[inside]]
            in_base = bpos >= 0
            bpos[~in_base] = 0
        elif nb:
            bpos = np.minimum(np.searchsorted(s.base_ids, ids), nb - 1)
            in_base = s.base_ids[bpos] == ids
        else:
            bpos, in_base = np.zeros(len(ids), np.int64), np.zeros(len(ids), bool)
        if nb and s.alive is not None:
            in_base &= s.alive[bpos]
        if nd:
            dpos = np.minimum(np.searchsorted(s.delta_ids, ids), nd - 1)
            in_delta = s.delta_ids[dpos] == ids
        else:
            dpos, in_delta = np.zeros(len(ids), np.int64), np.zeros(len(ids), bool)
        return in_base, bpos, in_delta, dpos

    def contains(self, ids: np.ndarray) -> np.ndarray:
        in_base, _, in_delta, _ = self._locate(self._s, np.asarray(ids, np.int64).reshape(-1))
        found: np.ndarray = in_base | in_delta
        return found

    def get(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rows of the present ids in the order of `ids`, float32; boolean mask of present ids)."""
        return self._get(self._s, np.asarray(ids, np.int64).reshape(-1))

    def _get(self, s: _State, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        in_base, brow, in_delta, dslot = self._locate(s, ids)
        present = in_base | in_delta
        if not in_delta.any():  # the common case: every row from the base, in the order asked
            return np.asarray(s.base[brow[in_base]], dtype=np.float32), present
        slot = np.cumsum(present) - 1  # position of each present id in the output
        out = np.empty((int(present.sum()), self.dim), np.float32)
        if in_base.any():
            out[slot[in_base]] = s.base[brow[in_base]]
        out[slot[in_delta]] = s.delta[dslot[in_delta]]
        return out, present

    def ids(self) -> np.ndarray:
        """Every live id, ascending."""
        return self._ids(self._s)

    @staticmethod
    def _ids(s: _State) -> np.ndarray:
        base = s.base_ids if s.alive is None else s.base_ids[s.alive]
        if not len(s.delta_ids):
            return base.copy()
        return np.sort(np.concatenate([base, s.delta_ids]))

    def iter_live(self, chunk: int = WRITE_CHUNK) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids, rows) of every live entry, in chunks (base rows first, then the delta)."""
        s = self._s
        for start in range(0, len(s.base_ids), chunk):
            stop = min(len(s.base_ids), start + chunk)
            ids, rows = s.base_ids[start:stop], np.asarray(s.base[start:stop])
            if s.alive is not None:
                keep = s.alive[start:stop]
                ids, rows = ids[keep], rows[keep]
            if len(ids):
                yield ids, rows
        if len(s.delta_ids):
            yield s.delta_ids, s.delta

    def search_subset(self, queries: np.ndarray, allowed: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-k by inner product among the live ids of `allowed` (padded: -1, -inf); ties by id.

        Base rows are scored where they lie (inner_products_at): gathering them first was most of the cost (29,000
        of 1M memory-mapped 384-dim rows: ~15 ms to copy them, 2.5 ms to score; ~9 ms scored in place)."""
        s = self._s
        allowed = unique_ids(allowed)
        in_base, brow, in_delta, dslot = self._locate(s, allowed)
        live = in_base | in_delta
        allowed, in_base, brow, in_delta, dslot = allowed[live], in_base[live], brow[live], in_delta[live], dslot[live]
        nq = len(queries)
        out_d = np.full((nq, k), -np.inf, np.float32)
        out_i = np.full((nq, k), -1, np.int64)
        if not len(allowed) or not k:
            return out_d, out_i
        base_rows, delta_rows = brow[in_base], (s.delta[dslot[in_delta]] if in_delta.any() else None)
        for q, query in enumerate(np.asarray(queries, np.float32)):
            d = np.empty(len(allowed), np.float32)
            d[in_base] = inner_products_at(s.base, base_rows, query)
            if delta_rows is not None:
                d[in_delta] = inner_products(delta_rows, query)
            top = np.argpartition(-d, k - 1)[:k] if len(d) > k else np.arange(len(d))
            top = top[np.lexsort((allowed[top], -d[top]))]  # allowed is ascending: ties by id
            out_d[q, : len(top)], out_i[q, : len(top)] = d[top], allowed[top]
        return out_d, out_i

    # -- updates --------------------------------------------------------------------------------------------------
    @staticmethod
    def _without(s: _State, ids: np.ndarray) -> _State:
        """`s` with `ids` tombstoned in the base and dropped from the delta."""
        nb = len(s.base_ids)
        alive, base_live = s.alive, s.base_live
        if nb:
            pos = np.minimum(np.searchsorted(s.base_ids, ids), nb - 1)
            rows = np.unique(pos[s.base_ids[pos] == ids])
            if len(rows):
                alive = np.ones(nb, bool) if alive is None else alive.copy()
                base_live -= int(alive[rows].sum())
                alive[rows] = False
        delta_ids, delta = s.delta_ids, s.delta
        if len(delta_ids):
            keep = ~np.isin(delta_ids, ids)
            if not keep.all():
                delta_ids, delta = delta_ids[keep], delta[keep]
        return replace(s, alive=alive, base_live=base_live, delta_ids=delta_ids, delta=delta)

    def upsert(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add or replace rows (the new rows go to the in-RAM delta)."""
        ids = np.asarray(ids, np.int64).reshape(-1)
        if not len(ids):
            return
        s = self._without(self._s, ids)
        all_ids = np.concatenate([s.delta_ids, ids])
        all_rows = np.concatenate([s.delta, np.asarray(vectors, np.float32).reshape(len(ids), self.dim)])
        order = np.argsort(all_ids, kind="stable")
        self._s = replace(s, delta_ids=all_ids[order], delta=np.ascontiguousarray(all_rows[order]))

    def delete(self, ids: np.ndarray) -> None:
        ids = np.asarray(ids, np.int64).reshape(-1)
        if len(ids):
            self._s = self._without(self._s, ids)

    # -- saving ---------------------------------------------------------------------------------------------------
    def save(self, index_path: Path) -> None:
        """Write the live rows, merged and sorted by id, beside `index_path` (each file replaced atomically).

        An unchanged mapped store hard-links its rows file instead of copying it when the file system allows.
        Afterwards (unless opened with mmap=False) the store maps the written file: the delta and tombstones are
        folded into it and rows built in RAM leave anonymous memory."""
        index_path = Path(index_path)
        rpath, ipath = rows_path(index_path), ids_path(index_path)
        rpath.parent.mkdir(parents=True, exist_ok=True)
        s = self._s
        live_ids = self._ids(s)
        unchanged = not len(s.delta_ids) and s.base_live == len(s.base_ids)
        if not (unchanged and s.source is not None and _same_or_linked(s.source, rpath)):
            self._write_rows(s, rpath, live_ids)
        atomic_write_bytes(ipath, _npy_bytes(live_ids))
        if self.prefer_mmap:
            rows = np.load(rpath, mmap_mode="r", allow_pickle=False)
            self._s = _State(
                live_ids,
                rows,
                None,
                len(live_ids),
                np.zeros(0, np.int64),
                _empty_rows(self.dim),
                rpath,
                position_table(live_ids),
            )

    def _write_rows(self, s: _State, rpath: Path, live_ids: np.ndarray) -> None:
        fd, tmp = tempfile.mkstemp(prefix=rpath.name + ".", suffix=".tmp", dir=rpath.parent)
        os.close(fd)
        try:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(len(live_ids), self.dim))
            for start in range(0, len(live_ids), WRITE_CHUNK):
                chunk = live_ids[start : start + WRITE_CHUNK]
                rows, present = self._get(s, chunk)
                if not present.all():  # pragma: no cover - live ids always resolve
                    raise RuntimeError("refine store lost rows while saving")
                out[start : start + len(chunk)] = rows
            out.flush()
            del out
            os.replace(tmp, rpath)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def inner_products(rows: np.ndarray, query: np.ndarray) -> np.ndarray:
    """rows @ query (float32) on the calling thread, with faiss's SIMD kernel.

    numpy's product goes to OpenBLAS, which splits a matrix-vector product of more than a few thousand rows over
    its worker threads; on the busy 2-core machine waking them cost 20+ ms (30,000 x 256: 24 ms wall / 8 ms CPU
    with OpenBLAS, 2.5 / 2.3 ms here), the same hand-off problem as faiss's OpenMP threads (SINGLE_THREAD_MAX_QUERIES
    in matching.vectors.faiss_index)."""
    import faiss

    rows = np.ascontiguousarray(rows, dtype=np.float32)
    query = np.ascontiguousarray(query, dtype=np.float32).reshape(-1)
    out = np.empty(len(rows), np.float32)
    if len(rows):
        faiss.fvec_inner_products_ny(
            faiss.swig_ptr(out), faiss.swig_ptr(query), faiss.swig_ptr(rows), rows.shape[1], len(rows)
        )
    return out


def inner_products_at(base: np.ndarray, rows: np.ndarray, query: np.ndarray) -> np.ndarray:
    """base[rows] @ query (float32), the same values as inner_products, without copying the rows out of `base`
    (an array or a read-only memory map, C-contiguous float32)."""
    import faiss

    rows = np.ascontiguousarray(rows, dtype=np.int64)
    if not (base.flags.c_contiguous and base.dtype == np.float32):
        return inner_products(base[rows], query)
    query = np.ascontiguousarray(query, dtype=np.float32).reshape(-1)
    out = np.empty(len(rows), np.float32)
    if len(rows):
        ptrs = [faiss.swig_ptr(a) for a in (out, query, base, rows)]
        faiss.fvec_inner_products_by_idx(*ptrs, base.shape[1], 1, len(rows))
    return out


def _npy_bytes(array: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def _same_or_linked(source: Path, target: Path) -> bool:
    """Make `target` the same file as `source`: already so, or hard-linked (replacing `target` atomically);
    False when `source` is gone or the file system refuses links."""
    try:
        if target.exists() and os.path.samefile(source, target):
            return True
    except OSError:
        return False
    tmp = target.with_name(f"{target.name}.{os.getpid()}.link.tmp")
    try:
        tmp.unlink(missing_ok=True)
        os.link(source, tmp)
        os.replace(tmp, target)
        return True
    except OSError:
        tmp.unlink(missing_ok=True)
        return False
