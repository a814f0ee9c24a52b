"""Lexical channels over enterprise profiles: BM25 (Lucene variant) and character n-gram TF-IDF cosine.

Each channel keeps what a pool of a million firms needs and nothing more:
- term counts, row-major (int32; the source of truth, so added or removed firms only re-weight, never re-tokenise),
  and for BM25 each entry's best-segment length/tf ratio (matching.segments);
- the weights column-major (float32 CSC), so a query reads only its own terms' postings,
- per-term maxima (the bound MaxScore pruning needs, matching.sparse_topk).
Rows are positions 0..n-1; the engine maps them to document ids. Query terms carry weight 1 per distinct term
(or the given weights); a row's score sums its terms in ascending column order in float32, wherever it is computed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from matching.analysis import ANALYZERS, Vocabulary, count_matrices
from matching.page_cache import mapped_files
from matching.segments import SEGMENT_K1, SegmentCounts, best_segments, count_segments

# BM25 parameters measured on the ICKG dev benchmark: short, patent-title profiles prefer a low length
# penalty (b) and quick term-frequency saturation (k1); 0.9/0.4 is also the Anserini default.
BM25_K1 = 0.9
BM25_B = 0.4
_ANALYZER_NAMES = {"word": "word", "char12": "char12", "char_wb13": "char_wb13"}


def word_analyzer(text: str) -> list[str]:
    """jieba search-mode tokens."""
    return ANALYZERS["word"](text)


def char12_analyzer(text: str) -> list[str]:
    """Character unigrams and bigrams (dictionary-free; catches compounds jieba splits badly)."""
    return ANALYZERS["char12"](text)


def _save_arrays(folder: Path, **arrays: np.ndarray) -> None:
    for name, arr in arrays.items():
        np.save(folder / f"{name}.npy", np.ascontiguousarray(arr), allow_pickle=False)


def _load_array(folder: Path, name: str, mmap: bool) -> np.ndarray:
    arr: np.ndarray = np.load(folder / f"{name}.npy", mmap_mode="r" if mmap else None, allow_pickle=False)
    return arr


def _csr_arrays(prefix: str, m: sp.spmatrix) -> dict[str, np.ndarray]:
    return {f"{prefix}_data": m.data, f"{prefix}_indices": m.indices, f"{prefix}_indptr": m.indptr}


def _load_sparse(
    folder: Path, prefix: str, shape: tuple[int, int], cls: Callable[..., sp.spmatrix], mmap: bool
) -> sp.spmatrix:
    parts = [_load_array(folder, f"{prefix}_{p}", mmap) for p in ("data", "indices", "indptr")]
    m = cls(shape, dtype=parts[0].dtype)
    m.data, m.indices, m.indptr = parts  # arrays as stored (possibly memory-mapped): no copy, no check pass
    return m


def _widen(m: sp.csr_matrix, width: int) -> sp.csr_matrix:
    return sp.csr_matrix((m.data, m.indices, m.indptr), shape=(m.shape[0], width))


_column_sums: Callable[..., None] | None = None  # the numba kernel, compiled on first use


def column_scores(columns: sp.csc_matrix, cols: np.ndarray, vals: np.ndarray) -> np.ndarray:
    """Σ columns[row, col] · val over the query columns `cols` weighted `vals`, for every row (float32): the same
    sums, in the same order, as scipy's `columns[:, cols] @ vals`, without copying the columns out (a firm's own
    profile as a look-alike query selects 60–150 columns, some of them holding most of the pool's rows)."""
    global _column_sums
    if columns.dtype != np.float32:  # the kernel sums in float32, as scipy's product of float32 weights does
        return np.asarray(columns[:, cols] @ vals, dtype=np.float32).ravel()
    if _column_sums is None:
        from numba import njit

        @njit(nogil=True, cache=True)
        def column_sums(
            indptr: np.ndarray,
            indices: np.ndarray,
            data: np.ndarray,
            cols: np.ndarray,
            vals: np.ndarray,
            out: np.ndarray,
        ) -> None:
            # As scipy's matrix[:, cols] @ vals: column by column in the given order, float32 sums, data · val.
            for k in range(cols.shape[0]):
                c = cols[k]
                v = vals[k]
                for j in range(indptr[c], indptr[c + 1]):
                    out[indices[j]] += data[j] * v

        _column_sums = column_sums
    out = np.zeros(columns.shape[0], np.float32)
    _column_sums(
        columns.indptr, columns.indices, columns.data, np.asarray(cols, np.int64), np.asarray(vals, np.float32), out
    )
    return out


class _Channel:
    """What both channels share: a vocabulary, row-major and column-major matrices, term maxima."""

    analyzer = ""

    def __init__(self) -> None:
        self.vocab = Vocabulary()
        self.columns: sp.csc_matrix = sp.csc_matrix((0, 0), dtype=np.float32)
        self.col_max = np.zeros(0, np.float32)
        self.idf = np.zeros(0, np.float32)

    def analyze(self, text: str) -> list[str]:
        return ANALYZERS[self.analyzer](text)

    def __len__(self) -> int:
        n: int = self.columns.shape[0]
        return n

    def mapped_files(self) -> list[Path]:
        """The files the channel's arrays are memory-mapped from (none unless loaded with `mmap`)."""
        return mapped_files(vars(self).values())

    def row_weights(self, rows: np.ndarray) -> sp.csr_matrix:  # pragma: no cover - abstract
        raise NotImplementedError

    def row_terms(self, row: int) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def matrix(self) -> sp.csr_matrix:
        """All rows' weights, row-major (computed; for small pools and tests)."""
        return self.row_weights(np.arange(len(self), dtype=np.int64))

    def query_columns(self, terms: Sequence[str] | dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
        """(ascending column ids, weights) of the query's distinct known terms (weight 1 unless given)."""
        weights = terms if isinstance(terms, dict) else dict.fromkeys(terms, 1.0)
        ids = self.vocab.ids
        picked = sorted((ids[t], float(w)) for t, w in weights.items() if t in ids)
        cols = np.fromiter((c for c, _ in picked), np.int64, len(picked))
        vals = np.fromiter((w for _, w in picked), np.float32, len(picked))
        return cols, vals

    def scores_for(self, cols: np.ndarray, vals: np.ndarray) -> np.ndarray:
        """Score of every row for weighted columns (float32, summed in ascending column order)."""
        if len(self) == 0 or not len(cols):
            return np.zeros(len(self), np.float32)
        return column_scores(self.columns, cols, vals)

    def _load_shared(self, folder: Path, meta: dict[str, Any], mmap: bool) -> tuple[int, int]:
        """Read what both channels store (vocabulary, column weights, idf, term maxima); returns the matrix shape."""
        self.vocab = Vocabulary.from_terms(meta["terms"])
        shape = tuple(meta["shape"])
        self.columns = _load_sparse(folder, "columns", shape, sp.csc_matrix, mmap)
        self.idf = _load_array(folder, "idf", mmap)
        self.col_max = _load_array(folder, "col_max", mmap)
        return shape

    def _set_columns(self, weights: sp.csr_matrix) -> None:
        csc = weights.tocsc()
        csc.sort_indices()
        self.columns = csc
        self.col_max = np.zeros(csc.shape[1], np.float32)
        if csc.nnz:
            nonempty = np.flatnonzero(np.diff(csc.indptr))
            self.col_max[nonempty] = np.maximum.reduceat(csc.data, csc.indptr[nonempty])


def bm25_weights(
    idf: np.ndarray,
    tf: np.ndarray,
    length_norm: np.ndarray,
    ratio: np.ndarray,
    share: float,
    segment_c: float,
) -> np.ndarray:
    """float32 BM25 weights of entries (idf of each entry's term, tf, its row's length norm, its best segment's
    length/tf ratio): idf · ((1 − share) · tf / (tf + length_norm) + share / (1 + segment_c · ratio)).
    matching.sparse_topk's bm25_rows computes the same operations in the same order."""
    idf64, tf64 = idf.astype(np.float64), tf.astype(np.float64)
    if share == 0.0:
        return (idf64 * tf64 / (length_norm + tf64)).astype(np.float32)
    seg = 1.0 / (1.0 + segment_c * ratio.astype(np.float64))
    sat = seg if share == 1.0 else (1.0 - share) * (tf64 / (length_norm + tf64)) + share * seg
    return (idf64 * sat).astype(np.float32)


class BM25Channel(_Channel):
    """BM25 (Lucene idf, no (k1 + 1) factor) over the tokens of one analyzer; a term's saturation mixes the whole
    profile's and the term's best segment's (matching.segments) by the channel's `segment_share`."""

    def __init__(self, analyzer: str = "word", k1: float = BM25_K1, b: float = BM25_B, segment_share: float = 0.0):
        super().__init__()
        self.analyzer = _ANALYZER_NAMES[analyzer]
        self.k1, self.b = k1, b
        self.segment_share = float(segment_share)
        self.counts: sp.csr_matrix = sp.csr_matrix((0, 0), dtype=np.int32)
        self.length_norm = np.zeros(0, np.float64)  # k1 · (1 − b + b · dl / avgdl) per row
        self.ratio = np.zeros(0, np.float32)  # per entry of `counts`: its best segment's length / tf
        self.segments = np.zeros(0, np.int32)  # per row: number of segments
        self.segment_length = np.zeros(0, np.float64)  # per row: summed length of its segments
        self.segment_c = 0.0  # SEGMENT_K1 / the pool's average segment length

    # ---- building ---------------------------------------------------------------------------
    def build(self, texts: Sequence[str], tokens: Sequence[list[str]] | None = None, workers: int | None = 1) -> None:
        """Index the texts, segment by segment (or their pre-computed tokens, one segment per text)."""
        self.vocab = Vocabulary()
        if tokens is None:
            segments = count_segments(texts, [self.analyzer], {self.analyzer: self.vocab}, workers=workers)
            self.set_segments(segments[self.analyzer])
        else:
            self.set_counts(_count_tokens(tokens, self.vocab))

    def set_counts(self, counts: sp.csr_matrix) -> None:
        """Use these term counts (rows × vocabulary, each row one segment) and compute the weights."""
        self.set_segments(SegmentCounts.whole(counts))

    def set_segments(self, segments: SegmentCounts) -> None:
        """Use these documents' segment counts (over this channel's vocabulary) and compute the weights."""
        best = best_segments(segments.widened(len(self.vocab)))
        self.counts, self.ratio = best.counts, best.ratio
        self.segments, self.segment_length = best.segments, best.segment_length
        self._reweight()

    def update(self, keep: np.ndarray, segments: SegmentCounts | sp.csr_matrix) -> None:
        """Keep the rows where `keep` is True, append the new documents' rows (segment counts over the current,
        possibly grown, vocabulary; a plain count matrix is one segment per row) and recompute every weight (idf and
        the average lengths change)."""
        if not isinstance(segments, SegmentCounts):
            segments = SegmentCounts.whole(segments)
        width = len(self.vocab)
        new = best_segments(segments.widened(width))
        rows = np.flatnonzero(keep)
        if keep.all():
            kept, kept_ratio = self.counts, self.ratio
        else:
            kept, kept_ratio = self.counts[rows], self.ratio[np.repeat(keep, np.diff(self.counts.indptr))]
        self.counts = sp.vstack([_widen(kept, width), _widen(new.counts, width)], format="csr")
        self.ratio = np.concatenate([kept_ratio, new.ratio]).astype(np.float32, copy=False)
        self.segments = np.concatenate([self.segments[rows], new.segments]).astype(np.int32, copy=False)
        self.segment_length = np.concatenate([self.segment_length[rows], new.segment_length])
        self._reweight()

    def set_segment_share(self, share: float) -> None:
        """Weigh the channel with another best-segment share (the engine fixes it when the index is built, and
        counts each profile as one segment when it fixes 0: re-weigh only a channel built by segment)."""
        self.segment_share = float(share)
        self._reweight()

    def _reweight(self) -> None:
        counts = self.counts
        n = counts.shape[0]
        lengths = np.asarray(counts.sum(axis=1), np.float64).ravel()
        avgdl = float(lengths.mean()) if n else 0.0
        df = np.bincount(counts.indices, minlength=counts.shape[1]).astype(np.float64)
        idf = np.zeros(counts.shape[1], np.float64)
        seen = df > 0
        idf[seen] = np.log(1 + (n - df[seen] + 0.5) / (df[seen] + 0.5))
        self.idf = idf.astype(np.float32)
        self.length_norm = self.k1 * ((1 - self.b) + self.b * lengths / avgdl) if avgdl else np.full(n, self.k1)
        total = float(self.segment_length.sum())
        self.segment_c = SEGMENT_K1 * float(self.segments.sum()) / total if total > 0 else SEGMENT_K1
        self._set_columns(self._weights_of(counts, np.arange(n), self.ratio))

    def _weights_of(self, counts: sp.csr_matrix, rows: np.ndarray, ratio: np.ndarray) -> sp.csr_matrix:
        row_of_entry = np.repeat(rows, np.diff(counts.indptr))
        data = bm25_weights(
            self.idf[counts.indices],
            counts.data,
            self.length_norm[row_of_entry],
            ratio,
            self.segment_share,
            self.segment_c,
        )
        return sp.csr_matrix((data, counts.indices, counts.indptr), shape=counts.shape)

    # ---- reading ----------------------------------------------------------------------------
    def row_weights(self, rows: np.ndarray) -> sp.csr_matrix:
        rows = np.asarray(rows, np.int64)
        indptr = self.counts.indptr
        starts, sizes = indptr[rows], indptr[rows + 1] - indptr[rows]
        entries = np.repeat(starts - np.cumsum(sizes) + sizes, sizes) + np.arange(int(sizes.sum()))
        return self._weights_of(self.counts[rows], rows, self.ratio[entries])

    def row_terms(self, row: int) -> np.ndarray:
        """Column ids of the row's distinct terms (ascending)."""
        terms: np.ndarray = self.counts.indices[self.counts.indptr[row] : self.counts.indptr[row + 1]]
        return terms

    def scores(self, query: str, terms: Sequence[str] | dict[str, float] | None = None) -> np.ndarray:
        """BM25 score of every row for the query (float32, length = rows)."""
        cols, vals = self.query_columns(terms if terms is not None else self.analyze(query))
        return self.scores_for(cols, vals)

    # ---- persistence ------------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        _save_arrays(
            folder,
            idf=self.idf,
            length_norm=self.length_norm,
            ratio=self.ratio,
            segments=self.segments,
            segment_length=self.segment_length,
            col_max=self.col_max,
            **_csr_arrays("counts", self.counts),
            **_csr_arrays("columns", self.columns),
        )
        (folder / "bm25.json").write_text(
            json.dumps(
                {
                    "analyzer": self.analyzer,
                    "k1": self.k1,
                    "b": self.b,
                    "segment_share": self.segment_share,
                    "segment_c": self.segment_c,
                    "shape": list(self.counts.shape),
                    "terms": self.vocab.terms,
                },
                ensure_ascii=False,
            ),
            encoding="utf-8",
        )

    @classmethod
    def load(cls, folder: Path, mmap: bool = False) -> "BM25Channel":
        """With `mmap`, the arrays stay in the files (read-only, shared by every process that maps them)."""
        folder = Path(folder)
        meta = json.loads((folder / "bm25.json").read_text(encoding="utf-8"))
        channel = cls(meta["analyzer"], meta["k1"], meta["b"], meta["segment_share"])
        shape = channel._load_shared(folder, meta, mmap)
        channel.counts = _load_sparse(folder, "counts", shape, sp.csr_matrix, mmap)
        channel.length_norm = _load_array(folder, "length_norm", mmap)
        channel.ratio = _load_array(folder, "ratio", mmap)
        channel.segments = _load_array(folder, "segments", mmap)
        channel.segment_length = _load_array(folder, "segment_length", mmap)
        channel.segment_c = float(meta["segment_c"])
        return channel


def _count_tokens(tokens: Sequence[Sequence[str]], vocab: Vocabulary) -> sp.csr_matrix:
    lengths = np.fromiter((len(t) for t in tokens), np.int64, len(tokens))
    flat = vocab.add_all([t for toks in tokens for t in toks])
    indptr = np.zeros(len(tokens) + 1, np.int64)
    np.cumsum(lengths, out=indptr[1:])
    m = sp.csr_matrix((np.ones(len(flat), np.int32), flat, indptr), shape=(len(tokens), max(len(vocab), 1)))
    m.sum_duplicates()
    return m


class CharTfidfChannel(_Channel):
    """Cosine similarity of sublinear TF-IDF over character 1–3-grams within word boundaries.

    The same weights as scikit-learn's TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True,
    smooth idf, l2 norm, float32) — tests/matching/test_lexical_fusion_metrics.py checks it — computed from counts so large
    pools are analysed in parallel batches. Added rows use the fitted vocabulary and idf (new n-grams are ignored
    until the next build), as a fitted vectorizer would."""

    analyzer = "char_wb13"

    def __init__(self) -> None:
        super().__init__()
        self.rows: sp.csr_matrix = sp.csr_matrix((0, 0), dtype=np.float32)

    @property
    def fitted(self) -> bool:
        return len(self.vocab) > 0

    def build(self, texts: Sequence[str], workers: int | None = 1) -> None:
        self.vocab = Vocabulary()
        counts = count_matrices(texts, [self.analyzer], {self.analyzer: self.vocab}, workers=workers)[self.analyzer]
        self.set_counts(counts)

    def set_counts(self, counts: sp.csr_matrix) -> None:
        """Fit idf on these counts (rows × vocabulary) and keep their weights."""
        counts = _widen(counts.tocsr(), len(self.vocab))
        n = counts.shape[0]
        df = np.bincount(counts.indices, minlength=counts.shape[1]).astype(np.float32) + np.float32(1.0)
        idf = np.full_like(df, fill_value=n + 1, dtype=np.float32)
        idf /= df
        np.log(idf, out=idf)
        idf += np.float32(1.0)
        self.idf = idf
        self.rows = self._weigh(counts)
        self._set_columns(self.rows)

    def _weigh(self, counts: sp.csr_matrix) -> sp.csr_matrix:
        m = sp.csr_matrix((counts.data.astype(np.float32), counts.indices, counts.indptr), shape=counts.shape)
        m.sort_indices()
        np.log(m.data, m.data)
        m.data += np.float32(1.0)
        m.data *= self.idf[m.indices]
        norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1), np.float64).ravel())
        norms[norms == 0] = 1.0
        m.data /= np.repeat(norms, np.diff(m.indptr)).astype(np.float32)
        return m

    def _counts_known(self, texts: Sequence[str]) -> sp.csr_matrix:
        rows, cols = [], []
        ids = self.vocab.ids
        for r, text in enumerate(texts):
            for g in self.analyze(text):
                c = ids.get(g)
                if c is not None:
                    rows.append(r)
                    cols.append(c)
        m = sp.csr_matrix((np.ones(len(cols), np.int32), (rows, cols)), shape=(len(texts), len(self.vocab)))
        m.sum_duplicates()
        return m

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """TF-IDF rows (L2-normalised) for new texts, using the fitted vocabulary and idf."""
        return self._weigh(self._counts_known(texts))

    def update(self, keep: np.ndarray, texts: Sequence[str]) -> None:
        """Keep the rows where `keep` is True and append rows for `texts` with the fitted vocabulary and idf."""
        kept = self.rows[np.flatnonzero(keep)] if not keep.all() else self.rows
        self.rows = sp.vstack([kept, self.transform(texts)], format="csr") if len(texts) else kept
        self._set_columns(self.rows)

    def append(self, texts: Sequence[str]) -> None:
        """Add rows with the already fitted vocabulary (a channel never built is built from them)."""
        if not self.fitted:
            self.build(texts)
        else:
            self.update(np.ones(len(self), bool), texts)

    def row_weights(self, rows: np.ndarray) -> sp.csr_matrix:
        return self.rows[np.asarray(rows, np.int64)]

    def row_terms(self, row: int) -> np.ndarray:
        terms: np.ndarray = self.rows.indices[self.rows.indptr[row] : self.rows.indptr[row + 1]]
        return terms

    def query_weights(self, query: str) -> tuple[np.ndarray, np.ndarray]:
        """(ascending column ids, TF-IDF weights) of the query text."""
        q = self.transform([query])
        return q.indices.astype(np.int64), q.data.astype(np.float32)

    def scores(self, query: str) -> np.ndarray:
        if not self.fitted or len(self) == 0:
            return np.zeros(len(self), np.float32)
        return self.scores_for(*self.query_weights(query))

    def save(self, folder: Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        _save_arrays(
            folder,
            idf=self.idf,
            col_max=self.col_max,
            **_csr_arrays("rows", self.rows),
            **_csr_arrays("columns", self.columns),
        )
        (folder / "tfidf.json").write_text(
            json.dumps(
                {"analyzer": self.analyzer, "shape": list(self.rows.shape), "terms": self.vocab.terms},
                ensure_ascii=False,
            ),
            encoding="utf-8",
        )

    @classmethod
    def load(cls, folder: Path, mmap: bool = False) -> "CharTfidfChannel":
        folder = Path(folder)
        meta = json.loads((folder / "tfidf.json").read_text(encoding="utf-8"))
        channel = cls()
        channel.rows = _load_sparse(folder, "rows", channel._load_shared(folder, meta, mmap), sp.csr_matrix, mmap)
        return channel
