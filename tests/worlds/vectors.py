"""Unit vectors and exact reference rankings shared by the vector index tests (every backend, and faiss alone)."""

from __future__ import annotations

import numpy as np

DIM = 32
RECALL_TARGET = 0.9


def unit(rows: np.ndarray) -> np.ndarray:
    rows = rows.astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def random_unit(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    return unit(np.random.default_rng(seed).standard_normal((n, dim)))


def clustered(n: int, dim: int, centers: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    middle = rng.standard_normal((centers, dim))
    labels = rng.integers(0, centers, n)
    return unit(middle[labels] + 0.35 * rng.standard_normal((n, dim)))


def numpy_top(vectors: np.ndarray, ids: np.ndarray, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(scores, ids) of the exact top k by inner product."""
    scores = vectors @ query
    order = np.argsort(-scores, kind="stable")[:k]
    return scores[order], ids[order]


def exact_ids(vectors: np.ndarray, ids: np.ndarray, queries: np.ndarray, k: int) -> list[list[int]]:
    return [list(numpy_top(vectors, ids, q, k)[1]) for q in queries]


def recall_of(want: list[list[int]], got: np.ndarray) -> float:
    return float(np.mean([len(set(w) & set(g)) / len(w) for w, g in zip(want, got)]))
