"""Scoring documents against a fixed set of queries (e.g. every leaf link of a chain): `MatchEngine.query_scores`.

Invariants:
- every channel is standardised with the statistics every search uses (matching.engine.channels), over the
  whole pool, so one document's scores compare across queries and equal its fused score in a search;
- a query set's term matrices, vectors and statistics are prepared once and cached (at most QUERY_CACHE_SIZE
  sets, oldest dropped first) against the channel matrices and vector index they were computed from: a refresh
  or rebuild replaces those objects and so invalidates the entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from matching.engine.channels import LEXICAL_CHANNELS, ZSCORE_EPS, LexicalChannels
from matching.engine.dense import DenseChannel
from matching.engine.pool import Pool
from matching.fusion import FusionWeights
from matching.text import HAN, OTHER, script_group

QUERY_CACHE_SIZE = 16  # prepared query sets (e.g. a chain's leaf links) kept per engine


class QuerySets:
    """Prepared query sets, cached per pool state."""

    def __init__(self, pool: Pool, lexical: LexicalChannels, dense: DenseChannel) -> None:
        self._pool = pool
        self._lexical = lexical
        self._dense = dense
        # (queries, weights, method) → {"marker": …, "channels": …}
        self._cache: dict[tuple[object, ...], dict[str, Any]] = {}

    def scores(self, queries: Sequence[str], doc_ids: Sequence[int], weights: FusionWeights) -> np.ndarray:
        """Fused scores (len(queries), len(doc_ids)); NaN for documents not in the pool."""
        queries = tuple(queries)
        row_ids = self._pool.row_ids
        rows = self._pool.row_of.rows(np.asarray([int(d) for d in doc_ids], np.int64))
        out = np.full((len(queries), len(rows)), np.nan)
        known = rows >= 0
        if not queries or not known.any():
            return out
        prep = self._prepared(queries, weights)
        total = np.zeros((len(queries), int(known.sum())))
        dense = None
        for name, (weight, matrix, mean, std) in prep["channels"].items():
            if name == "dense":
                sc = dense = matrix @ self._dense.stored_vectors(row_ids[rows[known]]).T
            else:
                sc = np.asarray((self._lexical.get(name).row_weights(rows[known]) @ matrix).todense()).T
            total += weight * (np.asarray(sc, np.float64) - mean[:, None]) / (std[:, None] + ZSCORE_EPS)
        if dense is not None:
            # Documents in another script group than a query: their dense z-score within their group, weighted by
            # every channel's weight (matching.engine.channels.impute_blind, which searches apply).
            blind_group, blind_mean, blind_std = prep["blind"]
            groups = self._dense.row_groups()[rows[known]]
            wsum = sum(w for w, *_ in prep["channels"].values())
            blind = groups[None, :] == blind_group[:, None]
            imputed = wsum * (dense - blind_mean[:, None]) / (blind_std[:, None] + ZSCORE_EPS)
            total = np.where(blind, imputed, total)
        out[:, known] = total
        return out

    def _prepared(self, queries: tuple[str, ...], weights: FusionWeights) -> dict[str, Any]:
        """Per channel: (weight, query matrix, pool mean, pool std) for a query set, cached per pool state. The
        statistics are those every search uses (channel_queries)."""
        w = weights.channel_weights()
        key = (queries, tuple(sorted(w.items())), weights.method)
        lexical = self._lexical
        marker = (*(c.columns for c in lexical.by_name().values()), self._dense.index)
        hit = self._cache.get(key)
        if hit is not None and all(a is b for a, b in zip(hit["marker"], marker)):
            return hit
        if weights.method != "zscore":
            raise ValueError("query_scores needs z-score fusion")
        channels = {}
        blind = (np.full(len(queries), -1), np.zeros(len(queries)), np.zeros(len(queries)))  # no blind group
        for name, weight in w.items():
            if not weight:
                continue
            if name == "dense":
                embedder = self._dense.embedder
                if embedder is None or not self._dense.active:
                    continue
                vectors = embedder.encode_queries(list(queries)).astype(np.float32)
                stats = np.asarray([self._dense.stats(v) for v in vectors])
                channels[name] = (weight, vectors, stats[:, 0], stats[:, 1])
                groups = np.asarray([OTHER if script_group(q) == HAN else HAN for q in queries])
                present = np.asarray([self._dense.group_count(g) > 0 for g in groups])
                blind_stats = np.asarray([self._dense.stats(v, g) for v, g in zip(vectors, groups)])
                blind = (np.where(present, groups, -1), blind_stats[:, 0], blind_stats[:, 1])
                continue
            if name not in LEXICAL_CHANNELS:
                continue  # extra channels are scored by their own code, not here
            columns = [lexical.query(name, q) for q in queries]
            rows = np.concatenate([c for c, _ in columns]) if columns else np.zeros(0, np.int64)
            cols = np.repeat(np.arange(len(queries)), [len(c) for c, _ in columns])
            vals = np.concatenate([v for _, v in columns]) if columns else np.zeros(0, np.float32)
            qm = sp.csc_matrix((vals, (rows, cols)), shape=(len(lexical.get(name).vocab), len(queries)))
            stats = np.asarray([lexical.stats(name, c, v) for c, v in columns])
            channels[name] = (weight, qm, stats[:, 0], stats[:, 1])
        prepared = {"marker": marker, "channels": channels, "blind": blind}
        if len(self._cache) >= QUERY_CACHE_SIZE:
            self._cache.pop(next(iter(self._cache)))
        self._cache[key] = prepared
        return prepared
