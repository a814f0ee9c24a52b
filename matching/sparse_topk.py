"""Exact top-k of a weighted sum of non-negative sparse score channels without scoring every posting (MaxScore).

A match query's fused score is, up to a constant, Σ_c a_c · s_c(d): each lexical channel's score s_c is a sum of
the query terms' non-negative weights in document d, and the dense channel contributes its fetched hits (shifted by
the lowest fetched score, so non-negative too). Each (channel, term) is a posting list with an upper bound
(weight · the term's largest entry). Terms are read highest bound first; once the k-th best partial score θ exceeds
what all unread terms together could add, no unseen document can enter the top k, and the long posting lists of
common terms (有, 限, 公, 司 …) are never read. The survivors are then scored exactly, from their rows, by the
channels' own code, so the result equals scoring the whole pool (tests/matching/test_sparse_topk.py checks that).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

if TYPE_CHECKING:
    import scipy.sparse as sp

    from matching.lexical import BM25Channel

# θ is checked (and reading may stop) only before posting lists longer than this, over the first THETA_ROWS rows
# touched (THETA_ROWS_PER_K per row wanted, when more); shorter lists are always read (reading 64k postings costs
# about what finishing 4k rows does). θ from 8,192 rows for 6,400 wanted (MaxScore's third round at 1M) was the
# lowest of them, and 200k–450k rows survived to be finished, 13–37 ms; from 51,200 rows 21k–164k, 9–26 ms.
STOP_MIN_POSTINGS = 65_536
THETA_ROWS = 8_192
THETA_ROWS_PER_K = 8
# After the cut-off, a list is looked up row by row when the rows left are fewer than its length / this (a binary
# search costs about this many sequential postings), else scanned.
LOOKUP_RATIO = 16
# Partial sums are float32 in a different order than the exact scores: prune only with this relative margin.
PRUNE_SLACK = 1e-4

# The numba kernels (compiled on first use), in the order _compile returns them.
_Kernels = tuple[Callable[..., Any], ...]
_kernels: _Kernels | None = None
_local = threading.local()
_NO_POOL = np.zeros(1, np.uint8)


def _compile() -> _Kernels:
    global _kernels
    if _kernels is None:
        from numba import njit

        @njit(nogil=True, cache=True)
        def scatter_add(
            rows: np.ndarray,
            vals: np.ndarray,
            weight: np.float32,
            acc: np.ndarray,
            seen: np.ndarray,
            touched: np.ndarray,
            n_touched: int,
        ) -> int:
            for i in range(rows.shape[0]):
                r = rows[i]
                if seen[r] == 0:
                    seen[r] = 1
                    touched[n_touched] = r
                    n_touched += 1
                acc[r] += weight * vals[i]
            return n_touched

        @njit(nogil=True, cache=True)
        def add_flagged(
            rows: np.ndarray, vals: np.ndarray, weight: np.float32, acc: np.ndarray, seen: np.ndarray
        ) -> None:
            # Only rows still in the running (seen == 2) take the list's values.
            for i in range(rows.shape[0]):
                r = rows[i]
                if seen[r] == 2:
                    acc[r] += weight * vals[i]

        @njit(nogil=True, cache=True)
        def reset(acc: np.ndarray, seen: np.ndarray, touched: np.ndarray, n_touched: int) -> None:
            for i in range(n_touched):
                r = touched[i]
                acc[r] = 0.0
                seen[r] = 0

        @njit(nogil=True, cache=True)
        def bm25_rows(
            indptr: np.ndarray,
            indices: np.ndarray,
            counts: np.ndarray,
            idf: np.ndarray,
            length_norm: np.ndarray,
            ratio: np.ndarray,
            share: float,
            segment_c: float,
            rows: np.ndarray,
            qslot: np.ndarray,
            qvals: np.ndarray,
            out: np.ndarray,
        ) -> None:
            # A row's BM25 weights for the query's columns only (qslot[col] = 1 + position in qvals, else 0), computed
            # and summed (ascending columns, float32) exactly as the column weights and the whole-pool product are.
            for i in range(rows.shape[0]):
                r = rows[i]
                s = np.float32(0.0)
                for a in range(indptr[r], indptr[r + 1]):
                    j = qslot[indices[a]]
                    if j:
                        tf = np.float64(counts[a])
                        idf64 = np.float64(idf[indices[a]])
                        if share == 0.0:  # matching.lexical.bm25_weights, operation for operation
                            w = np.float32(idf64 * tf / (length_norm[r] + tf))
                        else:
                            seg = 1.0 / (1.0 + segment_c * np.float64(ratio[a]))
                            if share == 1.0:
                                w = np.float32(idf64 * seg)
                            else:
                                w = np.float32(idf64 * ((1.0 - share) * (tf / (length_norm[r] + tf)) + share * seg))
                        s += w * qvals[j - 1]
                out[i] = s

        @njit(nogil=True, cache=True)
        def weighted_rows(
            indptr: np.ndarray,
            indices: np.ndarray,
            data: np.ndarray,
            rows: np.ndarray,
            qslot: np.ndarray,
            qvals: np.ndarray,
            out: np.ndarray,
        ) -> None:
            for i in range(rows.shape[0]):
                r = rows[i]
                s = np.float32(0.0)
                for a in range(indptr[r], indptr[r + 1]):
                    j = qslot[indices[a]]
                    if j:
                        s += data[a] * qvals[j - 1]
                out[i] = s

        @njit(nogil=True, cache=True)
        def lookup_add(
            term_rows: np.ndarray,
            term_vals: np.ndarray,
            weight: np.float32,
            rows: np.ndarray,
            n_rows: int,
            acc: np.ndarray,
        ) -> None:
            # Each of the ascending rows still in the running, looked up in an ascending posting list: a galloping
            # search onwards from the previous row's place, so that the list is walked forwards through the cache
            # instead of binary-searched from its ends for every row.
            size = term_rows.shape[0]
            lo = 0
            for i in range(n_rows):
                r = rows[i]
                step = 1
                hi = lo
                while hi < size and term_rows[hi] < r:
                    lo = hi + 1
                    hi = lo + step
                    step <<= 1
                if hi > size:
                    hi = size
                while lo < hi:
                    mid = (lo + hi) >> 1
                    if term_rows[mid] < r:
                        lo = mid + 1
                    else:
                        hi = mid
                if lo < size and term_rows[lo] == r:
                    acc[r] += weight * term_vals[lo]

        @njit(nogil=True, cache=True)
        def prune(
            rows: np.ndarray,
            n_rows: int,
            acc: np.ndarray,
            seen: np.ndarray,
            k: int,
            theta: float,
            rest: float,
            slack: float,
        ) -> tuple[int, float]:
            # Raise θ to the k-th best score of the rows left, then keep (compacted to the front of `rows`) those
            # that the unread lists' bounds `rest` could still lift to θ; the others are unflagged.
            scores = np.empty(n_rows, np.float32)
            for i in range(n_rows):
                scores[i] = acc[rows[i]]
            if n_rows >= k:
                kth = np.float64(np.partition(scores, n_rows - k)[n_rows - k])
                if kth > theta:
                    theta = kth
            margin = theta - abs(theta) * slack - 1e-6
            kept = 0
            for i in range(n_rows):
                if scores[i] + rest >= margin:
                    rows[kept] = rows[i]
                    kept += 1
                else:
                    seen[rows[i]] = 1
            return kept, theta

        @njit(nogil=True, cache=True)
        def survivors(
            acc: np.ndarray,
            touched: np.ndarray,
            n_touched: int,
            in_pool: np.ndarray,
            use_pool: bool,
            rest: float,
            margin: float,
        ) -> np.ndarray:
            # The touched pool rows whose partial score plus the unread lists' bounds can still reach θ.
            out = np.empty(n_touched, np.int64)
            kept = 0
            for i in range(n_touched):
                r = touched[i]
                if use_pool and in_pool[r] != 1:
                    continue
                if acc[r] + rest >= margin:
                    out[kept] = r
                    kept += 1
            return out[:kept]

        _kernels = (scatter_add, reset, bm25_rows, weighted_rows, add_flagged, lookup_add, prune, survivors)
    return _kernels


def _slots(width: int, cols: np.ndarray) -> np.ndarray:
    """Per column of the vocabulary: 1 + the column's position among the query's columns, 0 for the others."""
    slot = np.zeros(width, np.int32)
    slot[np.asarray(cols, np.int64)] = np.arange(1, len(cols) + 1, dtype=np.int32)
    return slot


def bm25_row_scores(channel: BM25Channel, rows: np.ndarray, cols: np.ndarray, vals: np.ndarray) -> np.ndarray:
    """BM25 scores of `rows` for ascending query columns `cols` weighted `vals` (float32), from the row counts."""
    out = np.zeros(len(rows), np.float32)
    m = channel.counts
    _compile()[2](
        m.indptr,
        m.indices,
        m.data,
        channel.idf,
        channel.length_norm,
        channel.ratio,
        float(channel.segment_share),
        float(channel.segment_c),
        np.asarray(rows, np.int64),
        _slots(m.shape[1], cols),
        np.asarray(vals, np.float32),
        out,
    )
    return out


def weighted_row_scores(matrix: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray, vals: np.ndarray) -> np.ndarray:
    """Σ matrix[row, col] · val over ascending query columns, per row (float32), for a row-major weight matrix."""
    out = np.zeros(len(rows), np.float32)
    _compile()[3](
        matrix.indptr,
        matrix.indices,
        matrix.data,
        np.asarray(rows, np.int64),
        _slots(matrix.shape[1], cols),
        np.asarray(vals, np.float32),
        out,
    )
    return out


@dataclass
class Term:
    """One posting list: ascending rows, their non-negative values, and the weight applied to them."""

    rows: np.ndarray
    values: np.ndarray
    weight: float
    bound: float  # weight · max(values), from precomputed column maxima (computing it here would read the list)


Buffers = tuple[np.ndarray, np.ndarray, np.ndarray]  # partial scores, row marks, rows touched


def _take_buffers(n: int) -> Buffers:
    """Scratch arrays for n rows, zeroed, from this thread's free ones (a web server searches the same engine from
    several threads; a thread may hold two readers at once)."""
    free: list[Buffers] = getattr(_local, "free", None) or []
    _local.free = free
    while free:
        buf = free.pop()
        if len(buf[0]) >= n:
            return buf
    return np.zeros(n, np.float32), np.zeros(n, np.uint8), np.zeros(n, np.int32)


def _give_back(buf: Buffers) -> None:
    """Return zeroed scratch arrays to this thread's free ones."""
    _local.free.append(buf)


def kth_largest(values: np.ndarray, k: int) -> float:
    """The k-th largest of `values` (-inf when there are fewer than k)."""
    if len(values) < k:
        return -np.inf
    return float(np.partition(values, len(values) - k)[len(values) - k])


@dataclass
class Candidates:
    rows: np.ndarray  # ascending rows that may be in the top k (every row that is, and some that are not)
    postings_read: int  # of postings_total: what pruning saved
    postings_total: int


class PostingReader:
    """MaxScore over one query's posting lists, asked for the candidates of a growing k.

    A larger k lowers θ, so reading from scratch would read whole again the lists a smaller k read whole: the reader
    keeps those partial scores and resumes after them. Its candidates for each k hold the k best, as reading from
    scratch does; with θ from a fixed number of rows (THETA_ROWS_PER_K = 0) they are exactly those of reading from
    scratch (θ, the k-th best partial score of the first rows touched, does not fall as lists are added). With θ
    from more rows for a larger k, reading from scratch may stop earlier than where the reader resumes.
    Use it as a context manager: the per-thread scratch arrays are cleared on exit."""

    def __init__(self, terms: list[Term], n: int, in_pool: np.ndarray | None = None) -> None:
        self._kernels = _compile()
        self._buffers = _take_buffers(n)
        self._acc, self._seen, self._touched = self._buffers
        self._in_pool = in_pool  # uint8 per row (None: every row): the rows that may rank
        self._terms = sorted((t for t in terms if len(t.rows) and t.weight > 0), key=lambda t: -t.bound)
        self._total = sum(len(t.rows) for t in self._terms)
        bounds = np.asarray([t.bound for t in self._terms], np.float64)
        self._remaining = np.concatenate([np.cumsum(bounds[::-1])[::-1], [0.0]]) if len(bounds) else np.zeros(1)
        self._n_touched = 0
        self._next = 0  # the first list not read whole
        self._read = 0  # postings of the lists read whole

    def __enter__(self) -> PostingReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self._kernels[1](self._acc, self._seen, self._touched, self._n_touched)  # reset
        self._n_touched = 0
        _give_back(self._buffers)

    def candidates(self, k: int) -> Candidates:
        """The pool rows that may be in the top k of Σ term weight · value. When fewer than k pool rows score above
        zero, every term was read and every other pool row scores 0."""
        scatter_add, _, _, _, add_flagged, lookup_add, prune, survivors = self._kernels
        acc, seen, touched, in_pool = self._acc, self._seen, self._touched, self._in_pool
        terms, remaining = self._terms, self._remaining
        theta, stop, theta_rows = -np.inf, len(terms), max(THETA_ROWS, THETA_ROWS_PER_K * k)
        for j in range(self._next, len(terms)):
            term = terms[j]
            # Before a long list, see whether it can still matter. θ comes from the rows the strongest terms touched
            # first (any k rows' partial scores bound the final k-th best from below), which keeps checks cheap.
            # Short lists are read even when they can no longer matter: what they add to the rows they share with
            # the top lowers the bound of the unread lists, and so the number of rows left to finish below.
            if j and len(term.rows) > STOP_MIN_POSTINGS:
                first = _pool_scores(acc, touched[: min(self._n_touched, theta_rows)], in_pool)[1]
                theta = max(theta, kth_largest(first, k))
                if remaining[j] < theta * (1 - PRUNE_SLACK):
                    stop = j
                    break
            self._n_touched = scatter_add(
                term.rows, term.values, np.float32(term.weight), acc, seen, touched, self._n_touched
            )
            self._read += len(term.rows)
        self._next = stop
        read = self._read
        if stop == len(terms):  # everything read: the partial scores are the scores
            rows, scores = _pool_scores(acc, touched[: self._n_touched], in_pool)
            theta = kth_largest(scores, k)
            if theta == -np.inf:
                return Candidates(np.sort(rows), read, self._total)
            return Candidates(np.sort(rows[scores >= _margin(theta)]), read, self._total)
        # θ from the check that stopped the reading: a valid bound, without partitioning every row touched
        pool = _NO_POOL if in_pool is None else in_pool
        margin = _margin(theta)
        rows = survivors(acc, touched, self._n_touched, pool, in_pool is not None, float(remaining[stop]), margin)
        # The unread lists only matter for the rows left (marked seen == 2): each next list is either looked up
        # row by row (a galloping search, the rows in ascending order) or, when the rows left outnumber its length /
        # LOOKUP_RATIO, scanned adding only to them; then the rows that can no longer reach θ drop out, until no
        # unread list is left. Their partial scores are put back afterwards, for a larger k to resume from.
        rows = np.ascontiguousarray(rows, np.int64)
        original, partial = rows.copy(), acc[rows]
        seen[rows] = 2
        left, ascending = len(rows), False
        try:
            for j in range(stop, len(terms)):
                term = terms[j]
                if left * LOOKUP_RATIO < len(term.rows):
                    if not ascending:  # lookups walk the rows in order; prune keeps their order
                        rows[:left].sort()
                        ascending = True
                    lookup_add(term.rows, term.values, np.float32(term.weight), rows, left, acc)
                    read += left
                else:
                    add_flagged(term.rows, term.values, np.float32(term.weight), acc, seen)
                    read += len(term.rows)
                left, theta = prune(rows, left, acc, seen, k, float(theta), float(remaining[j + 1]), PRUNE_SLACK)
            return Candidates(np.sort(rows[:left]), read, self._total)
        finally:
            acc[original] = partial
            seen[original] = 1


def candidate_rows(terms: list[Term], n: int, k: int, in_pool: np.ndarray | None = None) -> Candidates:
    """The rows of n that may be in the top k of Σ term weight · value (PostingReader, asked once); `in_pool` (uint8
    per row, or None for all rows) limits the ranking to a filtered pool."""
    with PostingReader(terms, n, in_pool) as reader:
        return reader.candidates(k)


def _margin(theta: float) -> float:
    return theta - abs(theta) * PRUNE_SLACK - 1e-6


def _pool_scores(acc: np.ndarray, touched: np.ndarray, in_pool: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    rows = touched if in_pool is None else touched[in_pool[touched] == 1]
    return rows, acc[rows]
