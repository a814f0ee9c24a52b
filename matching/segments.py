"""Profile segments: a firm's term weighed in the best statement of its profile it occurs in.

A profile is a list of statements joined by "；": the firm name, its products, its industry, each item of its business
scope (经营范围) or each patent title. Scored as one bag of words, a long list of patent titles is penalised as a
whole by BM25's length normalisation, and a query term found in one short title counts little. The BM25 channels
(matching.lexical) therefore mix two saturations of each (firm, term):
- whole profile: tf / (tf + k1 · (1 − b + b · profile length / average profile length)), BM25 as usual;
- best segment: max over the segments the term occurs in of tf_s / (tf_s + k1_seg · len_s / average segment length)
  (b = 1), where a segment is the firm name plus one statement. With b = 1 the best segment is the one with the
  smallest len_s / tf_s whatever the averages are, so a channel keeps that ratio per entry and both saturations are
  recomputed exactly when firms are added or removed.
The share of the segment saturation follows the pool, as the dense weight does (matching.fusion): pools of short
statement lists (patent titles: median profile ≤ SHORT_PROFILE_CHARS) take the best segment; richer profiles (the
fields of a registry record, registered business scopes, whose items add up to what a firm does) keep the whole
profile. Measured (docs/matching.md): ICKG dev nDCG@10 +0.013 fused with segments; SW3 dev −0.010 and the demo
roster placements −0.039 with segments only, and neither gains from any share between. The firm keeps one row, so MaxScore, the pool statistics and every reader of the channel are
unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from matching.analysis import Progress, Vocabulary, count_matrices
from matching.fusion import SHORT_PROFILE_CHARS, median_profile_chars

# k1 of the best-segment saturation (b = 1): measured on ICKG dev, 0.6 over 0.9 / 1.2 / 1.5 (docs/matching.md).
SEGMENT_K1 = 0.6

# What separates a profile's statements: the profile joins its fields with "；" (matching.profiles) and registered
# business scopes and patent-title lists use "；" or ";" between items. Commas are not separators: they join the
# objects of one activity ("生产、销售：…，…").
SEGMENT_SEPARATORS = re.compile(r"[；;]")


def split_segments(text: str) -> list[str]:
    """The non-empty statements of a profile text ([""] when it has none)."""
    parts = [p.strip() for p in SEGMENT_SEPARATORS.split(text)]
    return [p for p in parts if p] or [""]


@dataclass(frozen=True)
class SegmentCounts:
    """Term counts per segment (segments × vocabulary, int32) and where each document's segments are."""

    counts: sp.csr_matrix
    doc_indptr: np.ndarray  # document i's segments are rows doc_indptr[i]:doc_indptr[i + 1]
    # The documents' own term counts (documents × vocabulary), when a segment repeats part of its document (the head):
    # None means the sum of the document's segments.
    doc_counts: sp.csr_matrix | None = None

    @property
    def docs(self) -> int:
        return len(self.doc_indptr) - 1

    def segment_lengths(self) -> np.ndarray:
        return np.asarray(self.counts.sum(axis=1), np.float64).ravel()

    def widened(self, width: int) -> "SegmentCounts":
        """The same counts over a vocabulary grown to `width` terms."""

        def wide(m: sp.csr_matrix) -> sp.csr_matrix:
            m = m.tocsr()
            return sp.csr_matrix((m.data, m.indices, m.indptr), shape=(m.shape[0], width))

        return SegmentCounts(
            wide(self.counts), self.doc_indptr, None if self.doc_counts is None else wide(self.doc_counts)
        )

    @classmethod
    def whole(cls, counts: sp.csr_matrix) -> "SegmentCounts":
        """Every document one segment (counts are documents × vocabulary)."""
        counts = counts.tocsr()
        return cls(counts, np.arange(counts.shape[0] + 1, dtype=np.int64))


def count_segments(
    texts: Sequence[str],
    analyzers: Sequence[str],
    vocabularies: dict[str, Vocabulary],
    workers: int | None = None,
    progress: Progress | None = None,
) -> dict[str, SegmentCounts]:
    """Per analyzer, the term counts of every segment of every text (matching.analysis.count_matrices over the
    statements; progress is reported in texts whose statements are all counted).

    A text's first statement is its head (the firm name: matching.profiles and matching.engine.pool put it first) and
    counts in each of its other statements: a segment is "name + one item", as a reader sees the item."""
    pieces = [split_segments(t) for t in texts]
    sizes = np.fromiter((len(p) for p in pieces), np.int64, len(pieces))
    first = np.zeros(len(texts) + 1, np.int64)
    np.cumsum(sizes, out=first[1:])
    flat = [s for p in pieces for s in p]
    by_text = None
    if progress is not None:
        outer = progress

        def by_text(done: int, total: int) -> None:  # statements done → texts done (a bar counts firms)
            outer(int(np.searchsorted(first[1:], done, side="right")), len(texts))

    counts = count_matrices(flat, analyzers, vocabularies, workers=workers, progress=by_text)
    # Rows kept: every statement but the head of a text that has others; each gets its head's counts added.
    multi = sizes > 1
    owner = np.repeat(np.arange(len(texts), dtype=np.int64), sizes)
    kept = np.ones(len(flat), bool)
    kept[first[:-1][multi]] = False
    rows = np.flatnonzero(kept)
    heads = first[owner[rows]]
    with_head = multi[owner[rows]].astype(np.int32)
    indptr = np.zeros(len(texts) + 1, np.int64)
    np.cumsum(np.where(multi, sizes - 1, sizes), out=indptr[1:])
    heads_only = sp.diags(with_head, format="csr", dtype=np.int32)  # a single-statement text adds no head
    own = sp.csr_matrix((np.ones(len(flat), np.int32), (owner, np.arange(len(flat)))), shape=(len(texts), len(flat)))
    return {
        name: SegmentCounts((m[rows] + heads_only @ m[heads]).tocsr(), indptr, (own @ m).tocsr())
        for name, m in counts.items()
    }


def count_for_share(
    texts: Sequence[str],
    analyzers: Sequence[str],
    vocabularies: dict[str, Vocabulary],
    share: float,
    workers: int | None = None,
    progress: Progress | None = None,
) -> dict[str, SegmentCounts]:
    """count_segments when the best segment has a `share` in the weights, else each text as one segment: with share
    0 the segments' ratios never reach a weight, and counting every statement of a million business scopes (6M
    segments, 400M character-bigram entries) took more than 20 GB."""
    if share > 0:
        return count_segments(texts, analyzers, vocabularies, workers=workers, progress=progress)
    counts = count_matrices(texts, analyzers, vocabularies, workers=workers, progress=progress)
    return {name: SegmentCounts.whole(m) for name, m in counts.items()}


def segment_share(profile_chars: float) -> float:
    """The best segment's share of a BM25 saturation for a pool whose median profile has `profile_chars` characters:
    1 for lists of short statements (at most SHORT_PROFILE_CHARS), else 0 (see the module docstring)."""
    return 1.0 if profile_chars <= SHORT_PROFILE_CHARS else 0.0


def pool_segment_share(texts: Sequence[str]) -> float:
    """segment_share of the median length of the pool's profile texts."""
    return segment_share(median_profile_chars(texts))


@dataclass(frozen=True)
class BestSegments:
    """What the BM25 channels keep of a batch of documents' segments."""

    counts: sp.csr_matrix  # the documents' own term counts (documents × vocabulary, int32, sorted indices)
    ratio: np.ndarray  # float32 per entry of `counts`: min over the term's segments of segment length / tf
    segments: np.ndarray  # int32 per document: its number of segments
    segment_length: np.ndarray  # float64 per document: the summed length of its segments


def best_segments(segments: SegmentCounts) -> BestSegments:
    """Each document's term counts and, per entry, the length/tf ratio of the term's best segment."""
    seg = segments.counts.tocsr()
    seg.sort_indices()
    width = max(seg.shape[1], 1)
    n_docs = segments.docs
    lengths = segments.segment_lengths()
    if seg.shape[0] == n_docs and segments.doc_counts is None:  # one segment per document (SegmentCounts.whole)
        # Ratios straight from the rows, without the general path's int64 keys and float64 copies per entry: the
        # peak of a 1M business-scope build went from 15.2 to 12.8 GB.
        ratio = np.repeat(lengths.astype(np.float32), np.diff(seg.indptr)) / np.maximum(seg.data, 1).astype(np.float32)
        counts = sp.csr_matrix((seg.data.astype(np.int32), seg.indices, seg.indptr), shape=seg.shape)
        return BestSegments(counts, ratio, np.ones(n_docs, np.int32), lengths)
    tf = seg.data.astype(np.float64)
    seg_rows = np.repeat(np.arange(seg.shape[0], dtype=np.int64), np.diff(seg.indptr))
    ratio = lengths[seg_rows] / np.maximum(tf, 1.0)
    owner = np.repeat(np.arange(n_docs, dtype=np.int64), np.diff(segments.doc_indptr))
    key = owner[seg_rows] * width + seg.indices.astype(np.int64)
    if len(key) and not np.all(key[1:] > key[:-1]):
        order = np.argsort(key, kind="stable")  # one document's segments repeat its terms
        key, ratio, tf = key[order], ratio[order], tf[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if len(key) else np.zeros(0, np.int64)
    best = np.minimum.reduceat(ratio, starts) if len(key) else np.zeros(0)
    total = np.add.reduceat(tf, starts) if len(key) else np.zeros(0)
    indptr = np.zeros(n_docs + 1, np.int64)
    np.cumsum(np.bincount(key[starts] // width, minlength=n_docs), out=indptr[1:])
    indices = (key[starts] % width).astype(np.int32)
    if segments.doc_counts is not None:
        own = segments.doc_counts.tocsr()
        own.sort_indices()
        if not (np.array_equal(own.indptr, indptr) and np.array_equal(own.indices, indices)):
            raise ValueError("a document's own terms differ from its segments' terms")
        total = own.data
    counts = sp.csr_matrix((total.astype(np.int32), indices, indptr), shape=(n_docs, segments.counts.shape[1]))
    per_doc = np.diff(segments.doc_indptr)
    seg_owner_len = np.bincount(owner, weights=lengths, minlength=n_docs) if len(owner) else np.zeros(n_docs)
    return BestSegments(counts, best.astype(np.float32), per_doc.astype(np.int32), seg_owner_len.astype(np.float64))
