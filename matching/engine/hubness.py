"""Hubness correction: a firm that ranks high for many of the links it could be matched to is a generalist (a "hub"),
and it should not crowd the specialists out of each link's list.

Each document's hubness is the mean of its `HUB_TOP_K` best fused scores over a query bank (the links of every chain
the product matches against; the query file in `eval-matching`), as in cross-domain similarity local scaling (CSLS,
Conneau et al. 2018) and querybank normalisation (Bogolin et al. 2022). A search re-orders its `HUB_RERANK_DEPTH`
best documents by fused score − `HUB_WEIGHT` × hubness; the score users see is the corrected one. No relevance
label is read. Measured on both dev splits (docs/matching.md, "Hubness").
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from matching.engine.explanation import Hit

HUB_TOP_K = 10  # a document's hubness: the mean of its best scores over this many bank queries
HUB_WEIGHT = 0.25  # fused score − HUB_WEIGHT × hubness
HUB_RERANK_DEPTH = 100  # a search re-orders this many of its best documents (50 gives the same dev rankings)
HUB_CHUNK = 4096  # documents scored against the whole bank at once (one hold of the engine lock when served)

Scorer = Callable[[Sequence[str], np.ndarray], np.ndarray]


def bank_key(queries: Sequence[str]) -> str:
    """A fingerprint of a query bank (order-insensitive): whether hubness must be computed again."""
    digest = hashlib.sha256()
    for text in sorted(set(queries)):
        digest.update(text.encode("utf-8"))
        digest.update(b"\x00")
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class Hubness:
    """Documents' hubness over one query bank, by document id (ids sorted ascending)."""

    key: str
    ids: np.ndarray  # int64, sorted
    values: np.ndarray  # float64, one per id

    def of(self, doc_ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """Hubness of each document; 0 for a document the bank was not scored against (added since)."""
        ids = np.asarray(doc_ids, np.int64)
        out = np.zeros(len(ids))
        if not len(self.ids) or not len(ids):
            return out
        pos = np.clip(np.searchsorted(self.ids, ids), 0, len(self.ids) - 1)
        found = self.ids[pos] == ids
        out[found] = self.values[pos[found]]
        return out

    def penalty(self, doc_ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """What the correction subtracts from each document's fused score."""
        return HUB_WEIGHT * self.of(doc_ids)

    def rerank(self, hits: list[Hit], k: int) -> list[Hit]:
        """The k best of `hits` (best first by fused score) by corrected score, ties by id as searches break them."""
        if not hits:
            return hits
        penalty = self.penalty([h.id for h in hits])
        corrected = [replace(h, score=h.score - p) for h, p in zip(hits, penalty)]
        corrected.sort(key=lambda h: (-h.score, h.id))
        return corrected[:k]


def compute_hubness(
    scorer: Scorer,
    queries: Sequence[str],
    doc_ids: Sequence[int],
    lock: AbstractContextManager[Any] | None = None,
) -> Hubness:
    """Each document's mean of its HUB_TOP_K best scores over `queries`, scored `HUB_CHUNK` documents at a time
    (each chunk under `lock`, so that searches of a served engine run between chunks).

    `scorer(queries, ids)` returns fused scores (len(queries), len(ids)), NaN for documents it does not know."""
    queries = list(dict.fromkeys(queries))  # one vote per distinct query
    ids = np.unique(np.asarray(doc_ids, np.int64))
    values = np.zeros(len(ids))
    top = min(HUB_TOP_K, len(queries))
    if top and len(ids):
        for start in range(0, len(ids), HUB_CHUNK):
            chunk = ids[start : start + HUB_CHUNK]
            with lock or nullcontext():
                scores = np.nan_to_num(np.asarray(scorer(queries, chunk), np.float64), nan=0.0)
            best = np.partition(scores, len(queries) - top, axis=0)[len(queries) - top :]
            values[start : start + len(chunk)] = best.mean(axis=0)
    return Hubness(bank_key(queries), ids, values)
