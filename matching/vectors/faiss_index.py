"""The faiss backend ("faiss", the default): exact flat search for small pools, IVF-PQ with exact re-scoring above.

Vectors are L2-normalised float32 rows, so inner product is cosine similarity. Small pools use an exact
`IndexIDMap2(IndexFlatIP)`; large pools an `IndexIVFPQFastScan` (4-bit PQ codes in RAM) whose candidates are
re-scored exactly (the refine step) against float32 copies of the vectors kept on disk and memory-mapped
(matching.vectors.row_store): RAM holds the PQ codes and ids only, the page cache the rows that searches touch.
Incremental appends and deletes work on a mapped store (an in-RAM delta and tombstones, folded into the file on
save). Older indexes re-scored against SQ8 or fp16 copies in a faiss store (refine "sq8"/"fp16") still load.
faiss itself is imported only when an index is used, so importing this module stays cheap.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from matching.vectors.base import (
    BASE_META_KEYS,
    KIND_FLAT,
    KIND_IVFPQ,
    VectorIndex,
    as_ids,
    caller_metadata,
    now,
    search_arrays,
)
from matching.vectors.meta import IndexMismatchError, atomic_write_bytes, check_meta, meta_path, read_meta, write_meta
from matching.vectors.row_store import RowStore, ids_path, inner_products, rows_path

# IVF-PQ tuning. PQ candidates fetched before re-scoring: PQ at 4 bits is coarse, the exact re-score fixes order.
# At least MIN_CANDIDATES (10 per hit of a top-100 search: near-duplicate profiles need that many for the top 10),
# and CANDIDATES_PER_HIT per wanted hit beyond that: the engine asks for 1,000 dense hits, and the PQ top 2,000
# contains the PQ top 1,000 that a top-100 search re-scores, so its first hits are as good while re-scoring
# 2,000 rather than 10,000 rows (each a page read from the memory-mapped store when not cached).
MIN_CANDIDATES = 2000
CANDIDATES_PER_HIT = 2
MIN_TRAIN_PER_LIST = 39  # faiss warns below 39 training points per centroid
LISTS_PER_SQRT_N = 4  # nlist ≈ 4·√n, the usual faiss guideline
MIN_NPROBE = 16
NPROBE_SHARE = 1 / 16  # probe this share of the lists by default
MAX_TRAIN_POINTS = 200_000
PQ_BITS = 4  # fast-scan needs 4-bit codes
# Precision of the refine copies. "fp32" (default): the float32 vectors in a memory-mapped file (4 bytes/dim on
# disk, ids only in RAM), appendable. "sq8" (1 byte/dim) / "fp16" (2 bytes/dim): compressed copies in a faiss
# store held in RAM (mappable read-only). On near-duplicate profiles compressed copies reorder near-ties: recall@10
# of the exact top-10 ids at 1M synthetic firms 0.738 (sq8), 0.847 (fp16) vs fp32 in docs/performance.md.
REFINE_FP32 = "fp32"
REFINE_SQ8 = "sq8"
REFINE_FP16 = "fp16"
REFINE_KINDS = (REFINE_FP32, REFINE_SQ8, REFINE_FP16)
DEFAULT_REFINE = REFINE_FP32
# A filter that allows fewer than this share of the pool is searched exhaustively over the refine copies: IVF
# probing would often miss the few allowed vectors, and scanning a small allowed set is cheap.
FILTER_EXACT_SHARE = 0.25
# ...and, over the float32 rows, at most this many ids: a float32 row is 4x the bytes of the SQ8 copy the share was
# tuned on, and above 5,000 allowed ids at 1M firms IVF probing with the id selector is faster at the same recall
# (5,000: 5.4 vs 3.2 ms, 40,000: 26.7 vs 13.7 ms, recall@10 1.0 both; bench/vector_choices.py filters).
FILTER_EXACT_MAX_ROWS = 5000
# faiss fast-scan lists lose vectors added after a `remove_ids` (faiss 1.15), so the IVF is never edited in place:
# deleted or replaced entries stay in it as stale candidates (the refine store is the truth and drops them), and the
# lists are re-filled from the store once stale entries exceed this share of the live ones.
MAX_STALE_SHARE = 0.25
# Searches of up to this many queries run on one OpenMP thread: a single query gains little from a second thread,
# and on a busy machine (a web server under load, other processes) faiss's spinning worker threads made a 100k flat
# search 7x slower (114 ms vs 16 ms, docs/performance.md). The setting is per calling thread (OpenMP ICV), so index
# builds in other threads keep all cores.
SINGLE_THREAD_MAX_QUERIES = 16


class FaissIndex(VectorIndex):
    """faiss backend: exact flat IP for kind "flat", IVF-PQ fast-scan + exact re-scoring for kind "ivfpq"."""

    backend = "faiss"

    def __init__(
        self,
        dim: int,
        kind: str = KIND_FLAT,
        nlist: int | None = None,
        nprobe: int | None = None,
        refine: str = DEFAULT_REFINE,
    ) -> None:
        if kind not in (KIND_FLAT, KIND_IVFPQ):
            raise ValueError(f"unknown vector index kind {kind!r}")
        if refine not in REFINE_KINDS:
            raise ValueError(f"unknown refine precision {refine!r}; use one of {REFINE_KINDS}")
        super().__init__(dim)
        self.kind = kind
        self.refine = refine
        self.nlist = nlist
        self.nprobe = nprobe
        # A faiss index (untyped), or None. flat: IDMap2(FlatIP); ivfpq: IVFPQFastScan (ids in the inverted lists)
        self._main: Any = None
        # ivfpq only, the copies used for re-scoring and small filtered searches: refine "fp32" a RowStore
        # (self._rows), "sq8"/"fp16" a faiss IDMap2(ScalarQuantizer) (self._store).
        self._store: Any = None
        self._rows: RowStore | None = None
        self._live_sorted: np.ndarray | None = None  # ivfpq with a faiss store: cached sorted ids of the store
        self._store_mapped = False  # a faiss store read with IO_FLAG_MMAP_IFC: read-only
        if kind == KIND_FLAT:
            import faiss

            self._main = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))

    # -- building ---------------------------------------------------------------------------------------------
    def _train_ivf(self, vectors: np.ndarray) -> None:
        import faiss

        n = len(vectors)
        nlist = self.nlist or LISTS_PER_SQRT_N * int(math.sqrt(max(n, 1)))
        nlist = max(1, min(nlist, n // MIN_TRAIN_PER_LIST or 1))
        self.nlist = nlist
        self.nprobe = self.nprobe or min(nlist, max(MIN_NPROBE, int(nlist * NPROBE_SHARE)))
        m = self.dim // 2 if self.dim % 2 == 0 else self.dim  # 2 dims per 4-bit sub-quantiser
        quantizer = faiss.IndexFlatIP(self.dim)
        ivf = faiss.IndexIVFPQFastScan(quantizer, self.dim, nlist, m, PQ_BITS, faiss.METRIC_INNER_PRODUCT)
        sample = vectors
        if n > MAX_TRAIN_POINTS:
            rng = np.random.default_rng(0)
            sample = vectors[rng.choice(n, MAX_TRAIN_POINTS, replace=False)]
        ivf.train(sample)
        self._main = ivf
        if self.refine == REFINE_FP32:
            return
        store = faiss.IndexIDMap2(
            faiss.IndexScalarQuantizer(
                self.dim,
                faiss.ScalarQuantizer.QT_fp16 if self.refine == REFINE_FP16 else faiss.ScalarQuantizer.QT_8bit,
                faiss.METRIC_INNER_PRODUCT,
            )
        )
        store.train(sample)
        self._store = store

    def index(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids, vectors = self._check(ids, vectors)
        if self.kind == KIND_FLAT:
            import faiss

            self._main = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
        else:
            self._main = self._store = self._rows = None
            if len(ids):
                self._train_ivf(vectors)
        if len(ids):
            self._main.add_with_ids(vectors, ids)
            if self._store is not None:
                self._store.add_with_ids(vectors, ids)
            if self.kind == KIND_IVFPQ and self.refine == REFINE_FP32:
                self._rows = RowStore.from_arrays(ids, vectors)
        self._live_sorted = None
        self.built_at = now()

    def _check_writable(self) -> None:
        # faiss aborts the whole process (assertion 'is_owned', not an exception) when a mapped store is changed.
        if self._store_mapped:
            raise RuntimeError(
                f"the {self.refine} refine store is memory-mapped read-only; load it with "
                "mmap_store=False to change it, or rebuild with the fp32 refine store"
            )

    def append(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids, vectors = self._check(ids, vectors)
        if not len(ids):
            return
        self._check_writable()
        if self._main is None:  # an IVF index that never had data: train on this batch
            self.index(ids, vectors)
            return
        self.delete(ids)
        self._main.add_with_ids(vectors, ids)
        if self._rows is not None:
            self._rows.upsert(ids, vectors)
            self._compact_if_stale()
        elif self._store is not None:
            self._store.add_with_ids(vectors, ids)
            self._live_sorted = None
            self._compact_if_stale()

    def delete(self, ids: np.ndarray) -> None:
        import faiss

        ids = as_ids(ids)
        if not len(ids) or self._main is None:
            return
        self._check_writable()
        if self.kind == KIND_FLAT:
            self._main.remove_ids(faiss.IDSelectorBatch(ids))
            return
        if self._rows is not None:
            self._rows.delete(ids)
        else:
            self._store.remove_ids(faiss.IDSelectorBatch(ids))
            self._live_sorted = None
        self._compact_if_stale()

    def _compact_if_stale(self) -> None:
        """Re-fill the IVF lists from the store when too many stale entries accumulated (training is kept)."""
        live = len(self)
        if self._main.ntotal - live <= MAX_STALE_SHARE * max(live, 1):
            return
        self._main.reset()
        if self._rows is not None:
            for ids, rows in self._rows.iter_live():
                self._main.add_with_ids(np.ascontiguousarray(rows), ids)
        elif live:
            self._main.add_with_ids(self._store.index.reconstruct_n(0, live), self.ids())

    def _live(self) -> np.ndarray:
        if self._live_sorted is None:
            self._live_sorted = np.sort(self.ids())
        return self._live_sorted

    def __len__(self) -> int:
        if self._main is None:
            return 0
        if self._rows is not None:
            return len(self._rows)
        return int(self._main.ntotal if self.kind == KIND_FLAT else self._store.ntotal)

    def mapped_files(self) -> list[Path]:
        return self._rows.mapped_files() if self._rows is not None else []

    def ids(self) -> np.ndarray:
        import faiss

        if self._main is None:
            return np.zeros(0, dtype=np.int64)
        if self._rows is not None:
            return self._rows.ids()
        holder = self._main if self.kind == KIND_FLAT else self._store
        stored: np.ndarray = faiss.vector_to_array(holder.id_map)
        return stored.astype(np.int64)

    def vectors(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(stored vectors of the present ids, float32 (n_present, dim); boolean mask of present ids over `ids`).

        Lets look-alike searches reuse a firm's indexed vector instead of encoding its text again (ivfpq: the
        refine copies, the same vectors the refine step scores with)."""
        ids = as_ids(ids)
        present = np.zeros(len(ids), bool)
        if self._main is None or not len(ids):
            return np.zeros((0, self.dim), np.float32), present
        if self._rows is not None:
            return self._rows.get(ids)
        holder = self._main if self.kind == KIND_FLAT else self._store
        try:
            out = holder.reconstruct_batch(ids)
            present[:] = True
        except RuntimeError:  # an unknown id: reconstruct one by one and keep the known ones
            rows = []
            for n, i in enumerate(ids):
                try:
                    rows.append(holder.reconstruct(int(i)))
                    present[n] = True
                except RuntimeError:
                    continue
            out = np.asarray(rows, np.float32).reshape(-1, self.dim)
        return np.ascontiguousarray(out, dtype=np.float32), present

    # -- searching --------------------------------------------------------------------------------------------
    def search(
        self, queries: np.ndarray, k: int, allowed_ids: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        import faiss

        queries, k, scores, found = search_arrays(queries, self.dim, k)
        nq = len(queries)
        total = len(self)
        allowed = None if allowed_ids is None else as_ids(allowed_ids)
        if k <= 0 or nq == 0 or total == 0 or (allowed is not None and len(allowed) == 0):
            return scores, found
        scanned = allowed is not None and self._scans_exactly(len(allowed), total)
        # faiss's id selector (a hash set of the allowed ids) is only needed when faiss applies the filter.
        selector = None if allowed is None or scanned else faiss.IDSelectorBatch(allowed)
        threads = faiss.omp_get_max_threads()
        if nq <= SINGLE_THREAD_MAX_QUERIES:
            faiss.omp_set_num_threads(1)
        try:
            d, i = self._search_kind(queries, k, total, allowed, selector)
        finally:
            faiss.omp_set_num_threads(threads)
        width = d.shape[1]
        valid = i >= 0
        scores[:, :width] = np.where(valid, d, -np.inf)
        found[:, :width] = i
        return scores, found

    def _scans_exactly(self, allowed: int, total: int) -> bool:
        """Whether an allowed-id filter is scored over the float32 rows rather than through IVF probing."""
        return self._rows is not None and allowed <= min(FILTER_EXACT_SHARE * total, FILTER_EXACT_MAX_ROWS)

    def _search_kind(
        self, queries: np.ndarray, k: int, total: int, allowed: np.ndarray | None, selector: Any
    ) -> tuple[np.ndarray, np.ndarray]:
        import faiss

        if self.kind == KIND_FLAT:
            params = None if selector is None else faiss.SearchParameters(sel=selector)
            d, i = self._main.search(queries, min(k, total), params=params)
        elif allowed is not None and self._rows is not None and self._scans_exactly(len(allowed), total):
            d, i = self._rows.search_subset(queries, allowed, min(k, total))
        elif allowed is not None and self._rows is None and len(allowed) <= FILTER_EXACT_SHARE * total:
            d, i = self._store.search(queries, min(k, total), params=faiss.SearchParameters(sel=selector))
        else:
            d, i = self._search_refined(queries, min(k, total), selector)
        return d, i

    def _search_refined(self, queries: np.ndarray, k: int, selector: Any) -> tuple[np.ndarray, np.ndarray]:
        """IVF-PQ candidates, re-scored exactly against the refine copies."""
        import faiss

        fetch = min(len(self), max(MIN_CANDIDATES, k * CANDIDATES_PER_HIT))
        params = faiss.SearchParametersIVF(nprobe=self.nprobe or MIN_NPROBE)
        if selector is not None:
            params.sel = selector
        # Stale entries (deleted or replaced ids) are in the lists too: fetch extra to make up for them.
        stale = int(self._main.ntotal) - len(self)
        fetch = min(int(self._main.ntotal), fetch + int(fetch * stale / max(len(self), 1)) + (k if stale else 0))
        _, cand = self._main.search(queries, fetch, params=params)
        out_d = np.full((len(queries), k), -np.inf, dtype=np.float32)
        out_i = np.full((len(queries), k), -1, dtype=np.int64)
        for row, query in enumerate(queries):
            ids = np.unique(cand[row][cand[row] >= 0])
            vectors, present = self._refine_rows(ids)
            ids = ids[present]
            if not len(ids):
                continue
            exact = inner_products(vectors, query)
            order = np.argsort(-exact, kind="stable")[:k]
            out_d[row, : len(order)] = exact[order]
            out_i[row, : len(order)] = ids[order]
        return out_d, out_i

    def _refine_rows(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(refine vectors of the live ids among the unique `ids`, mask of live ids)."""
        if self._rows is not None:
            return self._rows.get(ids)
        live = self._live()
        pos = np.searchsorted(live, ids)
        present = (pos < len(live)) & (live[np.minimum(pos, len(live) - 1)] == ids)
        if not present.any():
            return np.zeros((0, self.dim), np.float32), present
        return self._store.reconstruct_batch(ids[present]), present

    # -- persistence ------------------------------------------------------------------------------------------
    def _store_path(self, path: Path) -> Path:
        """The faiss refine store of refine "sq8"/"fp16" (named .sq8 for both); "fp32": see matching.vectors.row_store."""
        return path.with_name(path.name + ".sq8")

    def store_files(self, path: Path) -> list[Path]:
        """The refine-copy files saved beside the index file `path` (empty for a flat index)."""
        if self.kind != KIND_IVFPQ:
            return []
        return [rows_path(path), ids_path(path)] if self.refine == REFINE_FP32 else [self._store_path(Path(path))]

    def save(self, path: Path) -> None:
        import faiss

        path = Path(path)
        if self._main is None:
            raise ValueError("cannot save an empty IVF index")
        atomic_write_bytes(path, faiss.serialize_index(self._main).tobytes())
        if self._rows is not None:
            self._rows.save(path)
        elif self._store is not None:
            atomic_write_bytes(self._store_path(path), faiss.serialize_index(self._store).tobytes())
        write_meta(
            meta_path(path),
            {
                **self.metadata,
                "backend": self.backend,
                "kind": self.kind,
                "dim": self.dim,
                "count": len(self),
                "built_at": self.built_at,
                "nlist": self.nlist,
                "nprobe": self.nprobe,
                "refine": self.refine,
            },
        )

    @classmethod
    def load(
        cls, path: Path, expected: Mapping[str, Any] | None = None, mmap_store: bool | None = None
    ) -> "FaissIndex":
        """`mmap_store`: keep the refine copies on disk, memory-mapped (the OS pages in what searches touch), instead
        of reading them into RAM. None (default): mapped for refine "fp32" (appends and deletes still work, see
        matching.vectors.row_store), in RAM for the older "sq8"/"fp16" stores, whose mapped form is read-only (faiss
        cannot append to a mapped store) — pass True to map those for read-only serving."""
        import faiss  # noqa: F401 - a missing faiss fails here, before any file is read

        path = Path(path)
        meta = read_meta(meta_path(path))
        check_meta(meta, expected)
        kind = meta.get("kind")
        if kind not in (KIND_FLAT, KIND_IVFPQ) or not isinstance(meta.get("dim"), int):
            raise IndexMismatchError(f"index metadata lacks kind/dim: {path}")
        index = cls(
            meta["dim"],
            kind,
            nlist=meta.get("nlist"),
            nprobe=meta.get("nprobe"),
            refine=meta.get("refine") or REFINE_SQ8,
        )  # saved before refine existed: SQ8
        index._main = _read_faiss(path)
        if kind == KIND_IVFPQ and index.refine == REFINE_FP32:
            index._rows = RowStore.open(path, index.dim, mmap=mmap_store is not False)
            if len(index._rows) > index._main.ntotal:
                raise IndexMismatchError(f"refine store and IVF index disagree: {path}")
        elif kind == KIND_IVFPQ:
            index._store = _read_faiss(index._store_path(path), mmap=bool(mmap_store))
            index._store_mapped = bool(mmap_store)
            if index._store.ntotal > index._main.ntotal or index._store.d != index.dim:
                raise IndexMismatchError(f"refine store and IVF index disagree: {path}")
        if index._main.d != index.dim or len(index) != meta.get("count"):
            raise IndexMismatchError(
                f"index file does not match its metadata (dim {index._main.d}, count {len(index)}): {path}"
            )
        index.built_at = meta.get("built_at", "")
        index.metadata = caller_metadata(meta, BASE_META_KEYS + ("nlist", "nprobe", "refine"))
        return index


def _read_faiss(path: Path, mmap: bool = False) -> Any:
    import faiss

    try:
        if mmap:
            if not Path(path).exists():
                raise FileNotFoundError(path)
            return faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC)
        data = Path(path).read_bytes()
        return faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
    except FileNotFoundError as exc:
        raise IndexMismatchError(f"index file missing: {path}") from exc
    except (RuntimeError, OSError, ValueError) as exc:
        raise IndexMismatchError(f"index file unreadable: {path}: {exc}") from exc
