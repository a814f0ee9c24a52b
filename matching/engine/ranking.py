"""Ranking one query over the pool: the MaxScore fast path, the whole-pool path and the learned re-rank path.

Invariants:
- every path returns the same total order: fused score descending, then document id ascending, for any k (every
  score tied with the k-th is kept before the cut), so a page cut from a longer prefix never repeats or skips a
  firm (`best_first`);
- the fast path (z-score fusion, non-negative weights, pools above STATS_SAMPLE) reads the query's posting lists
  strongest bound first and stops once no unread list can change the top k (matching.sparse_topk); the survivors
  are scored exactly as the whole-pool product scores them, so its result equals the whole-pool path's
  (tests/matching/test_sparse_topk.py compares both);
- with the dense channel weighted, a selective filter (at most SELECTIVE_FILTER_SHARE of the pool and
  SELECTIVE_FILTER_MAX_ROWS rows allowed) takes the dense channel's hits among the allowed documents only (a field
  filter inside Milvus when more than LOCAL_SCAN_MAX_ROWS pass, else an id list, which Milvus scores exactly over its
  local rows), so its floor bounds every allowed row left out, as without a filter; any other filter takes the whole
  pool's hits; the result is the same either way;
- channel statistics come from matching.engine.channels on every path, over the whole pool whatever the filters;
- callers apply the pool's pending changes first (MatchEngine does on every public entry).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping

import numpy as np

from matching.engine.channels import (
    LEXICAL_CHANNELS,
    ZSCORE_EPS,
    ChannelQuery,
    LexicalChannels,
    channel_queries,
    exact_scores,
    impute_blind,
    pool_scores,
    stats_sampled,
)
from matching.engine.dense import DenseChannel
from matching.engine.explanation import Explainer, Hit
from matching.engine.features import RERANK_CANDIDATES, LearnedReranker, base_features
from matching.engine.fields import FieldColumns
from matching.engine.pool import Pool
from matching.fusion import FusionWeights, fuse
from matching.sparse_topk import kth_largest
from matching.vectors import FieldFilter

Ids = Collection[int] | None
Queries = dict[str, ChannelQuery]  # channel name → its part of one query

# With the dense channel weighted, a filter that keeps at most this share of the pool (and at most
# SELECTIVE_FILTER_MAX_ROWS rows) asks the vector index for the nearest *allowed* documents (an id list; faiss scans
# a few thousand rows exactly and probes its IVF lists with an id selector above that). The whole pool's nearest
# documents are mostly not allowed, so their floor left every allowed row a loose bound and MaxScore's rounds
# repeated up to the whole allowed set; scoring every allowed row directly instead is linear in them. One province
# (~29k allowed) at 1M firms, the same 200 queries on one saved engine (bench/direct_vs_maxscore.py): p50 / p95
# 41.8 / 235 ms with the whole pool's hits, 56.9 / 164 ms scoring the province directly, 20.4 / 35.0 ms with the
# nearest allowed documents; the same top 100 on all three. Above the share the whole pool's hits are mostly
# allowed, and a longer id list costs the vector index more than it saves. Without the dense channel MaxScore's
# bounds hold under any filter. The same goes for a field filter Milvus applies itself: its filtered search costs
# about twice its plain one at 1M (22–29 against 11–14 ms), so only a selective one is handed to it. "Other city,
# active" (most of the pool), the bench's 50 such queries on one saved 1M engine, two passes: p50 48.5 / 47.4 ms
# filtered inside Milvus, 39.4 / 39.2 ms over the whole pool's hits, the same top 10 for all 200 queries.
SELECTIVE_FILTER_SHARE = 0.15  # the largest synthetic province at 1M holds 11.8 % of the pool (Guangdong ≈ 12 %)
SELECTIVE_FILTER_MAX_ROWS = 150_000
# A selective field filter allowing at most this many rows is not handed to a vector index that could apply it
# (Milvus): the allowed rows' ids go to it instead, and it scores them exactly over its local float32 rows, where
# they lie (matching.vectors.row_store). One province (~29k rows) of the saved 1M engine, the bench's 50 province
# queries: ~14–20 ms scanning the rows against 24–32 ms for Milvus's filtered search (approximate, too); at ~88k and
# ~118k rows the scan took 42 / 49 ms against Milvus's 34 / 24 ms.
LOCAL_SCAN_MAX_ROWS = 65_536
# With the dense channel weighted, MaxScore's first round asks for this many times the rows wanted. A candidate
# outside the dense hits is bounded as if it scored the floor, so with the wanted count alone the k-th exact score
# often fell below the bounds and the round was repeated for 4× the rows, reading the same strong posting lists
# again (at 1M, 120 of 200 queries took two to four rounds). Four times as many candidates cost little more reading
# and ~1 ms of exact scoring. The 200 queries of `chainmatch bench match` at 1M (Milvus, static embedder), MaxScore's
# mean / the query's p95: factor 1 25.1 / 99 ms, 2 22.7 / 95, 4 17.4 / 75, 8 21.1 / 86, 16 34.6 / 138 (θ, the
# want-th partial score, falls, and more lists are read whole).
FIRST_ROUND_FACTOR = 4


def best_first(row_ids: np.ndarray, fused: np.ndarray, pool_rows: np.ndarray, take: int) -> np.ndarray:
    """Positions (into `pool_rows`) of the `take` best scores in a total order: score desc, then document id asc.

    argpartition alone picks among tied scores differently for different `take`, so page 2 (a longer
    prefix) could repeat a firm of page 1; every score tied with the cut-off is kept and ordered by id.
    """
    if take < len(pool_rows):
        cutoff = fused[np.argpartition(-fused, take - 1)[take - 1]]
        cand = np.flatnonzero(fused >= cutoff)
    else:
        cand = np.arange(len(pool_rows))
    order = np.lexsort((row_ids[pool_rows[cand]], -fused[cand]))
    return cand[order[:take]]


def fast_ok(weights: FusionWeights) -> bool:
    """Whether the pruned search applies: z-score fusion of known channels with non-negative weights."""
    w = weights.channel_weights()
    return (
        weights.method == "zscore" and all(v >= 0 for v in w.values()) and not (set(w) - {*LEXICAL_CHANNELS, "dense"})
    )


def selective(allowed: int, rows: int) -> bool:
    """Whether a filter allowing `allowed` of `rows` pool rows is selective enough to search the vector index
    among the allowed documents only."""
    return allowed <= SELECTIVE_FILTER_SHARE * rows and allowed <= SELECTIVE_FILTER_MAX_ROWS


class ScoredRows:
    """Exact scores of one query's candidate rows, each row scored once over MaxScore's rounds (a later round's
    candidates are mostly the earlier ones'); `score` gives (raw channel scores, fused scores) of rows, each row's
    the same whichever rows it is scored with."""

    def __init__(self, score: Callable[[np.ndarray], tuple[dict[str, np.ndarray], np.ndarray]]) -> None:
        self._score = score
        self._rows = np.zeros(0, np.int64)  # ascending
        self._raw: dict[str, np.ndarray] = {}
        self._plain = np.zeros(0)

    def __call__(self, rows: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """(raw channel scores, fused scores) of ascending `rows`."""
        new = rows[~np.isin(rows, self._rows)] if len(self._rows) else rows
        if len(new) or not self._raw:
            raw, plain = self._score(new)
            every = np.concatenate([self._rows, new])
            order = np.argsort(every, kind="stable")
            self._rows, self._plain = every[order], np.concatenate([self._plain, plain])[order]
            self._raw = {name: np.concatenate([self._raw.get(name, v[:0]), v])[order] for name, v in raw.items()}
        at = np.searchsorted(self._rows, rows)
        return {name: v[at] for name, v in self._raw.items()}, self._plain[at]


class Ranker:
    """Ranks the pool for a query text on the channels it is given."""

    def __init__(self, pool: Pool, lexical: LexicalChannels, dense: DenseChannel, explainer: Explainer) -> None:
        self._pool = pool
        self._lexical = lexical
        self._dense = dense
        self._explainer = explainer
        self._fields = FieldColumns(pool)

    def search(
        self,
        query: str,
        k: int,
        weights: FusionWeights,
        learned: LearnedReranker | None,
        allowed_ids: Ids,
        excluded_ids: Ids,
        where: FieldFilter | None = None,
    ) -> list[Hit]:
        """The k best documents, best first: re-ranked by `learned` (a matching.learning.LearnedModel or None)
        when it has a ranker, else by the fused score. `where` restricts the rows as the id sets do (the rows
        passing both); only the vector index's candidate search may apply it itself."""
        row_ids = self._pool.row_ids
        if learned is not None and learned.ranker is not None:
            n = max(RERANK_CANDIDATES, k)
            top, pooled, fused, pool_rows = self.rank_pool(
                query, self.mask(allowed_ids, excluded_ids, where), n, weights, need_all=True
            )
            doc_ids = row_ids[pool_rows[top]]
            probs = learned.score(
                query, doc_ids, base_features(self._pool, self._lexical, query, top, pooled, fused, pool_rows)
            )
            order = np.lexsort((doc_ids, -probs))[:k]  # total order (score desc, id asc), as best_first
            return [
                self._explainer.hit(query, pool_rows[top[o]], float(probs[o]), pooled, top[o], learned=float(probs[o]))
                for o in order
            ]
        if fast_ok(weights) and stats_sampled(len(row_ids)):
            # Small pools: the statistics need every row's score anyway, so ranking the whole pool costs no more.
            rows, fused, raw = self._fast_rank(query, weights, self._flags(allowed_ids, excluded_ids, where), k, where)
            terms = self._explainer.matched_terms_of_rows(query, rows)
            return [
                Hit(int(row_ids[r]), float(fused[i]), {name: float(v[i]) for name, v in raw.items()}, terms[i])
                for i, r in enumerate(rows)
            ]
        top, pooled, fused, pool_rows = self.rank_pool(query, self.mask(allowed_ids, excluded_ids, where), k, weights)
        return [self._explainer.hit(query, pool_rows[p], float(fused[p]), pooled, p) for p in top]

    def prepare_fields(self, names: Collection[str]) -> None:
        """Code the field columns filters on `names` read (FieldColumns.prepare)."""
        self._fields.prepare(names)

    def mask(self, allowed_ids: Ids, excluded_ids: Ids, where: FieldFilter | None = None) -> np.ndarray:
        """Boolean per pool row: allowed, not excluded and (given `where`) passing it."""
        mask = self._pool.mask(allowed_ids, excluded_ids)
        return mask & self._fields.mask(where) if where else mask

    def _flags(self, allowed_ids: Ids, excluded_ids: Ids, where: FieldFilter | None) -> np.ndarray | None:
        """As Pool.flags (uint8 per row, None: the whole pool), `where` included."""
        if not where:
            return self._pool.flags(allowed_ids, excluded_ids)
        return self.mask(allowed_ids, excluded_ids, where).view(np.uint8)

    # ---- the whole pool -------------------------------------------------------------------------
    def rank_pool(
        self, query: str, mask: np.ndarray, n: int, weights: FusionWeights, need_all: bool = False
    ) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """(candidate positions best first, channels restricted to the pool, fused pool scores, pool rows)."""
        channels = pool_scores(self._lexical, self._dense, query, weights, need_all=need_all)
        pool_rows = np.flatnonzero(mask)
        pooled = {name: s[pool_rows] for name, s in channels.items()}
        fused = self._fuse_pool(query, channels, pool_rows, weights) if pooled else np.zeros(len(pool_rows))
        take = min(n, len(pool_rows))
        if take <= 0:
            return np.zeros(0, np.int64), pooled, fused, pool_rows
        return best_first(self._pool.row_ids, fused, pool_rows, take), pooled, fused, pool_rows

    def _fuse_pool(
        self, query: str, channels: dict[str, np.ndarray], pool_rows: np.ndarray, weights: FusionWeights
    ) -> np.ndarray:
        """Fused scores of the pool rows: z-scores with the statistics of channel_queries (as the pruned search
        uses), or rank fusion over the pool."""
        pooled = {name: s[pool_rows] for name, s in channels.items()}
        if weights.method != "zscore":
            return fuse(pooled, weights)
        w = weights.channel_weights()
        total = np.zeros(len(pool_rows))
        cqs = channel_queries(self._lexical, self._dense, query, weights, full=channels)
        for name, cq in cqs.items():
            if name in pooled:
                total += w[name] * cq.z(pooled[name])
        if "dense" in pooled:
            total = impute_blind(total, pool_rows, pooled["dense"], cqs, weights, self._dense.row_groups())
        return total

    # ---- MaxScore -------------------------------------------------------------------------------
    def pruned_rank(
        self,
        query: str,
        weights: FusionWeights,
        flags: np.ndarray | None,
        take: int,
        columns: Mapping[str, tuple[np.ndarray, np.ndarray]],
        vector: np.ndarray | None,
        where: FieldFilter | None = None,
    ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """As the pruned search ranks a query, for a query given as its lexical columns and its vector (a pooled
        document as the query: look-alikes; see channel_queries); `query` tells its script. `flags` include
        `where`, which a vector index storing fields may apply itself (as in `search`)."""
        return self._fast_rank(query, weights, flags, take, where, columns=columns, vector=vector)

    def _fast_rank(
        self,
        query: str,
        weights: FusionWeights,
        flags: np.ndarray | None,
        take: int,
        where: FieldFilter | None = None,
        columns: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
        vector: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """(rows best first, fused scores, raw channel scores per row) of the top `take` pool rows (z-score fusion,
        non-negative weights): MaxScore over the query's postings, then exact scores of the survivors.

        The dense channel's posting list is its fetched hits, shifted by the floor; a row outside them scores its
        exact (lower) dense score, so a survivor's posting bound may exceed its exact score. The candidates are
        final once the take-th best exact score is at least the bound of every row left out (the want-th best
        bound); else more candidates are asked for.

        `flags` (uint8 per row, None: every row) are the rows that may rank (`flags` include `where`). A selective
        filter narrows the dense hits: when the vector index applies `where` itself (Milvus), they are the nearest
        rows passing it, a superset of the flagged ones; else the flagged rows' ids are given to it. Either way the
        floor bounds every flagged row left out and MaxScore's dense bounds stay as tight as without a filter; the
        ranking is the same as with the whole pool's hits, which a filter most of the pool passes takes."""
        from matching.sparse_topk import PostingReader, Term

        w = weights.channel_weights()
        n = len(self._pool.row_ids)
        allowed = n if flags is None else int(np.count_nonzero(flags))
        take = min(take, allowed)
        if take <= 0:
            return np.zeros(0, np.int64), np.zeros(0), {}
        # Only a selective filter narrows the vector search (SELECTIVE_FILTER_SHARE): as a field filter where the
        # index applies `where` itself and more than LOCAL_SCAN_MAX_ROWS rows pass, else as the flagged rows' ids.
        # Any other is applied as `flags` over the whole pool's nearest rows, on Milvus as on faiss.
        narrow = flags is not None and w.get("dense", 0) > 0 and selective(allowed, n)
        filtered = narrow and allowed > LOCAL_SCAN_MAX_ROWS and self._dense.filters_fields(where)
        restrict = None if flags is None or not narrow or filtered else self._pool.row_ids[np.flatnonzero(flags)]
        cqs = channel_queries(
            self._lexical,
            self._dense,
            query,
            weights,
            where=where if filtered else None,
            allowed_ids=restrict,
            columns=columns,
            vector=vector,
        )
        terms = []
        for name, cq in cqs.items():
            a = w[name] / (cq.std + ZSCORE_EPS)
            if name == "dense":
                order = np.argsort(cq.cols)  # posting lists are in ascending row order
                shifted = (cq.vals[order] - np.float32(cq.floor)).astype(np.float32)
                terms.append(Term(cq.cols[order].astype(np.int32), shifted, a, float(a * shifted.max(initial=0.0))))
                continue
            channel = self._lexical.get(name)
            matrix, col_max = channel.columns, channel.col_max
            for c, v in zip(cq.cols.tolist(), cq.vals.tolist()):
                lo, hi = matrix.indptr[c], matrix.indptr[c + 1]
                terms.append(Term(matrix.indices[lo:hi], matrix.data[lo:hi], a * v, float(a * v * col_max[c])))
        dense = cqs.get("dense")
        blind = self._blind_rows(dense, flags, take)  # the best rows the lexical channels cannot see, if any
        want = min(allowed, take * FIRST_ROUND_FACTOR) if dense is not None else take
        scored = ScoredRows(lambda some: self._exact(cqs, w, some))
        with PostingReader(terms, n, flags) as reader:
            while True:
                rows = reader.candidates(want).rows
                raw, plain = scored(rows)
                merged, merged_raw, fused = self._with_blind(cqs, weights, rows, raw, plain, blind)
                if dense is None or len(rows) < want or want >= allowed:
                    break
                # Every row left out scores at most its posting bound. The candidates hold every row among the
                # `want` best bounds and may hold weaker ones too (rows the pruning had not dropped yet), so a row
                # left out is bounded by the want-th best bound among them, not by their least one.
                bound = plain + w["dense"] / (dense.std + ZSCORE_EPS) * np.maximum(dense.floor - raw["dense"], 0.0)
                if kth_largest(fused, take) >= kth_largest(bound, want):
                    break
                want = min(allowed, want * 4)
        rows, raw = merged, merged_raw
        if len(rows) < allowed and self._without_postings_may_rank(cqs, w, fused, take):
            # Every row with a posting is in (else the bounds above hold); a row without one (no lexical term, dense
            # below the floor) may still beat a candidate whose dense score is far lower.
            extra = self._rows_without_postings(take, flags, rows, dense)
            extra_raw, extra_plain = self._exact(cqs, w, extra)
            extra_fused = self._imputed(cqs, weights, extra, extra_raw, extra_plain)
            rows, fused = np.concatenate([rows, extra]), np.concatenate([fused, extra_fused])
            raw = {name: np.concatenate([raw[name], extra_raw[name]]) for name in raw}
        order = np.lexsort((self._pool.row_ids[rows], -fused))[:take]
        return rows[order], fused[order], {name: s[order] for name, s in raw.items()}

    def _exact(self, cqs: Queries, w: dict[str, float], rows: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """(raw channel scores, fused scores without cross-language imputation) of pool `rows`, exactly."""
        raw = {name: exact_scores(self._lexical, self._dense, cq, rows) for name, cq in cqs.items()}
        return raw, sum((w[name] * cq.z(raw[name]) for name, cq in cqs.items()), np.zeros(len(rows)))

    def _imputed(
        self, cqs: Queries, weights: FusionWeights, rows: np.ndarray, raw: dict[str, np.ndarray], plain: np.ndarray
    ) -> np.ndarray:
        if "dense" not in raw:
            return plain
        return impute_blind(plain, rows, raw["dense"], cqs, weights, self._dense.row_groups())

    def _blind_rows(self, dense: ChannelQuery | None, flags: np.ndarray | None, take: int) -> np.ndarray:
        """The `take` allowed rows of the group the lexical channels cannot see with the best dense scores (their
        fused score follows their dense score alone: matching.engine.channels.impute_blind)."""
        if dense is None or dense.blind_group is None:
            return np.zeros(0, np.int64)
        rows = np.flatnonzero(self._dense.row_groups() == dense.blind_group)
        if flags is not None:
            rows = rows[flags[rows] == 1]
        if not len(rows):
            return rows
        found, _, _ = self._dense.hits(None, dense.vector, k=take, allowed_ids=self._pool.row_ids[rows])
        return found

    def _with_blind(
        self,
        cqs: Queries,
        weights: FusionWeights,
        rows: np.ndarray,
        raw: dict[str, np.ndarray],
        plain: np.ndarray,
        blind: np.ndarray,
    ) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
        """(rows, raw scores, fused scores) of the candidates joined by the best blind rows, cross-language scores
        imputed."""
        extra = blind[~np.isin(blind, rows)]
        if len(extra):
            extra_raw, extra_plain = self._exact(cqs, weights.channel_weights(), extra)
            rows = np.concatenate([rows, extra])
            raw = {name: np.concatenate([raw[name], extra_raw[name]]) for name in raw}
            plain = np.concatenate([plain, extra_plain])
        return rows, raw, self._imputed(cqs, weights, rows, raw, plain)

    @staticmethod
    def _without_postings_may_rank(cqs: Queries, w: dict[str, float], fused: np.ndarray, take: int) -> bool:
        """Whether a row without any posting (lexical scores 0, dense score at most the floor) could reach the top
        `take` of the candidates' `fused` scores."""
        if len(fused) < take:
            return True
        zero = np.zeros(1)
        ceiling = sum(
            w[name] * float(cq.z(np.full(1, cq.floor) if name == "dense" else zero)[0]) for name, cq in cqs.items()
        )
        return bool(kth_largest(fused, take) < ceiling)

    def _rows_without_postings(
        self, count: int, flags: np.ndarray | None, skip: np.ndarray, dense: ChannelQuery | None
    ) -> np.ndarray:
        """The best `count` allowed rows outside `skip` when none of them has a posting: by exact dense score when
        the dense channel is weighted (its hits are all in `skip`), else the smallest document ids."""
        if dense is None:
            return self._pool.rows_by_id(count, flags, skip)
        rows = np.arange(len(self._pool.row_ids)) if flags is None else np.flatnonzero(flags)
        rows = rows[~np.isin(rows, skip)]
        assert dense.vector is not None  # a dense ChannelQuery always carries its query vector
        scores = self._dense.row_scores(dense.vector, rows)
        return rows[np.lexsort((self._pool.row_ids[rows], -scores))[:count]]
