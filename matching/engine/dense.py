"""The dense channel: the embedder and the vector index over the pooled documents (matching.vectors).

Invariants: the index holds one vector per pooled document, keyed by document id (not row), so it needs no
refresh when rows move: `add` appends (an id already present is replaced) and `remove` deletes at once. A query's
dense scores are its DENSE_CANDIDATES nearest documents; every other pooled document counts as the lowest fetched
score (the floor), which the pool statistics and the pruned search both use.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from matching.engine.pool import Document, Pool
from matching.vectors import VectorIndex, make_vector_index

DENSE_CANDIDATES = 1000     # dense hits fetched per query; the rest of the pool gets the lowest fetched score


class DenseChannel:
    """The embedder (None: no dense channel) and its vector index (None until vectors are built or loaded)."""

    def __init__(self, pool: Pool, embedder=None) -> None:
        self._pool = pool
        self.embedder = embedder
        self.index: VectorIndex | None = None

    @property
    def active(self) -> bool:
        """Whether searches can use the channel (an embedder and its vectors)."""
        return self.embedder is not None and self.index is not None

    def fit(self) -> None:
        """Fit the embedder on a sample of the pool's profiles."""
        self.embedder.fit(self._pool.fit_sample())

    def build(self, vectors: np.ndarray | None, exact_max: int, backend: str) -> None:
        """A fresh index over the pool's rows; `vectors` (one row per row, from this embedder) skip encoding."""
        ids = self._pool.row_ids
        if vectors is None:
            vectors = self.embedder.encode(self._pool.texts()) if len(ids) else \
                np.zeros((0, self.embedder.dim), np.float32)
        self.index = make_vector_index(len(ids), self.embedder.dim, exact_max=exact_max, backend=backend)
        self.index.metadata.update(embedder=self.embedder.name)
        if len(ids):
            self.index.index(ids, np.asarray(vectors, np.float32))

    def add(self, docs: Sequence[Document]) -> None:
        """Encode and append documents (replacing the vectors of ids already indexed)."""
        ids = np.asarray([int(d.id) for d in docs], np.int64)
        self.index.append(ids, self.embedder.encode([d.text for d in docs]).astype(np.float32))

    def delete(self, ids: Sequence[int]) -> None:
        """Drop the vectors of removed documents."""
        self.index.delete(np.asarray(ids, np.int64))

    def hits(self, query: str | None, vector: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, float]:
        """(rows, scores, floor) of the DENSE_CANDIDATES nearest documents; every other row counts as `floor`."""
        empty = (np.zeros(0, np.int64), np.zeros(0, np.float32), 0.0)
        if self.embedder is None or self.index is None or not len(self._pool.row_ids):
            return empty
        if vector is None:
            vector = self.embedder.encode([query])
        k = min(DENSE_CANDIDATES, len(self.index))
        scores, ids = self.index.search(np.asarray(vector, np.float32).reshape(1, -1), k)
        found = ids[0] >= 0
        if not found.any():
            return empty
        floor = float(scores[0][found].min())
        rows = self._pool.row_of.rows(ids[0][found])
        known = rows >= 0
        return rows[known], scores[0][found][known].astype(np.float32), floor

    def scores(self, query: str | None, vector: np.ndarray | None = None) -> np.ndarray:
        """Dense score of every row (the floor where not fetched)."""
        rows, scores, floor = self.hits(query, vector)
        out = np.full(len(self._pool.row_ids), floor, np.float32)
        out[rows] = scores
        return out

    def stats(self, scores: np.ndarray, floor: float) -> tuple[float, float]:
        """(mean, std) over the pool of fetched `scores` with every other row at `floor`."""
        n = len(self._pool.row_ids)
        if not n:
            return 0.0, 0.0
        rest = n - len(scores)
        s = scores.astype(np.float64)
        mean = (s.sum() + rest * floor) / n
        var = ((s - mean) ** 2).sum() + rest * (floor - mean) ** 2
        return float(mean), float(np.sqrt(var / n))

    def stored_vectors(self, doc_ids: np.ndarray) -> np.ndarray:
        """Indexed vectors of pooled documents (float32 rows in the order of `doc_ids`); any the vector index
        does not hold are encoded from their text."""
        doc_ids = np.asarray(doc_ids, np.int64)
        out = np.zeros((len(doc_ids), self.embedder.dim), np.float32)
        present = np.zeros(len(doc_ids), bool)
        if self.index is not None and len(doc_ids):
            vectors, present = self.index.vectors(doc_ids)
            out[present] = vectors
        if not present.all():
            missing = np.flatnonzero(~present)
            out[missing] = self.embedder.encode([self._pool.docs[int(doc_ids[i])].text for i in missing])
        return out
