"""MatchEngine: hybrid retrieval of enterprises for chain-link queries (lexical + optional dense + learned re-ranking).

Channels (see matching.fusion for how they are combined):
- "bm25":  BM25 over jieba search-mode word tokens;
- "char":  BM25 over character 1–2-grams;
- "tfidf": cosine of character 1–3-gram TF-IDF;
- "dense": inner product of embedder vectors (faiss index from matching.vector_index).
When a learned model is applied (matching.learning), the top candidates of the fused ranking are
re-ranked by a classifier over per-channel features and label-memory features.
"""
from __future__ import annotations

import json
import math
import pickle
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from matching.fusion import FusionWeights, fuse, zscore
from matching.lexical import BM25Channel, CharTfidfChannel
from matching.text import char_ngrams, normalize, tokenize

RERANK_CANDIDATES = 200     # candidates re-ranked by a learned model (measured: recall@200 covers most gains)
DENSE_CANDIDATES = 1000     # dense hits fetched per query; the rest of the pool gets the lowest fetched score
SIMILAR_DENSE_WEIGHT = 0.3  # look-alike search leans on the embedder when one is present
MAX_MATCHED_TERMS = 8
_ZSCORE_EPS = 1e-9  # the epsilon of matching.fusion.zscore
QUERY_CACHE_SIZE = 16  # prepared query sets (e.g. a chain's leaf links) kept per engine
BASE_FEATURES = ("z_bm25", "z_char", "z_tfidf", "z_fused", "log_rank", "rel_bm25", "rel_char",
                 "cover_bigrams", "cover_words", "cover_name", "log_doc_len", "query_len")
_ENGINE_FILE = "engine.json"


@dataclass
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


@dataclass
class _DocTokens:
    words: list[str]
    chars: list[str]
    word_set: frozenset
    bigram_set: frozenset
    name: str
    length: int


def _doc_tokens(doc: Document) -> _DocTokens:
    text = doc.text if doc.name in doc.text else f"{doc.name} {doc.text}"
    if doc.products and doc.products not in text:
        text = f"{text} {doc.products}"
    words = tokenize(text)
    chars = char_ngrams(text, 1, 2)
    return _DocTokens(words, chars, frozenset(words), frozenset(c for c in chars if len(c) == 2),
                      normalize(doc.name), len(text))


def _query_bigrams(query: str) -> set[str]:
    grams = set(char_ngrams(query, 2, 2))
    return grams or set(char_ngrams(query, 1, 1))


def _pattern_scores(matrix, rows: np.ndarray, query_rows: np.ndarray) -> np.ndarray:
    """(len(rows), len(query_rows)) BM25 scores of `rows` for queries made of each query row's own terms.

    A row of the BM25 matrix is non-zero exactly at the document's distinct terms (Lucene idf > 0), so its
    pattern is the document used as a query with every term weighted 1, as BM25Channel.scores weighs them."""
    queries = matrix[query_rows].astype(np.float32)
    queries.data = (queries.data != 0).astype(np.float32)
    return np.asarray((matrix[rows] @ queries.T).todense(), np.float32)


def _term_matrix(channel: BM25Channel, queries: Sequence[Sequence[str]]) -> sp.csc_matrix:
    """(terms, queries) matrix: each query's distinct known terms with weight 1, as BM25Channel.scores weighs them."""
    rows, cols = [], []
    for q, terms in enumerate(queries):
        for t in dict.fromkeys(terms):
            if t in channel.vocab:
                rows.append(channel.vocab[t])
                cols.append(q)
    return sp.csc_matrix((np.ones(len(rows), np.float32), (rows, cols)),
                         shape=(channel.matrix.shape[1], len(queries)))


def _masked_zscore(scores: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Column-wise z-score over the valid rows only (as matching.fusion.zscore over each column's pool)."""
    scores = np.asarray(scores, np.float64)
    count = np.maximum(valid.sum(axis=0), 1)
    mean = np.where(valid, scores, 0.0).sum(axis=0) / count
    std = np.sqrt(np.where(valid, (scores - mean) ** 2, 0.0).sum(axis=0) / count)
    return (scores - mean) / (std + _ZSCORE_EPS)


class MatchEngine:
    """Builds and searches one pool of enterprise profiles."""

    def __init__(self, embedder=None, weights: FusionWeights | None = None, exact_max: int = 200_000) -> None:
        self.embedder = embedder
        self.weights = weights or FusionWeights()
        self.exact_max = exact_max
        self._docs: dict[int, Document] = {}
        self._tokens: dict[int, _DocTokens] = {}
        self._row_ids = np.zeros(0, np.int64)
        self._row_of: dict[int, int] = {}
        self._sorted_ids: tuple[np.ndarray, np.ndarray] | None = None  # (sorted doc ids, their rows), for _rows_of
        self._last_query_terms: tuple[tuple, list[str]] | None = None
        self._bm25 = BM25Channel("word")
        self._char = BM25Channel("char12")
        self._tfidf = CharTfidfChannel()
        self._vindex = None
        self._dirty = False
        self._learned = None
        self._built_at = 0.0
        self._build_seconds = 0.0

    # ---- building -------------------------------------------------------------------------
    def build(self, docs: Sequence[Document], progress: Callable[[int, int], None] | None = None) -> None:
        """Index a fresh pool (replaces anything indexed before)."""
        start = time.time()
        self._docs = {}
        self._tokens = {}
        total = len(docs)
        for i, doc in enumerate(docs):
            self._docs[int(doc.id)] = doc
            self._tokens[int(doc.id)] = _doc_tokens(doc)
            if progress and (i % 1000 == 0 or i == total - 1):
                progress(i + 1, total)
        self._rebuild_lexical()
        if self.embedder is not None:
            self.embedder.fit([d.text for d in self._docs.values()])
            self._build_vectors()
        self._built_at = time.time()
        self._build_seconds = self._built_at - start

    def _rebuild_lexical(self) -> None:
        self._row_ids = np.fromiter(self._docs.keys(), dtype=np.int64, count=len(self._docs))
        toks = [self._tokens[int(i)] for i in self._row_ids]
        texts = [self._docs[int(i)].text for i in self._row_ids]
        self._bm25.build(texts, [t.words for t in toks])
        self._char.build(texts, [t.chars for t in toks])
        self._tfidf.build(texts)
        self._row_of = {int(d): r for r, d in enumerate(self._row_ids)}
        self._sorted_ids = None
        self._dirty = False

    def _build_vectors(self) -> None:
        from matching.vector_index import make_vector_index

        ids = self._row_ids
        vectors = self.embedder.encode([self._docs[int(i)].text for i in ids]) if len(ids) else \
            np.zeros((0, self.embedder.dim), np.float32)
        self._vindex = make_vector_index(len(ids), self.embedder.dim, exact_max=self.exact_max)
        self._vindex.metadata.update(embedder=self.embedder.name)
        if len(ids):
            self._vindex.index(ids, vectors.astype(np.float32))

    def add(self, docs: Sequence[Document]) -> None:
        """Insert or update documents (same id replaces); lexical channels refresh on the next search."""
        for doc in docs:
            self._docs[int(doc.id)] = doc
            self._tokens[int(doc.id)] = _doc_tokens(doc)
        self._dirty = True
        if self.embedder is not None and docs:
            if self._vindex is None:
                self.embedder.fit([d.text for d in self._docs.values()])
                self._dirty = False
                self._rebuild_lexical()
                self._build_vectors()
            else:
                ids = np.asarray([int(d.id) for d in docs], np.int64)
                self._vindex.append(ids, self.embedder.encode([d.text for d in docs]).astype(np.float32))

    def remove(self, ids: Sequence[int]) -> None:
        """Remove documents by id (unknown ids are ignored)."""
        gone = [int(i) for i in ids if int(i) in self._docs]
        for i in gone:
            del self._docs[i]
            del self._tokens[i]
        if gone:
            self._dirty = True
            if self._vindex is not None:
                self._vindex.delete(np.asarray(gone, np.int64))

    def _fresh(self) -> None:
        if self._dirty:
            self._rebuild_lexical()

    def __len__(self) -> int:
        return len(self._docs)

    def __contains__(self, doc_id: int) -> bool:
        return int(doc_id) in self._docs

    def document(self, doc_id: int) -> Document | None:
        return self._docs.get(int(doc_id))

    # ---- scoring --------------------------------------------------------------------------
    def _rows_of(self, ids: Collection[int]) -> np.ndarray:
        """Pool rows of the given document ids (unknown ids dropped), vectorised: filters can hold most of the pool."""
        ids = np.fromiter((int(i) for i in ids), np.int64) if not isinstance(ids, np.ndarray) else ids.astype(np.int64)
        if self._sorted_ids is None or len(self._sorted_ids[0]) != len(self._row_ids):
            order = np.argsort(self._row_ids, kind="stable")
            self._sorted_ids = (self._row_ids[order], order)
        keys, rows = self._sorted_ids
        pos = np.minimum(np.searchsorted(keys, ids), max(len(keys) - 1, 0))
        found = (keys[pos] == ids) if len(keys) else np.zeros(len(ids), bool)
        return rows[pos[found]]

    def _pool_mask(self, allowed_ids: Collection[int] | None, excluded_ids: Collection[int] | None) -> np.ndarray:
        mask = np.ones(len(self._row_ids), bool)
        if allowed_ids is not None:
            mask[:] = False
            mask[self._rows_of(allowed_ids)] = True
        if excluded_ids is not None and len(excluded_ids):
            mask[self._rows_of(excluded_ids)] = False
        return mask

    def _dense_scores(self, query: str | None, vector: np.ndarray | None = None) -> np.ndarray:
        n = len(self._row_ids)
        if self.embedder is None or self._vindex is None or n == 0:
            return np.zeros(n, np.float32)
        if vector is None:
            vector = self.embedder.encode([query])
        k = min(DENSE_CANDIDATES, len(self._vindex))
        scores, ids = self._vindex.search(np.asarray(vector, np.float32).reshape(1, -1), k)
        found = ids[0] >= 0
        floor = float(scores[0][found].min()) if found.any() else 0.0
        out = np.full(n, floor, np.float32)
        for s, i in zip(scores[0][found], ids[0][found]):
            row = self._row_of.get(int(i))
            if row is not None:
                out[row] = s
        return out

    def channel_scores(self, query: str, weights: FusionWeights | None = None,
                       need_all: bool = False) -> dict[str, np.ndarray]:
        """Raw per-channel scores of the whole pool (row order); channels with weight 0 are skipped unless need_all."""
        self._fresh()
        w = (weights or self.weights).channel_weights()
        out: dict[str, np.ndarray] = {}
        if need_all or w.get("bm25"):
            out["bm25"] = self._bm25.scores(query, tokenize(query))
        if need_all or w.get("char"):
            out["char"] = self._char.scores(query, char_ngrams(query, 1, 2))
        if need_all or w.get("tfidf"):
            out["tfidf"] = self._tfidf.scores(query)
        if w.get("dense"):
            out["dense"] = self._dense_scores(query)
        return out

    def _rank_pool(self, query: str, mask: np.ndarray, n: int, weights: FusionWeights | None = None,
                   need_all: bool = False):
        """(candidate rows best first, channels restricted to the pool, fused pool scores, pool rows)."""
        channels = self.channel_scores(query, weights, need_all=need_all)
        pool = np.flatnonzero(mask)
        pooled = {name: s[pool] for name, s in channels.items()}
        fused = fuse(pooled, weights or self.weights) if pooled else np.zeros(len(pool))
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
        feats = np.zeros((len(top), len(BASE_FEATURES)), np.float32)
        for a, p in enumerate(top):
            tok = self._tokens[int(self._row_ids[pool[p]])]
            feats[a] = (
                zs["bm25"][p], zs["char"][p], zs["tfidf"][p], zf[p], math.log1p(a),
                mx["bm25"][p], mx["char"][p],
                len(qb & tok.bigram_set) / max(len(qb), 1),
                len(qw & tok.word_set) / max(len(qw), 1),
                sum(1 for g in qb if g in tok.name) / max(len(qb), 1),
                math.log1p(tok.length), len(normalize(query)),
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
        from matching import text as _text

        key = (query, len(_text._jieba_words))  # words taught to jieba since change the tokens
        cached = self._last_query_terms
        if cached is not None and cached[0] == key:
            return cached[1]
        terms = tokenize(query)
        self._last_query_terms = (key, terms)
        return terms

    def _matched_terms(self, query: str, doc_id: int, terms: Sequence[str] | None = None) -> list[str]:
        tok = self._tokens[int(doc_id)]
        found: list[str] = []
        for term in (self._query_terms(query) if terms is None else terms):
            if term in tok.word_set and term not in found:
                found.append(term)
        longer = [t for t in found if len(t) > 1]
        # A single shared character explains little when word matches exist.
        found = longer or found
        # Drop a term contained in a longer matched term (jieba search mode yields both).
        found = [t for t in found if not any(t != o and t in o for o in found)]
        return found[:MAX_MATCHED_TERMS]

    # ---- scoring fixed query sets (e.g. every leaf link of a chain) ----------------------------
    def query_scores(self, queries: Sequence[str], doc_ids: Sequence[int]) -> np.ndarray:
        """Fused scores (len(queries), len(doc_ids)) with every channel standardised over the whole pool, so
        one document's scores compare across queries; NaN for documents not in the pool.

        The queries' term vectors, vectors and pool statistics are prepared once per query set and pool
        state (cached), so scoring a page of documents against a chain's links is one small product each."""
        self._fresh()
        queries = tuple(queries)
        rows = np.asarray([self._row_of.get(int(d), -1) for d in doc_ids], np.int64)
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
                sc = np.asarray((self._channel_matrix(name)[rows[known]] @ matrix).todense()).T
            total += weight * (np.asarray(sc, np.float64) - mean[:, None]) / (std[:, None] + _ZSCORE_EPS)
        out[:, known] = total
        return out

    def _channel_matrix(self, name: str):
        return {"bm25": self._bm25.matrix, "char": self._char.matrix, "tfidf": self._tfidf.matrix}[name]

    def _prepared(self, queries: tuple[str, ...]) -> dict:
        """Per channel: (weight, query matrix, pool mean, pool std) for a query set, cached per pool state."""
        w = self.weights.channel_weights()
        key = (queries, tuple(sorted(w.items())), self.weights.method)
        marker = (self._bm25.matrix, self._char.matrix, self._tfidf.matrix)
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
                pool = np.stack([self._dense_scores(None, v.reshape(1, -1)) for v in vectors]).astype(np.float64)
                channels[name] = (weight, vectors, pool.mean(axis=1), pool.std(axis=1))
                continue
            if name == "tfidf":
                qm = self._tfidf.transform(list(queries)).T.tocsc() if self._tfidf.vectorizer is not None else None
            elif name in ("bm25", "char"):
                channel = self._bm25 if name == "bm25" else self._char
                qm = _term_matrix(channel, [tokenize(q) if name == "bm25" else char_ngrams(q, 1, 2) for q in queries])
            else:
                continue  # extra channels are scored by their own code, not here
            if qm is None:
                continue
            pool = np.asarray((self._channel_matrix(name) @ qm).todense(), np.float64)  # (n, nq)
            channels[name] = (weight, qm, pool.mean(axis=0), pool.std(axis=0))
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
        mask = self._pool_mask(allowed_ids, excluded_ids)
        model = self._learned
        if model is not None and model.ranker is not None:
            n = max(RERANK_CANDIDATES, k)
            top, pooled, fused, pool = self._rank_pool(query, mask, n, need_all=True)
            doc_ids = self._row_ids[pool[top]]
            probs = model.score(query, doc_ids, self.base_features(query, top, pooled, fused, pool))
            order = np.lexsort((doc_ids, -probs))[:k]  # total order (score desc, id asc), as _best_first
            return [self._hit(query, pool[top[o]], float(probs[o]), pooled, top[o], learned=float(probs[o]))
                    for o in order]
        top, pooled, fused, pool = self._rank_pool(query, mask, k)
        return [self._hit(query, pool[p], float(fused[p]), pooled, p) for p in top]

    def _hit(self, query: str, row: int, score: float, pooled: dict[str, np.ndarray], p: int,
             learned: float | None = None, terms: Sequence[str] | None = None) -> Hit:
        doc_id = int(self._row_ids[row])
        channels = {name: float(s[p]) for name, s in pooled.items()}
        if learned is not None:
            channels["learned"] = learned
        return Hit(doc_id, score, channels, self._matched_terms(query, doc_id, terms))

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
        tok = self._tokens[int(doc_id)]
        w = weights.channel_weights()
        out: dict[str, np.ndarray] = {}
        if w.get("bm25"):
            out["bm25"] = self._bm25.scores("", tok.words)
        if w.get("char"):
            out["char"] = self._char.scores("", tok.chars)
        if w.get("tfidf"):
            m = self._tfidf.matrix
            out["tfidf"] = np.asarray((m @ m[self._row_of[int(doc_id)]].T).todense()).ravel().astype(np.float32)
        if w.get("dense"):
            out["dense"] = self._dense_scores(None, self._stored_vectors(np.asarray([doc_id])))
        return out

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
        terms = self._tokens[int(doc_id)].words
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
        present = [(j, self._row_of[int(d)]) for j, d in enumerate(doc_ids) if int(d) in self._row_of]
        if not len(arows) or not present:
            return out
        cols = np.asarray([r for _, r in present], np.int64)
        w = weights.channel_weights()
        channels: dict[str, np.ndarray] = {}
        if w.get("bm25"):
            channels["bm25"] = _pattern_scores(self._bm25.matrix, arows, cols)
        if w.get("char"):
            channels["char"] = _pattern_scores(self._char.matrix, arows, cols)
        if w.get("tfidf"):
            m = self._tfidf.matrix
            channels["tfidf"] = np.asarray((m[arows] @ m[cols].T).todense(), np.float32)
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
            terms = self._tokens[int(self._row_ids[row])].words
            out[j] = Hit(hit_id, float(fused[r, c]), {name: float(sc[r, c]) for name, sc in channels.items()},
                         self._matched_terms("", hit_id, terms))
        return out

    # ---- learning -------------------------------------------------------------------------
    def apply_learning(self, model) -> bool:
        """Use a matching.learning.LearnedModel for re-ranking when it was adopted; returns whether it is in use."""
        self._learned = model if (model is not None and model.adopted) else None
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
                "build_seconds": self._build_seconds}
        (folder / _ENGINE_FILE).write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> "MatchEngine":
        folder = Path(folder)
        meta = json.loads((folder / _ENGINE_FILE).read_text(encoding="utf-8"))
        embedder = None
        if meta.get("embedder"):
            from matching.embedders import load_embedder

            embedder = load_embedder(folder / "embedder")
        engine = cls(embedder, FusionWeights.from_dict(meta["weights"]), meta.get("exact_max", 200_000))
        with open(folder / "documents.jsonl", encoding="utf-8") as fh:
            for line in fh:
                row = json.loads(line)
                doc = Document(int(row["id"]), row["name"], row["text"], row.get("products", ""))
                engine._docs[doc.id] = doc
                engine._tokens[doc.id] = _doc_tokens(doc)
        engine._row_ids = np.fromiter(engine._docs.keys(), dtype=np.int64, count=len(engine._docs))
        engine._row_of = {int(d): r for r, d in enumerate(engine._row_ids)}
        engine._bm25 = BM25Channel.load(folder / "bm25_word")
        engine._char = BM25Channel.load(folder / "bm25_char")
        engine._tfidf = CharTfidfChannel.load(folder / "tfidf")
        if embedder is not None and (folder / "vectors.faiss").exists():
            from matching.vector_index import load_vector_index

            engine._vindex = load_vector_index(folder / "vectors.faiss")
        if (folder / "learned.pkl").exists():
            with open(folder / "learned.pkl", "rb") as fh:
                engine._learned = pickle.load(fh)
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
            "learned": None if self._learned is None else self._learned.summary(),
        }
