"""MatchEngine: hybrid retrieval of enterprises for chain-link queries (lexical + optional dense + learned re-ranking).

Channels (see matching.fusion for how they are combined):
- "bm25":  BM25 over jieba search-mode word tokens;
- "char":  BM25 over character 1–2-grams;
- "tfidf": cosine of character 1–3-gram TF-IDF;
- "dense": inner product of embedder vectors (vector index from matching.vectors).
When a learned model is applied (matching.learning), the top candidates of the fused ranking are
re-ranked by a classifier over per-channel features and label-memory features.
"""
from __future__ import annotations

import itertools
import json
import math
import pickle
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import numpy as np
import scipy.sparse as sp

from matching.analysis import count_matrices
from matching.fusion import FusionWeights, fuse, zscore
from matching.lexical import BM25Channel, CharTfidfChannel
from matching.text import char_ngrams, normalize, tokenize, tokenize_query

RERANK_CANDIDATES = 200     # candidates re-ranked by a learned model (measured: recall@200 covers most gains)
DENSE_CANDIDATES = 1000     # dense hits fetched per query; the rest of the pool gets the lowest fetched score
SIMILAR_DENSE_WEIGHT = 0.3  # look-alike search leans on the embedder when one is present
MAX_MATCHED_TERMS = 8
_ZSCORE_EPS = 1e-9  # the epsilon of matching.fusion.zscore
QUERY_CACHE_SIZE = 16  # prepared query sets (e.g. a chain's leaf links) kept per engine
# Channel statistics (mean, std of a query's scores) come from every firm up to this pool size, above it from a
# fixed, evenly spread sample of this many firms: at 1M firms the relative error of the std is ≈ 0.3 %, and the
# statistics cost a few postings instead of every posting of the query's terms.
STATS_SAMPLE = 65_536
# The built-in embedder learns its vocabulary and SVD basis from at most this many profiles spread over the pool.
EMBEDDER_FIT_SAMPLE = 50_000
BASE_FEATURES = ("z_bm25", "z_char", "z_tfidf", "z_fused", "log_rank", "rel_bm25", "rel_char",
                 "cover_bigrams", "cover_words", "cover_name", "log_doc_len", "query_len")
LEXICAL_CHANNELS = ("bm25", "char", "tfidf")
_ENGINE_FILE = "engine.json"
FORMAT_VERSION = 2  # 2: count matrices + column-major weights, no token lists


@dataclass(slots=True)
class Document:
    id: int
    name: str
    text: str              # profile text (matching.profiles.enterprise_profile)
    products: str = ""


@dataclass
class Hit:
    id: int
    score: float
    channels: dict[str, float] = field(default_factory=dict)
    matched_terms: list[str] = field(default_factory=list)


def _indexed_text(doc: Document) -> str:
    """The text the word and character BM25 channels index: the profile plus the name and products it lacks."""
    text = doc.text if doc.name in doc.text else f"{doc.name} {doc.text}"
    if doc.products and doc.products not in text:
        text = f"{text} {doc.products}"
    return text


def _query_bigrams(query: str) -> set[str]:
    grams = set(char_ngrams(query, 2, 2))
    return grams or set(char_ngrams(query, 1, 1))


def _pattern_scores(channel: BM25Channel, rows: np.ndarray, query_rows: np.ndarray) -> np.ndarray:
    """(len(rows), len(query_rows)) BM25 scores of `rows` for queries made of each query row's own terms.

    A row of the BM25 matrix is non-zero exactly at the document's distinct terms (Lucene idf > 0), so its
    pattern is the document used as a query with every term weighted 1, as BM25Channel.scores weighs them."""
    queries = channel.row_weights(query_rows).astype(np.float32)
    queries.data = (queries.data != 0).astype(np.float32)
    return np.asarray((channel.row_weights(rows) @ queries.T).todense(), np.float32)


def _term_matrix(channel: BM25Channel, queries: Sequence[Sequence[str]]) -> sp.csc_matrix:
    """(terms, queries) matrix: each query's distinct known terms with weight 1, as BM25Channel.scores weighs them."""
    rows, cols = [], []
    for q, terms in enumerate(queries):
        ids = channel.query_columns(terms)[0]
        rows.extend(ids.tolist())
        cols.extend([q] * len(ids))
    return sp.csc_matrix((np.ones(len(rows), np.float32), (rows, cols)),
                         shape=(len(channel.vocab), len(queries)))


def _masked_zscore(scores: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Column-wise z-score over the valid rows only (as matching.fusion.zscore over each column's pool)."""
    scores = np.asarray(scores, np.float64)
    count = np.maximum(valid.sum(axis=0), 1)
    mean = np.where(valid, scores, 0.0).sum(axis=0) / count
    std = np.sqrt(np.where(valid, (scores - mean) ** 2, 0.0).sum(axis=0) / count)
    return (scores - mean) / (std + _ZSCORE_EPS)


def _spread(n: int, size: int) -> np.ndarray:
    """`size` row positions spread evenly over 0..n-1 (all rows when n <= size)."""
    if n <= size:
        return np.arange(n, dtype=np.int64)
    return np.unique(np.linspace(0, n - 1, size).astype(np.int64))


@dataclass
class _ChannelQuery:
    """One channel of one query: its weighted columns (lexical) or fetched hits (dense), and its statistics."""

    name: str
    cols: np.ndarray          # lexical: ascending column ids; dense: fetched rows
    vals: np.ndarray          # lexical: query weights; dense: fetched scores
    mean: float
    std: float
    floor: float = 0.0        # dense: the score every row not fetched gets


def _explaining_terms(found: list[str]) -> list[str]:
    """The matched query words worth showing, in query order, at most MAX_MATCHED_TERMS."""
    longer = [t for t in found if len(t) > 1]
    # A single shared character explains little when word matches exist.
    found = longer or found
    # Drop a term contained in a longer matched term (jieba search mode yields both): one substring search per
    # term in the longer terms joined ("\x00" never occurs in a term), stopping at MAX_MATCHED_TERMS kept.
    joined: dict[int, str] = {}
    kept: list[str] = []
    for t in found:
        size = len(t)
        if size not in joined:
            joined[size] = "\x00".join(o for o in found if len(o) > size)
        if t not in joined[size]:
            kept.append(t)
            if len(kept) == MAX_MATCHED_TERMS:
                break
    return kept


class _RowOf:
    """Document id → pool row, vectorised (a dict of a million ints would cost ≈ 100 MB)."""

    def __init__(self, row_ids: np.ndarray) -> None:
        self.row_ids = row_ids
        ids = row_ids
        if len(ids) and ids.min() >= 0 and ids.max() < 4 * len(ids) + 1024:
            self.table = np.full(int(ids.max()) + 1, -1, np.int64)
            self.table[ids] = np.arange(len(ids))
            self.sorted = None
        else:
            order = np.argsort(ids, kind="stable")
            self.table, self.sorted = None, (ids[order], order)

    def rows(self, ids: np.ndarray) -> np.ndarray:
        """Row of each id, -1 where unknown."""
        ids = np.asarray(ids, np.int64)
        if self.table is not None:
            out = np.full(len(ids), -1, np.int64)
            inside = (ids >= 0) & (ids < len(self.table))
            out[inside] = self.table[ids[inside]]
            return out
        keys, order = self.sorted
        if not len(keys):
            return np.full(len(ids), -1, np.int64)
        pos = np.minimum(np.searchsorted(keys, ids), len(keys) - 1)
        return np.where(keys[pos] == ids, order[pos], -1)

    def get(self, doc_id: int, default=None):
        row = int(self.rows(np.asarray([doc_id]))[0])
        return default if row < 0 else row

    def __getitem__(self, doc_id: int) -> int:
        row = self.get(doc_id)
        if row is None:
            raise KeyError(doc_id)
        return row

    def __contains__(self, doc_id: int) -> bool:
        return self.get(doc_id) is not None


class MatchEngine:
    """Builds and searches one pool of enterprise profiles."""

    def __init__(self, embedder=None, weights: FusionWeights | None = None, exact_max: int = 200_000,
                 vector_backend: str = "faiss") -> None:
        self.embedder = embedder
        self.weights = weights or FusionWeights()
        self.exact_max = exact_max
        self.vector_backend = vector_backend  # a name registered in matching.vectors (register_backend)
        self.workers: int | None = None  # analysis processes for large builds (None: one per core)
        self._docs: dict[int, Document] = {}
        self._row_ids = np.zeros(0, np.int64)
        self._row_index: _RowOf | None = None
        self._stale: set[int] = set()   # ids whose rows go at the next refresh (removed or replaced)
        self._added: set[int] = set()   # ids appended at the next refresh (the last entries of _docs)
        self._last_query_terms: tuple[tuple, list[str]] | None = None
        self._bm25 = BM25Channel("word")
        self._char = BM25Channel("char12")
        self._tfidf = CharTfidfChannel()
        self._tfidf_lock = threading.Lock()
        self._vindex = None
        self._learned = None
        self._built_at = 0.0
        self._build_seconds = 0.0

    # ---- building -------------------------------------------------------------------------
    def build(self, docs: Sequence[Document], progress: Callable[[int, int], None] | None = None,
              vectors: np.ndarray | None = None) -> None:
        """Index a fresh pool (replaces anything indexed before).

        `vectors` (one row per document, encoded by this engine's already fitted embedder) skip fitting and
        encoding, e.g. when they come from a resumable embedding store (matching.embedding_store)."""
        start = time.time()
        self._docs = {}
        for doc in docs:
            self._docs[int(doc.id)] = doc
        self._stale, self._added = set(), set()
        self._set_rows(np.fromiter(self._docs.keys(), dtype=np.int64, count=len(self._docs)))
        self._index_lexical(list(self._docs.values()), progress)
        if self.embedder is not None:
            if vectors is None:
                self.embedder.fit(self._fit_sample())
            self._build_vectors(vectors)
        self._built_at = time.time()
        self._build_seconds = self._built_at - start

    def attach_embedder(self, embedder, vectors: np.ndarray | None = None) -> None:
        """Use another embedder for the dense channel without re-analysing the lexical channels. `vectors` (one row
        per pooled document in document order, from this embedder, already fitted) skip fitting and encoding."""
        self._fresh()
        self.embedder = embedder
        if vectors is None:
            embedder.fit(self._fit_sample())
        self._build_vectors(vectors)

    def _set_rows(self, row_ids: np.ndarray) -> None:
        self._row_ids = row_ids
        self._row_index = None

    @property
    def _row_of(self) -> _RowOf:
        if self._row_index is None or self._row_index.row_ids is not self._row_ids:
            self._row_index = _RowOf(self._row_ids)
        return self._row_index

    def _fit_sample(self) -> list[str]:
        docs = list(self._docs.values())
        return [docs[i].text for i in _spread(len(docs), EMBEDDER_FIT_SAMPLE)]

    def _index_lexical(self, docs: list[Document], progress: Callable[[int, int], None] | None) -> None:
        """Count the terms of every document (in worker processes for large pools) and weigh the BM25 channels."""
        from matching.analysis import Vocabulary

        vocabs = {"word": Vocabulary(), "char12": Vocabulary()}
        counts = count_matrices([_indexed_text(d) for d in docs], ["word", "char12"], vocabs, workers=self.workers,
                                progress=progress)
        self._bm25 = BM25Channel("word", self._bm25.k1, self._bm25.b)
        self._char = BM25Channel("char12", self._char.k1, self._char.b)
        for channel, name in ((self._bm25, "word"), (self._char, "char12")):
            channel.vocab = vocabs[name]
            channel.set_counts(counts.pop(name))
        self._tfidf = CharTfidfChannel()
        if self.weights.tfidf or self._learned is not None:
            self._ensure_tfidf()

    def _ensure_tfidf(self) -> None:
        """Analyse the TF-IDF channel when something uses it (a fusion weight, the learned re-ranker's features, a
        look-alike weighing it): at a million firms it costs as much time and memory as both BM25 channels."""
        if self._tfidf.fitted or not len(self._row_ids):
            return
        from matching.analysis import Vocabulary

        with self._tfidf_lock:
            if self._tfidf.fitted:
                return
            vocab = Vocabulary()
            texts = [self._docs[int(i)].text for i in self._row_ids]
            counts = count_matrices(texts, ["char_wb13"], {"char_wb13": vocab}, workers=self.workers)["char_wb13"]
            channel = CharTfidfChannel()
            channel.vocab = vocab
            channel.set_counts(counts)
            self._tfidf = channel

    def _build_vectors(self, vectors: np.ndarray | None = None) -> None:
        from matching.vectors import make_vector_index

        ids = self._row_ids
        if vectors is None:
            vectors = self.embedder.encode([self._docs[int(i)].text for i in ids]) if len(ids) else \
                np.zeros((0, self.embedder.dim), np.float32)
        self._vindex = make_vector_index(len(ids), self.embedder.dim, exact_max=self.exact_max,
                                         backend=self.vector_backend)
        self._vindex.metadata.update(embedder=self.embedder.name)
        if len(ids):
            self._vindex.index(ids, np.asarray(vectors, np.float32))

    def add(self, docs: Sequence[Document]) -> None:
        """Insert or update documents (same id replaces); lexical channels refresh on the next search."""
        for doc in docs:
            doc_id = int(doc.id)
            if doc_id in self._docs:
                del self._docs[doc_id]  # re-inserted at the end: new rows follow the kept ones in dict order
                self._stale.add(doc_id)
            self._docs[doc_id] = doc
            self._added.add(doc_id)
        if self.embedder is not None and docs:
            if self._vindex is None:
                self.embedder.fit(self._fit_sample())
                self._fresh()
                self._build_vectors()
            else:
                ids = np.asarray([int(d.id) for d in docs], np.int64)
                self._vindex.append(ids, self.embedder.encode([d.text for d in docs]).astype(np.float32))

    def remove(self, ids: Sequence[int]) -> None:
        """Remove documents by id (unknown ids are ignored)."""
        gone = [int(i) for i in ids if int(i) in self._docs]
        for i in gone:
            del self._docs[i]
            self._stale.add(i)
            self._added.discard(i)
        if gone and self._vindex is not None:
            self._vindex.delete(np.asarray(gone, np.int64))

    def _fresh(self) -> None:
        """Apply pending additions and removals to the lexical channels: only new documents are analysed."""
        if not (self._stale or self._added):
            return
        stale = np.fromiter(self._stale, np.int64, len(self._stale))
        keep = ~np.isin(self._row_ids, stale) if len(stale) else np.ones(len(self._row_ids), bool)
        new_ids = list(itertools.islice(reversed(self._docs), len(self._added)))[::-1]
        new_docs = [self._docs[i] for i in new_ids]
        if not len(self._row_ids):
            self._set_rows(np.fromiter(self._docs.keys(), dtype=np.int64, count=len(self._docs)))
            self._index_lexical(new_docs, None)
        else:
            vocabs = {"word": self._bm25.vocab, "char12": self._char.vocab}
            counts = count_matrices([_indexed_text(d) for d in new_docs], ["word", "char12"], vocabs,
                                    workers=self.workers)
            self._bm25.update(keep, counts["word"])
            self._char.update(keep, counts["char12"])
            if self._tfidf.fitted:
                self._tfidf.update(keep, [d.text for d in new_docs])
            self._set_rows(np.concatenate([self._row_ids[keep], np.asarray(new_ids, np.int64)]))
        self._stale, self._added = set(), set()

    def __len__(self) -> int:
        return len(self._docs)

    def __contains__(self, doc_id: int) -> bool:
        return int(doc_id) in self._docs

    def document(self, doc_id: int) -> Document | None:
        return self._docs.get(int(doc_id))

    @property
    def row_ids(self) -> np.ndarray:
        """Document id of each pool row, the row order of channel_scores (read-only)."""
        self._fresh()
        view = self._row_ids.view()
        view.flags.writeable = False
        return view

    def row_of(self, doc_id: int) -> int:
        """Pool row of a pooled document (KeyError when it is not pooled)."""
        self._fresh()
        return self._row_of[int(doc_id)]

    @property
    def channels(self) -> Mapping[str, object]:
        """The lexical channels by name ("bm25", "char", "tfidf"), as they are (TF-IDF maybe not analysed)."""
        self._fresh()
        return MappingProxyType({"bm25": self._bm25, "char": self._char, "tfidf": self._tfidf})

    @property
    def vector_index(self):
        """The dense channel's vector index (None without an embedder or before vectors are built)."""
        return self._vindex

    def rank_whole_pool(self, query: str, k: int, allowed_ids: Collection[int] | None = None,
                        excluded_ids: Collection[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(document ids best first, fused scores) of the k best, scoring every pooled document: the reference
        ranking the pruned search must equal (no learned re-ranking)."""
        self._fresh()
        top, _, fused, pool = self._rank_pool(query, self._pool_mask(allowed_ids, excluded_ids), k)
        return self._row_ids[pool[top]], fused[top]

    def matched_terms(self, query: str, doc_id: int) -> list[str]:
        """The query words a pooled document contains, as its Hit shows them (empty when not pooled)."""
        self._fresh()
        return self._matched_terms(query, doc_id)

    # ---- scoring --------------------------------------------------------------------------
    def _rows_of(self, ids: Collection[int]) -> np.ndarray:
        """Pool rows of the given document ids (unknown ids dropped), vectorised: filters can hold most of the pool."""
        if isinstance(ids, np.ndarray):
            ids = ids.astype(np.int64, copy=False)
        elif isinstance(ids, (list, tuple)):
            ids = np.asarray(ids, dtype=np.int64)  # one C pass; a generator of int() costs ~10x more per id
        else:
            ids = np.fromiter(ids, np.int64, len(ids))
        rows = self._row_of.rows(ids)
        return rows[rows >= 0]

    def _pool_mask(self, allowed_ids: Collection[int] | None, excluded_ids: Collection[int] | None) -> np.ndarray:
        mask = np.ones(len(self._row_ids), bool)
        if allowed_ids is not None:
            mask[:] = False
            mask[self._rows_of(allowed_ids)] = True
        if excluded_ids is not None and len(excluded_ids):
            mask[self._rows_of(excluded_ids)] = False
        return mask

    def _pool_flags(self, allowed_ids, excluded_ids) -> np.ndarray | None:
        """uint8 pool membership per row for sparse_topk (None: the whole pool)."""
        if allowed_ids is None and (excluded_ids is None or not len(excluded_ids)):
            return None
        return self._pool_mask(allowed_ids, excluded_ids).view(np.uint8)

    def _dense_hits(self, query: str | None, vector: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, float]:
        """(rows, scores, floor) of the DENSE_CANDIDATES nearest documents; every other row counts as `floor`."""
        empty = (np.zeros(0, np.int64), np.zeros(0, np.float32), 0.0)
        if self.embedder is None or self._vindex is None or not len(self._row_ids):
            return empty
        if vector is None:
            vector = self.embedder.encode([query])
        k = min(DENSE_CANDIDATES, len(self._vindex))
        scores, ids = self._vindex.search(np.asarray(vector, np.float32).reshape(1, -1), k)
        found = ids[0] >= 0
        if not found.any():
            return empty
        floor = float(scores[0][found].min())
        rows = self._row_of.rows(ids[0][found])
        known = rows >= 0
        return rows[known], scores[0][found][known].astype(np.float32), floor

    def _dense_scores(self, query: str | None, vector: np.ndarray | None = None) -> np.ndarray:
        rows, scores, floor = self._dense_hits(query, vector)
        out = np.full(len(self._row_ids), floor, np.float32)
        out[rows] = scores
        return out

    def _lexical(self, name: str):
        if name == "tfidf":
            self._ensure_tfidf()
        return {"bm25": self._bm25, "char": self._char, "tfidf": self._tfidf}[name]

    def _lexical_query(self, name: str, query: str) -> tuple[np.ndarray, np.ndarray]:
        if name == "bm25":
            return self._bm25.query_columns(self._query_terms(query))
        if name == "char":
            return self._char.query_columns(char_ngrams(query, 1, 2))
        tfidf = self._lexical("tfidf")
        if not tfidf.fitted:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        return tfidf.query_weights(query)

    def _stats_columns(self, name: str) -> sp.csc_matrix:
        """The channel's columns restricted to the statistics sample rows (cached per channel state)."""
        channel = self._lexical(name)
        cache = self.__dict__.setdefault("_sample_cache", {})
        hit = cache.get(name)
        if hit is None or hit[0] is not channel.columns or hit[1] != STATS_SAMPLE:
            rows = _spread(len(channel), STATS_SAMPLE)
            hit = (channel.columns, STATS_SAMPLE, channel.columns[rows] if len(rows) < len(channel) else channel.columns)
            cache[name] = hit
        return hit[2]

    def _lexical_stats(self, name: str, cols: np.ndarray, vals: np.ndarray) -> tuple[float, float]:
        """(mean, std) of the channel's scores over the pool (over the STATS_SAMPLE rows of larger pools)."""
        if not len(cols) or not len(self._row_ids):
            return 0.0, 0.0
        sample = self._stats_columns(name)
        s = np.asarray(sample[:, cols] @ vals, dtype=np.float32).ravel().astype(np.float64)
        return float(s.mean()), float(s.std())

    def _dense_stats(self, scores: np.ndarray, floor: float) -> tuple[float, float]:
        n = len(self._row_ids)
        if not n:
            return 0.0, 0.0
        rest = n - len(scores)
        s = scores.astype(np.float64)
        mean = (s.sum() + rest * floor) / n
        var = ((s - mean) ** 2).sum() + rest * (floor - mean) ** 2
        return float(mean), float(np.sqrt(var / n))

    def _channel_queries(self, query: str, weights: FusionWeights,
                         full: dict[str, np.ndarray] | None = None) -> dict[str, _ChannelQuery]:
        """Per weighted channel: the query's columns or dense hits and the pool statistics. `full`: channel scores of
        every row already computed (their statistics are then read from them, not computed again)."""
        out: dict[str, _ChannelQuery] = {}
        for name, weight in weights.channel_weights().items():
            if not weight:
                continue
            if name in LEXICAL_CHANNELS:
                cols, vals = self._lexical_query(name, query)
                if full is not None and name in full and len(self._row_ids) <= STATS_SAMPLE and len(cols):
                    s = full[name].astype(np.float64)  # the same product _lexical_stats would compute
                    out[name] = _ChannelQuery(name, cols, vals, float(s.mean()), float(s.std()))
                else:
                    out[name] = _ChannelQuery(name, cols, vals, *self._lexical_stats(name, cols, vals))
            elif name == "dense" and self.embedder is not None and self._vindex is not None:
                rows, scores, floor = self._dense_hits(query)
                out[name] = _ChannelQuery(name, rows, scores, *self._dense_stats(scores, floor), floor=floor)
        return out

    def _exact_channel(self, cq: _ChannelQuery, rows: np.ndarray) -> np.ndarray:
        """Raw scores of `rows` in one channel, computed as the whole-pool product computes them (float32, terms
        in ascending column order)."""
        if cq.name == "dense":
            out = np.full(len(rows), cq.floor, np.float32)
            order = np.argsort(cq.cols)
            pos = np.minimum(np.searchsorted(cq.cols[order], rows), max(len(order) - 1, 0))
            hit = cq.cols[order][pos] == rows if len(order) else np.zeros(len(rows), bool)
            out[hit] = cq.vals[order][pos[hit]]
            return out
        if not len(cq.cols) or not len(rows):
            return np.zeros(len(rows), np.float32)
        from matching.sparse_topk import bm25_row_scores, weighted_row_scores

        channel = self._lexical(cq.name)
        if cq.name == "tfidf":
            return weighted_row_scores(channel.rows, rows, cq.cols, cq.vals)
        return bm25_row_scores(channel, rows, cq.cols, cq.vals)

    @staticmethod
    def _z(cq: _ChannelQuery, scores: np.ndarray) -> np.ndarray:
        return (np.asarray(scores, np.float64) - cq.mean) / (cq.std + _ZSCORE_EPS)

    def _fast_rank(self, query: str, weights: FusionWeights, allowed_ids, excluded_ids, take: int):
        """(rows best first, fused scores, raw channel scores per row) of the top `take` pool rows (z-score fusion,
        non-negative weights): MaxScore over the query's postings, then exact scores of the survivors."""
        from matching.sparse_topk import Term, candidate_rows

        w = weights.channel_weights()
        cqs = self._channel_queries(query, weights)
        flags = self._pool_flags(allowed_ids, excluded_ids)
        n = len(self._row_ids)
        take = min(take, n if flags is None else int(np.count_nonzero(flags)))
        if take <= 0:
            return np.zeros(0, np.int64), np.zeros(0), {}
        terms = []
        for name, cq in cqs.items():
            a = w[name] / (cq.std + _ZSCORE_EPS)
            if name == "dense":
                order = np.argsort(cq.cols)  # posting lists are in ascending row order
                shifted = (cq.vals[order] - np.float32(cq.floor)).astype(np.float32)
                terms.append(Term(cq.cols[order].astype(np.int32), shifted, a, float(a * shifted.max(initial=0.0))))
                continue
            columns, col_max = self._lexical(name).columns, self._lexical(name).col_max
            for c, v in zip(cq.cols.tolist(), cq.vals.tolist()):
                lo, hi = columns.indptr[c], columns.indptr[c + 1]
                terms.append(Term(columns.indices[lo:hi], columns.data[lo:hi], a * v, float(a * v * col_max[c])))
        rows = candidate_rows(terms, n, take, flags).rows
        raw = {name: self._exact_channel(cq, rows) for name, cq in cqs.items()}
        fused = sum((w[name] * self._z(cq, raw[name]) for name, cq in cqs.items()), np.zeros(len(rows)))
        base = sum((w[name] * self._z(cq, np.asarray([0.0 if name != "dense" else cq.floor])) for name, cq in
                    cqs.items()), np.zeros(1))[0]  # every row outside the candidates scores exactly this
        if len(rows) < take:  # the rest of the top are rows with no score anywhere, in id order
            extra = self._rows_by_id(take - len(rows), flags, rows)
            rows = np.concatenate([rows, extra])
            fused = np.concatenate([fused, np.full(len(extra), base)])
            for name, cq in cqs.items():
                raw[name] = np.concatenate([raw[name], self._exact_channel(cq, extra)])
        order = np.lexsort((self._row_ids[rows], -fused))[:take]
        return rows[order], fused[order], {name: s[order] for name, s in raw.items()}

    def _rows_by_id(self, count: int, flags: np.ndarray | None, skip: np.ndarray) -> np.ndarray:
        """The `count` pool rows with the smallest document ids, leaving out `skip`."""
        order = self.__dict__.get("_id_order")
        if order is None or order[0] is not self._row_ids:
            order = (self._row_ids, np.argsort(self._row_ids, kind="stable"))
            self._id_order = order
        by_id = order[1]
        want = count + len(skip)
        while True:
            head = by_id[:want]
            if flags is not None:
                head = head[flags[head] == 1]
            head = head[~np.isin(head, skip)]
            if len(head) >= count or want >= len(by_id):
                return head[:count]
            want *= 2

    def _fast_ok(self, weights: FusionWeights) -> bool:
        w = weights.channel_weights()
        return weights.method == "zscore" and all(v >= 0 for v in w.values()) and not (set(w) - {*LEXICAL_CHANNELS, "dense"})

    def channel_scores(self, query: str, weights: FusionWeights | None = None,
                       need_all: bool = False) -> dict[str, np.ndarray]:
        """Raw per-channel scores of the whole pool (row order); channels with weight 0 are skipped unless need_all."""
        self._fresh()
        w = (weights or self.weights).channel_weights()
        out: dict[str, np.ndarray] = {}
        for name in LEXICAL_CHANNELS:
            if need_all or w.get(name):
                out[name] = self._lexical(name).scores_for(*self._lexical_query(name, query))
        if w.get("dense"):
            out["dense"] = self._dense_scores(query)
        return out

    def _fuse_pool(self, query: str, channels: dict[str, np.ndarray], pool: np.ndarray,
                   weights: FusionWeights) -> np.ndarray:
        """Fused scores of the pool rows: z-scores with the statistics of _channel_queries (as the pruned search
        uses), or rank fusion over the pool."""
        pooled = {name: s[pool] for name, s in channels.items()}
        if weights.method != "zscore":
            return fuse(pooled, weights)
        w = weights.channel_weights()
        total = np.zeros(len(pool))
        for name, cq in self._channel_queries(query, weights, full=channels).items():
            if name in pooled:
                total += w[name] * self._z(cq, pooled[name])
        return total

    def _rank_pool(self, query: str, mask: np.ndarray, n: int, weights: FusionWeights | None = None,
                   need_all: bool = False):
        """(candidate rows best first, channels restricted to the pool, fused pool scores, pool rows)."""
        weights = weights or self.weights
        channels = self.channel_scores(query, weights, need_all=need_all)
        pool = np.flatnonzero(mask)
        pooled = {name: s[pool] for name, s in channels.items()}
        fused = self._fuse_pool(query, channels, pool, weights) if pooled else np.zeros(len(pool))
        take = min(n, len(pool))
        if take <= 0:
            return np.zeros(0, np.int64), pooled, fused, pool
        return self._best_first(fused, pool, take), pooled, fused, pool

    def _best_first(self, fused: np.ndarray, pool: np.ndarray, take: int) -> np.ndarray:
        """Positions (into `pool`) of the `take` best scores in a total order: score desc, then document id asc.

        argpartition alone picks among tied scores differently for different `take`, so page 2 (a longer
        prefix) could repeat a firm of page 1; every score tied with the cut-off is kept and ordered by id.
        """
        if take < len(pool):
            cutoff = fused[np.argpartition(-fused, take - 1)[take - 1]]
            cand = np.flatnonzero(fused >= cutoff)
        else:
            cand = np.arange(len(pool))
        order = np.lexsort((self._row_ids[pool[cand]], -fused[cand]))
        return cand[order[:take]]

    def base_features(self, query: str, top: np.ndarray, pooled: dict[str, np.ndarray],
                      fused: np.ndarray, pool: np.ndarray) -> np.ndarray:
        """Per-candidate features (BASE_FEATURES) for the learned re-ranker; `top` indexes the pool."""
        qb = _query_bigrams(query)
        qw = set(tokenize(query))
        zs = {name: zscore(pooled[name]) if name in pooled else np.zeros(len(pool)) for name in ("bm25", "char", "tfidf")}
        zf = zscore(fused)
        mx = {name: (pooled[name] / (pooled[name].max() + 1e-9)) if name in pooled else np.zeros(len(pool))
              for name in ("bm25", "char")}
        bigram_ids = {self._char.vocab.ids[g] for g in qb if len(g) == 2 and g in self._char.vocab.ids}
        word_ids = {self._bm25.vocab.ids[t] for t in qw if t in self._bm25.vocab.ids}
        feats = np.zeros((len(top), len(BASE_FEATURES)), np.float32)
        for a, p in enumerate(top):
            row = int(pool[p])
            doc = self._docs[int(self._row_ids[row])]
            name = normalize(doc.name)
            feats[a] = (
                zs["bm25"][p], zs["char"][p], zs["tfidf"][p], zf[p], math.log1p(a),
                mx["bm25"][p], mx["char"][p],
                len(bigram_ids.intersection(self._char.row_terms(row).tolist())) / max(len(qb), 1),
                len(word_ids.intersection(self._bm25.row_terms(row).tolist())) / max(len(qw), 1),
                sum(1 for g in qb if g in name) / max(len(qb), 1),
                math.log1p(len(_indexed_text(doc))), len(normalize(query)),
            )
        return feats

    def candidate_features(self, query: str, n: int = RERANK_CANDIDATES, allowed_ids=None, excluded_ids=None):
        """(candidate doc ids best-first by fused score, their BASE_FEATURES matrix)."""
        self._fresh()
        mask = self._pool_mask(allowed_ids, excluded_ids)
        top, pooled, fused, pool = self._rank_pool(query, mask, n, need_all=True)
        return self._row_ids[pool[top]], self.base_features(query, top, pooled, fused, pool)

    def _query_terms(self, query: str) -> list[str]:
        """tokenize(query), remembered for the last query: every hit of one search explains the same query."""
        return self._query_word_columns(query)[0]

    def _query_word_columns(self, query: str) -> tuple[list[str], list[tuple[str, int]]]:
        """(tokenize(query), its distinct words known to the word channel with their columns), for the last query."""
        from matching import text as _text

        # Words taught to jieba change the tokens; a grown vocabulary may know more of them.
        key = (query, len(_text._jieba_words), len(self._bm25.vocab))
        cached = self._last_query_terms
        if cached is not None and cached[0] == key:
            return cached[1], cached[2]
        terms = tokenize_query(query)
        columns = self._word_columns(terms)
        self._last_query_terms = (key, terms, columns)
        return terms, columns

    def _word_columns(self, terms: Sequence[str]) -> list[tuple[str, int]]:
        ids = self._bm25.vocab.ids
        out: dict[str, int] = {}
        for t in terms:
            if t not in out and t in ids:
                out[t] = ids[t]
        return list(out.items())

    def _matched_terms(self, query: str, doc_id: int, terms: Sequence[str] | None = None,
                       row: int | None = None) -> list[str]:
        row = self._row_of.get(int(doc_id)) if row is None else row
        if row is None:
            return []
        present = set(self._bm25.row_terms(row).tolist())
        columns = self._query_word_columns(query)[1] if terms is None else self._word_columns(terms)
        return _explaining_terms([t for t, col in columns if col in present])

    def _matched_terms_of_rows(self, query: str, rows: np.ndarray) -> list[list[str]]:
        """_matched_terms of several pooled rows for one query, with one look-up of their word counts."""
        columns = self._query_word_columns(query)[1]
        if not columns or not len(rows):
            return [[] for _ in rows]
        cols = np.asarray([c for _, c in columns], np.int64)
        shared = self._bm25.counts[np.asarray(rows, np.int64)][:, cols].tocsr()  # in query-term order
        shared.sort_indices()
        # Hits of one query often share the same matched words: explain each distinct set once.
        explained: dict[bytes, list[str]] = {}
        out = []
        for i in range(len(rows)):
            found = shared.indices[shared.indptr[i]:shared.indptr[i + 1]]
            key = found.tobytes()
            terms = explained.get(key)
            if terms is None:
                terms = explained[key] = _explaining_terms([columns[j][0] for j in found])
            out.append(list(terms))
        return out

    # ---- scoring fixed query sets (e.g. every leaf link of a chain) ----------------------------
    def query_scores(self, queries: Sequence[str], doc_ids: Sequence[int]) -> np.ndarray:
        """Fused scores (len(queries), len(doc_ids)) with every channel standardised over the whole pool, so
        one document's scores compare across queries; NaN for documents not in the pool.

        The queries' term vectors, vectors and pool statistics are prepared once per query set and pool
        state (cached), so scoring a page of documents against a chain's links is one small product each."""
        self._fresh()
        queries = tuple(queries)
        rows = self._row_of.rows(np.asarray([int(d) for d in doc_ids], np.int64))
        out = np.full((len(queries), len(rows)), np.nan)
        known = rows >= 0
        if not queries or not known.any():
            return out
        prep = self._prepared(queries)
        total = np.zeros((len(queries), int(known.sum())))
        for name, (weight, matrix, mean, std) in prep["channels"].items():
            if name == "dense":
                sc = matrix @ self._stored_vectors(self._row_ids[rows[known]]).T
            else:
                sc = np.asarray((self._lexical(name).row_weights(rows[known]) @ matrix).todense()).T
            total += weight * (np.asarray(sc, np.float64) - mean[:, None]) / (std[:, None] + _ZSCORE_EPS)
        out[:, known] = total
        return out

    def _prepared(self, queries: tuple[str, ...]) -> dict:
        """Per channel: (weight, query matrix, pool mean, pool std) for a query set, cached per pool state. The
        statistics are those every search uses (_channel_queries)."""
        w = self.weights.channel_weights()
        key = (queries, tuple(sorted(w.items())), self.weights.method)
        marker = (self._bm25.columns, self._char.columns, self._tfidf.columns, self._vindex)
        cache = self.__dict__.setdefault("_query_cache", {})
        hit = cache.get(key)
        if hit is not None and all(a is b for a, b in zip(hit["marker"], marker)):
            return hit
        if self.weights.method != "zscore":
            raise ValueError("query_scores needs z-score fusion")
        channels = {}
        for name, weight in w.items():
            if not weight:
                continue
            if name == "dense":
                if self.embedder is None or self._vindex is None:
                    continue
                vectors = self.embedder.encode(list(queries)).astype(np.float32)
                stats = np.asarray([self._dense_stats(*self._dense_hits(None, v.reshape(1, -1))[1:])
                                    for v in vectors])
                channels[name] = (weight, vectors, stats[:, 0], stats[:, 1])
                continue
            if name not in LEXICAL_CHANNELS:
                continue  # extra channels are scored by their own code, not here
            columns = [self._lexical_query(name, q) for q in queries]
            rows = np.concatenate([c for c, _ in columns]) if columns else np.zeros(0, np.int64)
            cols = np.repeat(np.arange(len(queries)), [len(c) for c, _ in columns])
            vals = np.concatenate([v for _, v in columns]) if columns else np.zeros(0, np.float32)
            qm = sp.csc_matrix((vals, (rows, cols)), shape=(len(self._lexical(name).vocab), len(queries)))
            stats = np.asarray([self._lexical_stats(name, c, v) for c, v in columns])
            channels[name] = (weight, qm, stats[:, 0], stats[:, 1])
        prepared = {"marker": marker, "channels": channels}
        if len(cache) >= QUERY_CACHE_SIZE:
            cache.pop(next(iter(cache)))
        cache[key] = prepared
        return prepared

    # ---- searching ------------------------------------------------------------------------
    def search(self, query: str, k: int = 100, allowed_ids: Collection[int] | None = None,
               excluded_ids: Collection[int] | None = None) -> list[Hit]:
        """The k best documents for a query text, best first."""
        self._fresh()
        if not self._docs or k <= 0:
            return []
        model = self._learned
        if model is not None and model.ranker is not None:
            n = max(RERANK_CANDIDATES, k)
            top, pooled, fused, pool = self._rank_pool(query, self._pool_mask(allowed_ids, excluded_ids), n,
                                                       need_all=True)
            doc_ids = self._row_ids[pool[top]]
            probs = model.score(query, doc_ids, self.base_features(query, top, pooled, fused, pool))
            order = np.lexsort((doc_ids, -probs))[:k]  # total order (score desc, id asc), as _best_first
            return [self._hit(query, pool[top[o]], float(probs[o]), pooled, top[o], learned=float(probs[o]))
                    for o in order]
        if self._fast_ok(self.weights) and len(self._row_ids) > STATS_SAMPLE:
            # Small pools: the statistics need every row's score anyway, so ranking the whole pool costs no more.
            rows, fused, raw = self._fast_rank(query, self.weights, allowed_ids, excluded_ids, k)
            terms = self._matched_terms_of_rows(query, rows)
            return [Hit(int(self._row_ids[r]), float(fused[i]), {name: float(v[i]) for name, v in raw.items()},
                        terms[i]) for i, r in enumerate(rows)]
        top, pooled, fused, pool = self._rank_pool(query, self._pool_mask(allowed_ids, excluded_ids), k)
        return [self._hit(query, pool[p], float(fused[p]), pooled, p) for p in top]

    def _hit(self, query: str, row: int, score: float, pooled: dict[str, np.ndarray], p: int,
             learned: float | None = None, terms: Sequence[str] | None = None) -> Hit:
        doc_id = int(self._row_ids[row])
        channels = {name: float(s[p]) for name, s in pooled.items()}
        if learned is not None:
            channels["learned"] = learned
        return Hit(doc_id, score, channels, self._matched_terms(query, doc_id, terms, row=int(row)))

    def _similar_weights(self) -> FusionWeights:
        weights = FusionWeights(**{**self.weights.as_dict(), "method": self.weights.method})
        if self.embedder is not None and self._vindex is not None:
            weights.dense = max(weights.dense, SIMILAR_DENSE_WEIGHT)
        return weights

    def _stored_vectors(self, doc_ids: np.ndarray) -> np.ndarray:
        """Indexed vectors of pooled documents (float32 rows in the order of `doc_ids`); any the vector index
        does not hold are encoded from their text."""
        doc_ids = np.asarray(doc_ids, np.int64)
        out = np.zeros((len(doc_ids), self.embedder.dim), np.float32)
        present = np.zeros(len(doc_ids), bool)
        getter = getattr(self._vindex, "vectors", None)
        if getter is not None and len(doc_ids):
            vectors, present = getter(doc_ids)
            out[present] = vectors
        if not present.all():
            missing = np.flatnonzero(~present)
            out[missing] = self.embedder.encode([self._docs[int(doc_ids[i])].text for i in missing])
        return out

    def _doc_channel_scores(self, doc_id: int, weights: FusionWeights) -> dict[str, np.ndarray]:
        """Raw per-channel pool scores with a pooled document as the query, from what is already indexed (its
        tokens, its TF-IDF row, its stored vector): nothing is tokenised or encoded again."""
        row = self._row_of[int(doc_id)]
        w = weights.channel_weights()
        out: dict[str, np.ndarray] = {}
        for name, channel in (("bm25", self._bm25), ("char", self._char)):
            if w.get(name):  # the document's distinct terms, each weighted 1 (as its token list would be)
                cols = channel.row_terms(row).astype(np.int64)
                out[name] = channel.scores_for(cols, np.ones(len(cols), np.float32))
        if w.get("tfidf"):
            tfidf = self._lexical("tfidf")
            query_row = tfidf.row_weights(np.asarray([row]))
            out["tfidf"] = tfidf.scores_for(query_row.indices.astype(np.int64), query_row.data)
        if w.get("dense"):
            out["dense"] = self._dense_scores(None, self._stored_vectors(np.asarray([doc_id])))
        return out

    def _doc_terms(self, doc_id: int) -> list[str]:
        """The document's distinct words, most distinctive (highest BM25 weight) first."""
        row = self._row_of[int(doc_id)]
        weights = self._bm25.row_weights(np.asarray([row]))
        order = np.argsort(-weights.data, kind="stable")
        return [self._bm25.vocab.terms[c] for c in weights.indices[order]]

    def similar(self, doc_id: int, k: int = 10, allowed_ids=None, excluded_ids=None) -> list[Hit]:
        """Look-alike firms of a document: its own profile used as the query (the document itself excluded)."""
        self._fresh()
        doc = self._docs.get(int(doc_id))
        if doc is None or k <= 0:
            return []
        excluded = set(int(i) for i in (excluded_ids or ())) | {int(doc_id)}
        weights = self._similar_weights()
        mask = self._pool_mask(allowed_ids, excluded)
        channels = self._doc_channel_scores(int(doc_id), weights)
        pool = np.flatnonzero(mask)
        pooled = {name: sc[pool] for name, sc in channels.items()}
        fused = fuse(pooled, weights) if pooled else np.zeros(len(pool))
        take = min(k, len(pool))
        if take <= 0:
            return []
        terms = self._doc_terms(int(doc_id))
        return [self._hit(doc.text, pool[p], float(fused[p]), pooled, p, terms=terms)
                for p in self._best_first(fused, pool, take)]

    def best_look_alikes(self, doc_ids: Sequence[int], allowed_ids: Collection[int]) -> list[Hit | None]:
        """For each document, its single best look-alike among `allowed_ids` (itself excluded), scored as
        `similar(doc, k=1, allowed_ids)` scores it, for all documents in one matrix product per channel
        (allowed rows × document rows). None where nothing is allowed or the document is not pooled.
        The dense channel is the exact inner product of the stored vectors of the small allowed set."""
        self._fresh()
        weights = self._similar_weights()
        out: list[Hit | None] = [None] * len(doc_ids)
        if weights.method != "zscore":  # rank fusion needs per-query ranks over the set: one search each
            return [next(iter(self.similar(d, k=1, allowed_ids=allowed_ids)), None) for d in doc_ids]
        arows = np.unique(self._rows_of(allowed_ids))
        arows = arows[np.argsort(self._row_ids[arows], kind="stable")]  # ties then go to the smallest id
        doc_rows = self._row_of.rows(np.asarray([int(d) for d in doc_ids], np.int64))
        present = [(j, int(r)) for j, r in enumerate(doc_rows) if r >= 0]
        if not len(arows) or not present:
            return out
        cols = np.asarray([r for _, r in present], np.int64)
        w = weights.channel_weights()
        channels: dict[str, np.ndarray] = {}
        if w.get("bm25"):
            channels["bm25"] = _pattern_scores(self._bm25, arows, cols)
        if w.get("char"):
            channels["char"] = _pattern_scores(self._char, arows, cols)
        if w.get("tfidf"):
            m = self._lexical("tfidf")
            channels["tfidf"] = np.asarray((m.row_weights(arows) @ m.row_weights(cols).T).todense(), np.float32)
        if w.get("dense"):
            channels["dense"] = self._stored_vectors(self._row_ids[arows]) @ self._stored_vectors(self._row_ids[cols]).T
        valid = self._row_ids[arows][:, None] != self._row_ids[cols][None, :]
        fused = np.zeros(valid.shape)
        for name, sc in channels.items():
            fused += w[name] * _masked_zscore(sc, valid)
        fused[~valid] = -np.inf
        best = np.argmax(fused, axis=0)
        for c, (j, row) in enumerate(present):
            r = int(best[c])
            if not valid[r, c]:
                continue
            hit_id = int(self._row_ids[arows[r]])
            terms = self._doc_terms(int(self._row_ids[row]))
            out[j] = Hit(hit_id, float(fused[r, c]), {name: float(sc[r, c]) for name, sc in channels.items()},
                         self._matched_terms("", hit_id, terms))
        return out

    # ---- learning -------------------------------------------------------------------------
    def apply_learning(self, model) -> bool:
        """Use a matching.learning.LearnedModel for re-ranking when it was adopted; returns whether it is in use."""
        self._learned = model if (model is not None and model.adopted) else None
        if self._learned is not None:
            self._fresh()
            self._ensure_tfidf()  # a re-ranker feature: analysed now, not inside the first search
        return self._learned is not None

    @property
    def learned(self):
        return self._learned

    # ---- persistence ----------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        """Write the pool, lexical channels, vectors, embedder and learned model into `folder`."""
        self._fresh()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "documents.jsonl", "w", encoding="utf-8") as fh:
            for d in self._docs.values():
                fh.write(json.dumps({"id": d.id, "name": d.name, "text": d.text, "products": d.products},
                                    ensure_ascii=False) + "\n")
        self._bm25.save(folder / "bm25_word")
        self._char.save(folder / "bm25_char")
        self._tfidf.save(folder / "tfidf")
        if self.embedder is not None:
            from matching.embedders import save_embedder

            save_embedder(self.embedder, folder / "embedder")
            if self._vindex is not None:
                self._vindex.save(folder / "vectors.faiss")
        learned = folder / "learned.pkl"
        if self._learned is not None:
            with open(learned, "wb") as fh:  # our own file, written and read locally
                pickle.dump(self._learned, fh)
        elif learned.exists():
            learned.unlink()
        meta = {"weights": self.weights.as_dict(), "exact_max": self.exact_max, "count": len(self._docs),
                "embedder": getattr(self.embedder, "name", None), "built_at": self._built_at,
                "build_seconds": self._build_seconds, "format": FORMAT_VERSION, "vector_backend": self.vector_backend}
        (folder / _ENGINE_FILE).write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path, mmap: bool = False) -> "MatchEngine":
        """Read a saved engine; nothing is tokenised again. With `mmap`, the lexical matrices stay in their files
        (read-only pages the OS shares between processes, e.g. several web workers)."""
        folder = Path(folder)
        meta = json.loads((folder / _ENGINE_FILE).read_text(encoding="utf-8"))
        if meta.get("format") != FORMAT_VERSION:
            raise ValueError(f"engine format {meta.get('format')} is not {FORMAT_VERSION}; rebuild the index")
        embedder = None
        if meta.get("embedder"):
            from matching.embedders import load_embedder

            embedder = load_embedder(folder / "embedder")
        engine = cls(embedder, FusionWeights.from_dict(meta["weights"]), meta.get("exact_max", 200_000),
                     meta.get("vector_backend", "faiss"))
        with open(folder / "documents.jsonl", encoding="utf-8") as fh:
            for line in fh:
                row = json.loads(line)
                doc = Document(int(row["id"]), row["name"], row["text"], row.get("products", ""))
                engine._docs[doc.id] = doc
        engine._set_rows(np.fromiter(engine._docs.keys(), dtype=np.int64, count=len(engine._docs)))
        engine._bm25 = BM25Channel.load(folder / "bm25_word", mmap=mmap)
        engine._char = BM25Channel.load(folder / "bm25_char", mmap=mmap)
        engine._tfidf = CharTfidfChannel.load(folder / "tfidf", mmap=mmap)
        from matching.vectors import meta_path

        # The metadata file, not the index file: another backend may keep its data elsewhere (or in a service).
        if embedder is not None and meta_path(folder / "vectors.faiss").exists():
            from matching.vectors import load_vector_index

            engine._vindex = load_vector_index(folder / "vectors.faiss")
        if (folder / "learned.pkl").exists():
            with open(folder / "learned.pkl", "rb") as fh:
                engine.apply_learning(pickle.load(fh))
        engine._built_at = meta.get("built_at", 0.0)
        engine._build_seconds = meta.get("build_seconds", 0.0)
        return engine

    def info(self) -> dict:
        return {
            "embedder": getattr(self.embedder, "name", None),
            "dim": getattr(self.embedder, "dim", 0) if self.embedder is not None else 0,
            "count": len(self._docs),
            "weights": self.weights.as_dict(),
            "built_at": self._built_at,
            "build_seconds": round(self._build_seconds, 3),
            "vector_backend": self.vector_backend,
            "learned": None if self._learned is None else self._learned.summary(),
        }
