"""Look-alike firms: a pooled document's own profile used as the query.

Invariants:
- nothing is tokenised or encoded again: the lexical query is the document's row (its distinct terms, each
  weighted 1, as its token list would be), the dense query its stored vector (VectorIndex.vectors);
- the document itself is never its own look-alike;
- the embedder gets at least SIMILAR_DENSE_WEIGHT when present, and the name channel none (a look-alike does
  what the firm does; a similar name says little of that);
- `best_look_alikes` scores as `similar(doc, k=1, allowed_ids)` does (ties to the smallest id), for all documents
  in one matrix product per channel;
- the statistics follow the pool's size as a match query's do: up to STATS_SAMPLE documents each channel is
  z-scored over the allowed set, scoring every allowed document; above (a registry of millions), over the whole
  pool (the sampled statistics of matching.engine.channels), which is what lets the pruned search
  (Ranker.pruned_rank) find the k best without scoring every document: at 1M firms the full scan alone took
  250–350 ms (docs/performance-history.md). Profiles in another script than the document are then scored as in
  a match query (impute_blind).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np

from matching.engine.channels import ZSCORE_EPS, LexicalChannels, channel_queries, impute_blind, stats_sampled
from matching.engine.dense import DenseChannel
from matching.engine.explanation import Explainer, Hit
from matching.engine.pool import Pool
from matching.engine.ranking import Ranker, best_first, fast_ok
from matching.fusion import FusionWeights, fuse
from matching.lexical import BM25Channel
from matching.vectors import FieldFilter

SIMILAR_DENSE_WEIGHT = 0.3  # look-alike search leans on the embedder when one is present


def _pattern_scores(channel: BM25Channel, rows: np.ndarray, query_rows: np.ndarray) -> np.ndarray:
    """(len(rows), len(query_rows)) BM25 scores of `rows` for queries made of each query row's own terms.

    A row of the BM25 matrix is non-zero exactly at the document's distinct terms (Lucene idf > 0), so its
    pattern is the document used as a query with every term weighted 1, as BM25Channel.scores weighs them."""
    queries = channel.row_weights(query_rows).astype(np.float32)
    queries.data = (queries.data != 0).astype(np.float32)
    return np.asarray((channel.row_weights(rows) @ queries.T).todense(), np.float32)


def _masked_zscore(scores: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Column-wise z-score over the valid rows only (as matching.fusion.zscore over each column's pool)."""
    scores = np.asarray(scores, np.float64)
    count = np.maximum(valid.sum(axis=0), 1)
    mean = np.where(valid, scores, 0.0).sum(axis=0) / count
    std = np.sqrt(np.where(valid, (scores - mean) ** 2, 0.0).sum(axis=0) / count)
    z: np.ndarray = (scores - mean) / (std + ZSCORE_EPS)
    return z


class LookAlikes:
    """Finds pooled documents like a pooled document."""

    def __init__(
        self, pool: Pool, lexical: LexicalChannels, dense: DenseChannel, explainer: Explainer, ranker: Ranker
    ) -> None:
        self._pool = pool
        self._lexical = lexical
        self._dense = dense
        self._explainer = explainer
        self._ranker = ranker

    def _pruned(self, weights: FusionWeights) -> bool:
        """Whether look-alikes take whole-pool statistics and the pruned search (see the module docstring)."""
        return fast_ok(weights) and stats_sampled(len(self._pool.row_ids))

    def _doc_query(
        self, doc_id: int, weights: FusionWeights
    ) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], np.ndarray | None]:
        """(per weighted lexical channel: ascending columns and weights; stored vector or None) of a pooled document
        used as the query, from what is already indexed: nothing is tokenised or encoded again."""
        row = self._pool.row_of[int(doc_id)]
        w = weights.channel_weights()
        columns: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for name, channel in (("bm25", self._lexical.bm25), ("char", self._lexical.char)):
            if w.get(name):  # the document's distinct terms, each weighted 1 (as its token list would be)
                cols = channel.row_terms(row).astype(np.int64)
                columns[name] = (cols, np.ones(len(cols), np.float32))
        if w.get("tfidf"):  # its TF-IDF row (the channel keeps rows with sorted indices)
            query_row = self._lexical.get("tfidf").row_weights(np.asarray([row]))
            columns["tfidf"] = (query_row.indices.astype(np.int64), query_row.data)
        vector = self._dense.stored_vectors(np.asarray([doc_id]))[0] if w.get("dense") else None
        return columns, vector

    def weights(self, weights: FusionWeights) -> FusionWeights:
        """The engine's weights with the dense channel raised to SIMILAR_DENSE_WEIGHT when it is active, and off
        while it is not (a pretrained embedder's vectors may still be pending); the name channel off."""
        weights = FusionWeights(**{**weights.as_dict(), "method": weights.method})
        weights.dense = max(weights.dense, SIMILAR_DENSE_WEIGHT) if self._dense.active else 0.0
        weights.name = 0.0
        return weights

    def similar(
        self,
        doc_id: int,
        k: int,
        weights: FusionWeights,
        allowed_ids: Collection[int] | None = None,
        excluded_ids: Collection[int] | None = None,
        where: FieldFilter | None = None,
    ) -> list[Hit]:
        """The k documents most like a pooled one, best first (`weights`: the engine's; see `weights`), among those
        allowed, not excluded and passing `where`."""
        doc = self._pool.docs.get(int(doc_id))
        if doc is None or k <= 0:
            return []
        excluded = set(int(i) for i in (excluded_ids or ())) | {int(doc_id)}
        weights = self.weights(weights)
        mask = self._ranker.mask(allowed_ids, excluded, where)
        terms = self._doc_terms(int(doc_id))
        if self._pruned(weights):
            columns, vector = self._doc_query(int(doc_id), weights)
            flags = mask.view(np.uint8)
            rows, fused_top, raw = self._ranker.pruned_rank(doc.text, weights, flags, k, columns, vector, where)
            row_ids = self._pool.row_ids
            return [
                Hit(
                    int(row_ids[r]),
                    float(fused_top[i]),
                    {name: float(v[i]) for name, v in raw.items()},
                    self._explainer.matched_terms(doc.text, int(row_ids[r]), terms, row=int(r)),
                )
                for i, r in enumerate(rows)
            ]
        channels = self._doc_channel_scores(int(doc_id), weights)
        pool_rows = np.flatnonzero(mask)
        pooled = {name: sc[pool_rows] for name, sc in channels.items()}
        fused = fuse(pooled, weights) if pooled else np.zeros(len(pool_rows))
        take = min(k, len(pool_rows))
        if take <= 0:
            return []
        return [
            self._explainer.hit(doc.text, pool_rows[p], float(fused[p]), pooled, p, terms=terms)
            for p in best_first(self._pool.row_ids, fused, pool_rows, take)
        ]

    def best(self, doc_ids: Sequence[int], allowed_ids: Collection[int], weights: FusionWeights) -> list[Hit | None]:
        """For each document, its single best look-alike among `allowed_ids` (itself excluded), scored as
        `similar(doc, k=1, allowed_ids)` scores it, for all documents in one matrix product per channel
        (allowed rows × document rows). None where nothing is allowed or the document is not pooled.
        The dense channel is the exact inner product of the stored vectors of the small allowed set."""
        base_weights = weights
        weights = self.weights(weights)
        out: list[Hit | None] = [None] * len(doc_ids)
        if weights.method != "zscore":  # rank fusion needs per-query ranks over the set: one search each
            return [next(iter(self.similar(d, 1, base_weights, allowed_ids=allowed_ids)), None) for d in doc_ids]
        row_ids = self._pool.row_ids
        arows = np.unique(self._pool.rows_of(allowed_ids))
        arows = arows[np.argsort(row_ids[arows], kind="stable")]  # ties then go to the smallest id
        doc_rows = self._pool.row_of.rows(np.asarray([int(d) for d in doc_ids], np.int64))
        present = [(j, int(r)) for j, r in enumerate(doc_rows) if r >= 0]
        if not len(arows) or not present:
            return out
        cols = np.asarray([r for _, r in present], np.int64)
        w = weights.channel_weights()
        channels: dict[str, np.ndarray] = {}
        if w.get("bm25"):
            channels["bm25"] = _pattern_scores(self._lexical.bm25, arows, cols)
        if w.get("char"):
            channels["char"] = _pattern_scores(self._lexical.char, arows, cols)
        if w.get("tfidf"):
            m = self._lexical.get("tfidf")
            channels["tfidf"] = np.asarray((m.row_weights(arows) @ m.row_weights(cols).T).todense(), np.float32)
        if w.get("dense"):
            channels["dense"] = self._dense.stored_vectors(row_ids[arows]) @ self._dense.stored_vectors(row_ids[cols]).T
        valid = row_ids[arows][:, None] != row_ids[cols][None, :]
        fused = np.zeros(valid.shape)
        if self._pruned(weights):  # whole-pool statistics per document, as similar() takes them there
            for c, (_, row) in enumerate(present):
                doc_id = int(row_ids[row])
                columns, vector = self._doc_query(doc_id, weights)
                text = self._pool.docs[doc_id].text
                cqs = channel_queries(
                    self._lexical, self._dense, text, weights, columns=columns, vector=vector, hits=False
                )
                plain = sum((w[name] * cq.z(channels[name][:, c]) for name, cq in cqs.items()), np.zeros(len(arows)))
                dense_raw = channels["dense"][:, c] if "dense" in channels else np.zeros(len(arows))
                fused[:, c] = impute_blind(plain, arows, dense_raw, cqs, weights, self._dense.row_groups())
        else:
            for name, sc in channels.items():
                fused += w[name] * _masked_zscore(sc, valid)
        fused[~valid] = -np.inf
        best = np.argmax(fused, axis=0)
        for c, (j, row) in enumerate(present):
            r = int(best[c])
            if not valid[r, c]:
                continue
            hit_id = int(row_ids[arows[r]])
            terms = self._doc_terms(int(row_ids[row]))
            out[j] = Hit(
                hit_id,
                float(fused[r, c]),
                {name: float(sc[r, c]) for name, sc in channels.items()},
                self._explainer.matched_terms("", hit_id, terms),
            )
        return out

    def _doc_channel_scores(self, doc_id: int, weights: FusionWeights) -> dict[str, np.ndarray]:
        """Raw per-channel pool scores with a pooled document as the query (`_doc_query`)."""
        columns, vector = self._doc_query(doc_id, weights)
        out = {name: self._lexical.get(name).scores_for(cols, vals) for name, (cols, vals) in columns.items()}
        if vector is not None:
            out["dense"] = self._dense.scores(None, vector)
        return out

    def _doc_terms(self, doc_id: int) -> list[str]:
        """The document's distinct words, most distinctive (highest BM25 weight) first."""
        row = self._pool.row_of[int(doc_id)]
        bm25 = self._lexical.bm25
        weights = bm25.row_weights(np.asarray([row]))
        order = np.argsort(-weights.data, kind="stable")
        return [bm25.vocab.terms[c] for c in weights.indices[order]]
