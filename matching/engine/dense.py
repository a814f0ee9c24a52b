"""The dense channel: the embedder and the vector index over the pooled documents (matching.vectors).

Invariants:
- the index holds one vector per pooled document, keyed by document id (not row), so it needs no refresh when rows
  move: `add` appends (an id already present is replaced) and `remove` deletes at once;
- a document's dense score is the inner product of its stored vector with the query vector. The pool statistics of
  a query (mean, std of its dense scores over every pooled document) are exact, from the running moments of the
  pooled vectors (count, sum, sum of outer products: E[s] = q·μ, Var[s] = qᵀ E[vvᵀ] q − (q·μ)²), kept up to date
  by `add` and `delete` and saved with the engine;
- the moments are also kept per script group (matching.text.script_group: profiles mostly in Chinese characters, and
  the others — foreign firms' English, Korean, … profiles), for cross-language scores (matching.engine.ranking);
- searches fetch the DENSE_CANDIDATES nearest documents (the hits; their lowest score is the floor, which bounds
  every other document's score from above) and score any other row they need exactly from its stored vector;
  `scores` of every row is exact up to EXACT_DENSE_MAX documents and beyond that takes the floor for rows outside
  the hits (look-alikes and the whole-pool path at that scale; the pruned search stays exact);
- on a backend that stores fields (VectorIndex.stores_fields: Milvus) every vector is written with its document's
  fields (matching.engine.fields.for_index), at build and on every `add`, so a firm that moves keeps its filter
  values current; `hits(where=…)` then asks for the nearest documents passing a FieldFilter, inside the backend.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

from matching.embedders.base import Embedder
from matching.engine.fields import for_index
from matching.engine.pool import Document, Pool
from matching.text import HAN, OTHER, script_group
from matching.vectors import FieldFilter, VectorIndex, inner_products, make_vector_index

DENSE_CANDIDATES = 1000  # dense hits fetched per query (a posting list of the pruned search)
# Threads per process that fetch dense hits while the query's lexical side is prepared
# (DenseChannel.hits_in_background): at least the web server's request threads per worker (WEB_THREADS, 4 by
# default), so that searches at once do not queue for them.
DENSE_HITS_WORKERS = 8
EXACT_DENSE_MAX = 65_536  # up to this many documents `scores` computes every row's dense score (one product)
MOMENTS_CHUNK = 65_536  # stored vectors read per step when the moments are computed from an index
MOMENTS_FILE = "dense_moments.npz"
_executor: tuple[int, ThreadPoolExecutor] | None = None  # (the process that made it, the dense-hit threads)
_executor_lock = threading.Lock()


@dataclass
class Moments:
    """Running count, sum and sum of outer products of the pooled vectors (float64)."""

    count: int
    total: np.ndarray
    outer: np.ndarray

    @classmethod
    def empty(cls, dim: int) -> "Moments":
        return cls(0, np.zeros(dim), np.zeros((dim, dim)))

    def add(self, vectors: np.ndarray, sign: int = 1) -> None:
        """Count `vectors` in (sign 1) or out (sign −1)."""
        for start in range(0, len(vectors), MOMENTS_CHUNK):  # float64 copies of a chunk at a time
            v = np.asarray(vectors[start : start + MOMENTS_CHUNK], np.float64)
            self.count += sign * len(v)
            self.total += sign * v.sum(axis=0)
            self.outer += sign * (v.T @ v)

    def stats(self, query: np.ndarray) -> tuple[float, float]:
        """(mean, std) of the inner products of `query` with every counted vector."""
        if self.count <= 0:
            return 0.0, 0.0
        q = np.asarray(query, np.float64).reshape(-1)
        mean = float(q @ self.total) / self.count
        var = float(q @ self.outer @ q) / self.count - mean * mean
        return mean, float(np.sqrt(max(var, 0.0)))


class GroupMoments:
    """Moments per script group, and which documents are of the OTHER group (few, in a Chinese registry)."""

    def __init__(self, dim: int) -> None:
        self.groups = {HAN: Moments.empty(dim), OTHER: Moments.empty(dim)}
        self.other_ids: set[int] = set()

    def add(self, ids: np.ndarray, vectors: np.ndarray, groups: np.ndarray, sign: int = 1) -> None:
        """Count documents in (sign 1) or out (sign −1) with their groups."""
        ids, groups = np.asarray(ids, np.int64), np.asarray(groups)
        for group in (HAN, OTHER):
            sel = groups == group
            if sel.any():
                self.groups[group].add(np.asarray(vectors)[sel], sign)
        other = ids[groups == OTHER].tolist()
        if sign > 0:
            self.other_ids.update(other)
        else:
            self.other_ids.difference_update(other)

    def group_of(self, ids: np.ndarray) -> np.ndarray:
        """The recorded group of each id (HAN unless recorded as OTHER)."""
        if not self.other_ids:
            return np.full(len(ids), HAN, np.int8)
        return np.where(np.isin(np.asarray(ids, np.int64), self.other_array()), OTHER, HAN).astype(np.int8)

    def other_array(self) -> np.ndarray:
        return np.fromiter(self.other_ids, np.int64, len(self.other_ids))

    @property
    def count(self) -> int:
        return self.groups[HAN].count + self.groups[OTHER].count

    def stats(self, query: np.ndarray, group: int | None = None) -> tuple[float, float]:
        """(mean, std) of the query's inner products over every document, or over one group's."""
        if group is not None:
            return self.groups[group].stats(query)
        both = Moments(
            self.count,
            self.groups[HAN].total + self.groups[OTHER].total,
            self.groups[HAN].outer + self.groups[OTHER].outer,
        )
        return both.stats(query)

    def save(self, path: Path) -> None:
        han, other = self.groups[HAN], self.groups[OTHER]
        np.savez(
            path,
            han_count=np.asarray(han.count),
            han_total=han.total,
            han_outer=han.outer,
            other_count=np.asarray(other.count),
            other_total=other.total,
            other_outer=other.outer,
            other_ids=self.other_array(),
        )

    @classmethod
    def load(cls, path: Path) -> "GroupMoments":
        with np.load(path) as data:
            out = cls(len(data["han_total"]))
            out.groups[HAN] = Moments(int(data["han_count"]), data["han_total"].copy(), data["han_outer"].copy())
            out.groups[OTHER] = Moments(
                int(data["other_count"]), data["other_total"].copy(), data["other_outer"].copy()
            )
            out.other_ids = set(data["other_ids"].tolist())
        return out


def _hits_executor() -> ThreadPoolExecutor:
    """The process's dense-hit threads (created again in a forked child, which does not inherit its parent's)."""
    global _executor
    with _executor_lock:
        if _executor is None or _executor[0] != os.getpid():
            _executor = (os.getpid(), ThreadPoolExecutor(DENSE_HITS_WORKERS, thread_name_prefix="dense-hits"))
        return _executor[1]


def groups_of_texts(texts: Iterable[str]) -> np.ndarray:
    """The script group of each text."""
    return np.fromiter((script_group(t) for t in texts), np.int8)


@dataclass
class PreparedIndex:
    """A vector index built beside a live engine (MatchEngine.build_vector_index) with its moments."""

    embedder: Embedder
    index: VectorIndex
    moments: GroupMoments


class DenseChannel:
    """The embedder (None: no dense channel) and its vector index (None until vectors are built or loaded)."""

    def __init__(self, pool: Pool, embedder: Embedder | None = None) -> None:
        self._pool = pool
        self.embedder = embedder
        self.index: VectorIndex | None = None
        self.moments: GroupMoments | None = None  # None: computed from the stored vectors when first needed
        # (row ids it was computed for, other ids count, group of each row)
        self._group_rows: tuple[np.ndarray, int, np.ndarray] | None = None

    @property
    def active(self) -> bool:
        """Whether searches can use the channel (an embedder and its vectors)."""
        return self.embedder is not None and self.index is not None

    def fit(self) -> None:
        """Fit the embedder on a sample of the pool's profiles."""
        assert self.embedder is not None
        self.embedder.fit(self._pool.fit_sample())

    def build(self, vectors: np.ndarray | None, exact_max: int, backend: str) -> None:
        """A fresh index over the pool's rows; `vectors` (one row per row, from this embedder) skip encoding."""
        ids = self._pool.row_ids
        assert self.embedder is not None
        if vectors is None:
            vectors = (
                self.embedder.encode(self._pool.texts()) if len(ids) else np.zeros((0, self.embedder.dim), np.float32)
            )
        docs = [self._pool.docs[int(i)] for i in ids]
        prepared = prepare(self.embedder, ids, vectors, self._pool.texts(), exact_max, backend, docs)
        self.index, self.moments = prepared.index, prepared.moments

    def use(self, prepared: PreparedIndex) -> None:
        """Take an embedder with an index `prepare`d for exactly the pooled documents."""
        ids = self._pool.row_ids
        index = prepared.index
        if len(index) != len(ids) or not np.array_equal(np.sort(index.ids()), np.sort(ids)):
            raise ValueError("the vector index does not hold exactly the pooled documents")
        self.embedder, self.index, self.moments = prepared.embedder, index, prepared.moments

    def add(self, docs: Sequence[Document], vectors: np.ndarray | None = None) -> None:
        """Append documents' vectors (encoded here unless given, one row per document), replacing those of ids
        already indexed."""
        ids = np.asarray([int(d.id) for d in docs], np.int64)
        assert self.embedder is not None and self.index is not None
        if vectors is None:
            vectors = self.embedder.encode([d.text for d in docs])
        vectors = np.asarray(vectors, np.float32)
        if self.moments is not None:
            old, present = self.index.vectors(ids)
            self.moments.add(ids[present], old, self.moments.group_of(ids[present]), -1)
            self.moments.add(ids, vectors, groups_of_texts(d.text for d in docs))
        fields = for_index(docs) if self.index.stores_fields else None
        if fields is None:
            self.index.append(ids, vectors)
        else:  # VectorIndex.append takes no fields; a backend that stores them does (MilvusIndex.append)
            cast(Any, self.index).append(ids, vectors, fields=fields)

    def delete(self, ids: Sequence[int]) -> None:
        """Drop the vectors of removed documents."""
        id_array = np.asarray(ids, np.int64)
        assert self.index is not None
        if self.moments is not None:
            old, present = self.index.vectors(id_array)
            self.moments.add(id_array[present], old, self.moments.group_of(id_array[present]), -1)
        self.index.delete(id_array)

    # ---- a query's scores ---------------------------------------------------------------------------
    def query_vector(self, query: str) -> np.ndarray:
        assert self.embedder is not None
        return np.asarray(self.embedder.encode_queries([query]), np.float32).reshape(-1)

    def filters_fields(self, where: FieldFilter | None) -> bool:
        """Whether the vector index can apply `where` itself: it stores fields and holds every field `where` reads
        as a typed value of each vector."""
        return (
            bool(where)
            and self.index is not None
            and self.index.stores_fields
            and where is not None
            and where.fields() <= self.index.field_names()
        )

    def hits(
        self,
        query: str | None,
        vector: np.ndarray | None = None,
        k: int | None = None,
        allowed_ids: np.ndarray | None = None,
        where: FieldFilter | None = None,
    ) -> tuple[np.ndarray, np.ndarray, float]:
        """(rows, scores, floor) of the `k` nearest documents (default DENSE_CANDIDATES; among `allowed_ids` and,
        when the index `filters_fields(where)`, those passing `where`); every other row (passing them) scores at
        most `floor`."""
        empty = (np.zeros(0, np.int64), np.zeros(0, np.float32), 0.0)
        if self.embedder is None or self.index is None or not len(self._pool.row_ids):
            return empty
        if vector is None:
            assert query is not None  # a query text or its vector
            vector = self.query_vector(query)
        k = min(DENSE_CANDIDATES if k is None else k, len(self.index))
        queries = np.asarray(vector, np.float32).reshape(1, -1)
        if self.filters_fields(where):  # VectorIndex.search takes no `where`; a backend storing fields does
            scores, ids = cast(Any, self.index).search(queries, k, allowed_ids, where=where)
        else:
            scores, ids = self.index.search(queries, k, allowed_ids)
        found = ids[0] >= 0
        if not found.any():
            return empty
        floor = float(scores[0][found].min())
        rows = self._pool.row_of.rows(ids[0][found])
        known = rows >= 0
        return rows[known], scores[0][found][known].astype(np.float32), floor

    def hits_in_background(
        self, vector: np.ndarray, allowed_ids: np.ndarray | None = None, where: FieldFilter | None = None
    ) -> Callable[[], tuple[np.ndarray, np.ndarray, float]]:
        """`hits` for a query vector, started on a worker thread: the caller gets a function that waits for them.

        The vector index's search waits on a Milvus server (a core busy for ~8 of its ~10 ms at 1M) or runs in
        faiss without the GIL, so the caller's lexical work for the same query proceeds on the other core meanwhile
        (DENSE_HITS_WORKERS = 0: searched on the calling thread)."""
        if not DENSE_HITS_WORKERS:
            found = self.hits(None, vector, allowed_ids=allowed_ids, where=where)
            return lambda: found
        job = _hits_executor().submit(self.hits, None, vector, None, allowed_ids, where)
        return job.result

    def scores(self, query: str | None, vector: np.ndarray | None = None) -> np.ndarray:
        """Dense score of every row: exact up to EXACT_DENSE_MAX documents, else the floor outside the hits."""
        n = len(self._pool.row_ids)
        exact = n <= EXACT_DENSE_MAX
        rows, scores, floor = self.hits(query, vector, k=n if exact else DENSE_CANDIDATES)
        out = np.full(n, floor, np.float32)
        out[rows] = scores
        return out

    def row_scores(self, vector: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Exact dense scores of pool `rows` from their stored vectors. Each row's score is the same bits whichever
        rows it is scored with (faiss's per-row kernel; OpenBLAS's product is not, and wakes its threads for a few
        thousand rows), so scores kept from one round of a query are those a later round would compute."""
        if not len(rows):
            return np.zeros(0, np.float32)
        stored = self.stored_vectors(self._pool.row_ids[np.asarray(rows, np.int64)])
        return inner_products(stored, vector)

    def stats(self, vector: np.ndarray, group: int | None = None) -> tuple[float, float]:
        """(mean, std) of the query vector's dense scores over every pooled document (or one script group's)."""
        return self._moments().stats(vector, group)

    def group_count(self, group: int) -> int:
        return self._moments().groups[group].count

    def _moments(self) -> GroupMoments:
        if self.moments is None:  # an index saved before moments were kept, or from another backend
            assert self.embedder is not None
            self.moments = GroupMoments(self.embedder.dim)
            ids = self._pool.row_ids
            for start in range(0, len(ids), MOMENTS_CHUNK):
                part = ids[start : start + MOMENTS_CHUNK]
                self.moments.add(
                    part, self.stored_vectors(part), groups_of_texts(self._pool.docs[int(i)].text for i in part)
                )
        return self.moments

    def row_groups(self) -> np.ndarray:
        """The script group of each pool row (cached per row order)."""
        moments = self._moments()
        ids = self._pool.row_ids
        cached = self._group_rows
        if cached is None or cached[0] is not ids or cached[1] != len(moments.other_ids):
            cached = self._group_rows = (ids, len(moments.other_ids), moments.group_of(ids))
        return cached[2]

    def stored_vectors(self, doc_ids: np.ndarray) -> np.ndarray:
        """Indexed vectors of pooled documents (float32 rows in the order of `doc_ids`); any the vector index
        does not hold are encoded from their text."""
        doc_ids = np.asarray(doc_ids, np.int64)
        assert self.embedder is not None
        present = np.zeros(len(doc_ids), bool)
        if self.index is not None and len(doc_ids):
            vectors, present = self.index.vectors(doc_ids)
            if present.all():  # the usual case: no second copy (a selective filter gathers ~30k rows at 1M)
                return np.asarray(vectors, np.float32)
        out = np.zeros((len(doc_ids), self.embedder.dim), np.float32)
        if present.any():
            out[present] = vectors
        if not present.all():
            missing = np.flatnonzero(~present)
            out[missing] = self.embedder.encode([self._pool.docs[int(doc_ids[i])].text for i in missing])
        return out

    # ---- persistence --------------------------------------------------------------------------------
    def save_moments(self, folder: Path) -> None:
        if self.moments is not None:
            self.moments.save(Path(folder) / MOMENTS_FILE)

    def load_moments(self, folder: Path) -> None:
        path = Path(folder) / MOMENTS_FILE
        if path.exists() and self.index is not None:
            moments = GroupMoments.load(path)
            self.moments = moments if moments.count == len(self.index) else None


def prepare(
    embedder: Embedder,
    ids: np.ndarray,
    vectors: np.ndarray,
    texts: Iterable[str],
    exact_max: int,
    backend: str,
    docs: Sequence[Document] = (),
) -> PreparedIndex:
    """A vector index of `embedder`'s `vectors` (one row per id, `texts` their profiles; kind by pool size, backend
    by name) and their moments; `docs` (the documents of `ids`, in order) give the fields a backend stores."""
    vectors = np.asarray(vectors, np.float32)
    index = make_vector_index(len(ids), embedder.dim, exact_max=exact_max, backend=backend)
    index.metadata.update(embedder=embedder.name)
    moments = GroupMoments(embedder.dim)
    if len(ids):
        fields = for_index(docs) if index.stores_fields else None
        if fields is None:
            index.index(np.asarray(ids, np.int64), vectors)
        else:  # VectorIndex.index takes no fields; a backend that stores them does (MilvusIndex.index)
            cast(Any, index).index(np.asarray(ids, np.int64), vectors, fields=fields)
        moments.add(ids, vectors, groups_of_texts(texts))
    return PreparedIndex(embedder, index, moments)
