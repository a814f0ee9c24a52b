"""The lexical channels of the pool, and one query's view of every weighted channel with its pool statistics.

Channels (see matching.fusion for how they are combined):
- "bm25":  BM25 over jieba search-mode word tokens;
- "char":  BM25 over character 1–2-grams;
- "tfidf": cosine of character 1–3-gram TF-IDF (analysed only once something weighs it);
- "name":  BM25 over the jieba words of the firm name alone (the whole name, no segments);
- "dense": inner product of embedder vectors (matching.engine.dense).

Invariants:
- every channel has one row per pool row, in the pool's row order (matching.engine.pool);
- a channel's statistics for a query (mean, std of its scores) are over the whole pool, whatever the search's
  filters: exact up to STATS_SAMPLE rows, above that over a fixed, evenly spread sample of STATS_SAMPLE rows. Every
  path (pruned search, whole-pool ranking, query sets) reads them here, so a firm's score is the same on each;
- the sample of a channel's columns is cached against the column matrix it was cut from (a refresh replaces it),
  and the word tokens of the last query against the jieba words and vocabulary size it was computed with.
STATS_SAMPLE is read from this module at call time (tests lower it here to exercise the sampled path).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from matching.analysis import Vocabulary, count_matrices
from matching.engine.dense import DenseChannel
from matching.engine.pool import Document, Pool, indexed_text, spread
from matching.fusion import FusionWeights
from matching.lexical import BM25Channel, CharTfidfChannel, column_scores
from matching.segments import count_for_share, pool_segment_share
from matching.text import HAN, OTHER, char_ngrams, script_group, tokenize_query
from matching.vectors import FieldFilter

LEXICAL_CHANNELS = ("bm25", "char", "tfidf", "name")
# Channel statistics (mean, std of a query's scores) come from every firm up to this pool size, above it from a
# fixed, evenly spread sample of this many firms: at 1M firms the relative error of the std is ≈ 0.3 %, and the
# statistics cost a few postings instead of every posting of the query's terms.
STATS_SAMPLE = 65_536
ZSCORE_EPS = 1e-9  # the epsilon of matching.fusion.zscore


def stats_sampled(rows: int) -> bool:
    """Whether a pool of `rows` rows takes its channel statistics from the sample rather than every row."""
    return rows > STATS_SAMPLE


class LexicalChannels:
    """The pool's word BM25, character BM25, character TF-IDF and name channels, and their query-side caches."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self.workers: int | None = None  # analysis processes for large builds (None: one per core)
        self.bm25 = BM25Channel("word")
        self.char = BM25Channel("char12")
        self.tfidf = CharTfidfChannel()
        self.name = BM25Channel("word")
        self._tfidf_lock = threading.Lock()
        self._refresh_lock = threading.Lock()  # request threads searching after an import refresh at the same time
        # name → (columns cut from, STATS_SAMPLE, sampled columns)
        self._samples: dict[str, tuple[sp.csc_matrix, int, sp.csc_matrix]] = {}
        # (key, tokens, known word columns) of the last query
        self._last_query: tuple[tuple[str, int, int], list[str], list[tuple[str, int]]] | None = None

    def __len__(self) -> int:
        """Rows of the pool (every channel has one per pool row once pending changes are applied)."""
        return len(self._pool.row_ids)

    def by_name(self) -> dict[str, BM25Channel | CharTfidfChannel]:
        """The channels as they are (the TF-IDF channel may not be analysed yet)."""
        return {"bm25": self.bm25, "char": self.char, "tfidf": self.tfidf, "name": self.name}

    def mapped_files(self) -> list[Path]:
        """The files the channels' arrays are memory-mapped from, the weighted BM25 channels' first."""
        channels = (self.bm25, self.char, self.name, self.tfidf)
        return [path for channel in channels for path in channel.mapped_files()]

    # ---- building -------------------------------------------------------------------------------
    def index(self, docs: list[Document], progress: Callable[[int, int], None] | None, tfidf: bool) -> None:
        """Count the terms of every document (in worker processes for large pools) and weigh the BM25 channels
        (the name channel over the documents' names); the TF-IDF channel is emptied and, with `tfidf`, analysed too."""
        vocabs = {"word": Vocabulary(), "char12": Vocabulary()}
        share = pool_segment_share([d.text for d in docs])
        segments = count_for_share(
            [indexed_text(d) for d in docs], ["word", "char12"], vocabs, share, workers=self.workers, progress=progress
        )
        self.bm25 = BM25Channel("word", self.bm25.k1, self.bm25.b, share)
        self.char = BM25Channel("char12", self.char.k1, self.char.b, share)
        for channel, name in ((self.bm25, "word"), (self.char, "char12")):
            channel.vocab = vocabs[name]
            channel.set_segments(segments.pop(name))
        self.name = BM25Channel("word", self.name.k1, self.name.b)
        self.name.vocab = Vocabulary()
        self.name.set_counts(self._name_counts(docs))
        self.tfidf = CharTfidfChannel()
        if tfidf:
            self.ensure_tfidf()

    def ensure_tfidf(self) -> None:
        """Analyse the TF-IDF channel when something uses it (a fusion weight, the learned re-ranker's features, a
        look-alike weighing it): at a million firms it costs as much time and memory as both BM25 channels."""
        if self.tfidf.fitted or not len(self):
            return
        with self._tfidf_lock:
            if self.tfidf.fitted:
                return
            vocab = Vocabulary()
            counts = count_matrices(self._pool.texts(), ["char_wb13"], {"char_wb13": vocab}, workers=self.workers)[
                "char_wb13"
            ]
            channel = CharTfidfChannel()
            channel.vocab = vocab
            channel.set_counts(counts)
            self.tfidf = channel

    def refresh(self, tfidf: bool) -> None:
        """Apply the pool's pending additions and removals to the channels, then to the pool's rows (`tfidf`: analyse
        the TF-IDF channel too when the pool was empty, as `index` does). Applied once however many threads ask."""
        if not self._pool.has_pending():
            return
        with self._refresh_lock:
            change = self._pool.pending_change()  # another thread may have applied it while this one waited
            if change is None:
                return
            if not len(self._pool.row_ids):
                self._pool.set_rows(self._pool.doc_ids())
                self.index(change.new_docs, None, tfidf=tfidf)
            else:
                self.update(change.keep, change.new_docs)
                self._pool.set_rows(change.rows)
            self._pool.clear_pending()

    def update(self, keep: np.ndarray, new_docs: list[Document]) -> None:
        """Drop the rows not kept and append the new documents' rows: only the new documents are analysed."""
        vocabs = {"word": self.bm25.vocab, "char12": self.char.vocab}
        texts = [indexed_text(d) for d in new_docs]
        segments = count_for_share(texts, ["word", "char12"], vocabs, self.bm25.segment_share, workers=self.workers)
        self.bm25.update(keep, segments["word"])
        self.char.update(keep, segments["char12"])
        self.name.update(keep, self._name_counts(new_docs))
        if self.tfidf.fitted:
            self.tfidf.update(keep, [d.text for d in new_docs])

    def _name_counts(self, docs: Sequence[Document]) -> sp.csr_matrix:
        """The name channel's counts of the documents' names (over its vocabulary, which grows)."""
        names = [d.name for d in docs]
        return count_matrices(names, ["word"], {"word": self.name.vocab}, workers=self.workers)["word"]

    # ---- queries --------------------------------------------------------------------------------
    def get(self, name: str) -> BM25Channel | CharTfidfChannel:
        """A channel by name (LEXICAL_CHANNELS), the TF-IDF channel analysed first if need be."""
        if name == "tfidf":
            self.ensure_tfidf()
        return self.by_name()[name]

    def query(self, name: str, query: str) -> tuple[np.ndarray, np.ndarray]:
        """(ascending column ids, weights) of the query's terms in one channel."""
        if name in ("bm25", "name"):  # both read the query's jieba words
            channel = self.bm25 if name == "bm25" else self.name
            return channel.query_columns(self.query_terms(query))
        if name == "char":
            return self.char.query_columns(char_ngrams(query, 1, 2))
        self.ensure_tfidf()
        tfidf = self.tfidf
        if not tfidf.fitted:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        return tfidf.query_weights(query)

    def query_terms(self, query: str) -> list[str]:
        """tokenize(query), remembered for the last query: every hit of one search explains the same query."""
        return self.query_words(query)[0]

    def query_words(self, query: str) -> tuple[list[str], list[tuple[str, int]]]:
        """(tokenize(query), its distinct words known to the word channel with their columns), for the last query."""
        from matching import text as _text

        # Words taught to jieba change the tokens; a grown vocabulary may know more of them.
        key = (query, len(_text._jieba_words), len(self.bm25.vocab))
        cached = self._last_query
        if cached is not None and cached[0] == key:
            return cached[1], cached[2]
        terms = tokenize_query(query)
        columns = self.word_columns(terms)
        self._last_query = (key, terms, columns)
        return terms, columns

    def word_columns(self, terms: Sequence[str]) -> list[tuple[str, int]]:
        """The distinct `terms` the word channel knows, in order, with their columns."""
        ids = self.bm25.vocab.ids
        out: dict[str, int] = {}
        for t in terms:
            if t not in out and t in ids:
                out[t] = ids[t]
        return list(out.items())

    # ---- pool statistics ------------------------------------------------------------------------
    def _stats_columns(self, name: str) -> sp.csc_matrix:
        """The channel's columns restricted to the statistics sample rows (cached per channel state)."""
        channel = self.get(name)
        hit = self._samples.get(name)
        if hit is None or hit[0] is not channel.columns or hit[1] != STATS_SAMPLE:
            rows = spread(len(channel), STATS_SAMPLE)
            hit = (
                channel.columns,
                STATS_SAMPLE,
                channel.columns[rows] if len(rows) < len(channel) else channel.columns,
            )
            self._samples[name] = hit
        return hit[2]

    def stats(self, name: str, cols: np.ndarray, vals: np.ndarray) -> tuple[float, float]:
        """(mean, std) of the channel's scores over the pool (over the STATS_SAMPLE rows of larger pools)."""
        if not len(cols) or not len(self):
            return 0.0, 0.0
        s = column_scores(self._stats_columns(name), cols, vals).astype(np.float64)
        return float(s.mean()), float(s.std())


@dataclass
class ChannelQuery:
    """One channel of one query: its weighted columns (lexical) or fetched hits (dense), and its statistics."""

    name: str
    cols: np.ndarray  # lexical: ascending column ids; dense: fetched rows
    vals: np.ndarray  # lexical: query weights; dense: fetched scores
    mean: float
    std: float
    floor: float = 0.0  # dense: the lowest fetched score, an upper bound of every row not fetched
    vector: np.ndarray | None = None  # dense: the query vector (rows not fetched are scored with it)
    # dense: the script group the lexical channels cannot see for this query (None: the pool has no such profile),
    # and the statistics of the query's dense scores over that group's documents
    blind_group: int | None = None
    blind_mean: float = 0.0
    blind_std: float = 0.0

    def z(self, scores: np.ndarray) -> np.ndarray:
        """Raw channel scores standardised with the pool statistics."""
        return (np.asarray(scores, np.float64) - self.mean) / (self.std + ZSCORE_EPS)

    def blind_z(self, scores: np.ndarray) -> np.ndarray:
        """Dense scores standardised over the documents of the blind group."""
        return (np.asarray(scores, np.float64) - self.blind_mean) / (self.blind_std + ZSCORE_EPS)


def channel_queries(
    lexical: LexicalChannels,
    dense: DenseChannel,
    query: str,
    weights: FusionWeights,
    full: dict[str, np.ndarray] | None = None,
    where: FieldFilter | None = None,
    allowed_ids: np.ndarray | None = None,
    columns: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
    vector: np.ndarray | None = None,
    hits: bool = True,
) -> dict[str, ChannelQuery]:
    """Per weighted channel: the query's columns or dense hits and the pool statistics. `full`: channel scores of
    every row already computed (their statistics are then read from them, not computed again). `where`: a filter
    the vector index applies itself (DenseChannel.filters_fields), so the dense hits are the nearest documents
    passing it and its floor bounds only those (callers restrict the rows they rank to them); `allowed_ids`
    likewise, as an id list. Statistics stay over the whole pool. `columns` (per lexical channel: ascending
    columns, weights) and `vector` stand in for analysing and encoding `query` (a pooled document as the query:
    look-alikes), `query` then only telling its script; `hits=False` leaves the dense hits out (statistics only)."""
    out: dict[str, ChannelQuery] = {}
    channel_weights = weights.channel_weights()
    pending = None  # the dense hits, fetched while the lexical channels are prepared
    if channel_weights.get("dense") and dense.active and hits:
        if vector is None:
            vector = dense.query_vector(query)
        pending = dense.hits_in_background(vector, allowed_ids=allowed_ids, where=where)
    for name, weight in channel_weights.items():
        if not weight:
            continue
        if name in LEXICAL_CHANNELS:
            if columns is not None:
                cols, vals = columns.get(name, (np.zeros(0, np.int64), np.zeros(0, np.float32)))
            else:
                cols, vals = lexical.query(name, query)
            if full is not None and name in full and not stats_sampled(len(lexical)) and len(cols):
                s = full[name].astype(np.float64)  # the same product LexicalChannels.stats would compute
                out[name] = ChannelQuery(name, cols, vals, float(s.mean()), float(s.std()))
            else:
                out[name] = ChannelQuery(name, cols, vals, *lexical.stats(name, cols, vals))
        elif name == "dense" and dense.active:
            if vector is None:
                vector = dense.query_vector(query)
            if pending is not None:
                hit_rows, scores, floor = pending()
            else:
                hit_rows, scores, floor = np.zeros(0, np.int64), np.zeros(0, np.float32), 0.0
            cq = out[name] = ChannelQuery(name, hit_rows, scores, *dense.stats(vector), floor=floor, vector=vector)
            blind = OTHER if script_group(query) == HAN else HAN
            if dense.group_count(blind):
                cq.blind_group = blind
                cq.blind_mean, cq.blind_std = dense.stats(vector, blind)
    return out


def impute_blind(
    fused: np.ndarray,
    rows: np.ndarray,
    dense_scores: np.ndarray,
    cqs: dict[str, ChannelQuery],
    weights: FusionWeights,
    row_groups: np.ndarray,
) -> np.ndarray:
    """Fused scores with those of rows the lexical channels cannot see replaced (a copy when any is).

    A profile in another script than the query (a foreign firm's English profile for a Chinese link) shares no word
    or character with it, so its lexical scores say nothing, not "unrelated". Such a row scores what its dense score
    says alone: the sum of the weights in use times its dense z-score among the documents of its own group (cross-
    language similarities run lower than same-language ones, so the whole pool is the wrong reference)."""
    cq = cqs.get("dense")
    if cq is None or cq.blind_group is None or not len(rows):
        return fused
    blind = row_groups[rows] == cq.blind_group
    if not blind.any():
        return fused
    w = weights.channel_weights()
    total = sum(w[name] for name in cqs)
    out = np.array(fused, np.float64)
    out[blind] = total * cq.blind_z(np.asarray(dense_scores)[blind])
    return out


def exact_scores(lexical: LexicalChannels, dense: DenseChannel, cq: ChannelQuery, rows: np.ndarray) -> np.ndarray:
    """Raw scores of `rows` in one channel, computed as the whole-pool product computes them (float32, terms
    in ascending column order; dense: from the rows' stored vectors, fetched hits as fetched)."""
    if cq.name == "dense":
        assert cq.vector is not None  # a dense channel query has its vector
        out = dense.row_scores(cq.vector, rows)
        order = np.argsort(cq.cols)
        pos = np.minimum(np.searchsorted(cq.cols[order], rows), max(len(order) - 1, 0))
        hit = cq.cols[order][pos] == rows if len(order) else np.zeros(len(rows), bool)
        out[hit] = cq.vals[order][pos[hit]]
        return out
    if not len(cq.cols) or not len(rows):
        return np.zeros(len(rows), np.float32)
    from matching.sparse_topk import bm25_row_scores, weighted_row_scores

    channel = lexical.get(cq.name)
    if isinstance(channel, CharTfidfChannel):  # "tfidf"; the others are BM25 channels
        return weighted_row_scores(channel.rows, rows, cq.cols, cq.vals)
    return bm25_row_scores(channel, rows, cq.cols, cq.vals)


def pool_scores(
    lexical: LexicalChannels, dense: DenseChannel, query: str, weights: FusionWeights, need_all: bool = False
) -> dict[str, np.ndarray]:
    """Raw per-channel scores of the whole pool (row order); channels with weight 0 are skipped unless need_all."""
    w = weights.channel_weights()
    out: dict[str, np.ndarray] = {}
    for name in LEXICAL_CHANNELS:
        if need_all or w.get(name):
            out[name] = lexical.get(name).scores_for(*lexical.query(name, query))
    if w.get("dense") and dense.active:
        out["dense"] = dense.scores(query)
    return out
