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

from matching.fusion import FusionWeights, fuse, zscore
from matching.lexical import BM25Channel, CharTfidfChannel
from matching.text import char_ngrams, normalize, tokenize

RERANK_CANDIDATES = 200     # candidates re-ranked by a learned model (measured: recall@200 covers most gains)
DENSE_CANDIDATES = 1000     # dense hits fetched per query; the rest of the pool gets the lowest fetched score
SIMILAR_DENSE_WEIGHT = 0.3  # look-alike search leans on the embedder when one is present
MAX_MATCHED_TERMS = 8
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
        top = np.argpartition(-fused, take - 1)[:take] if take < len(pool) else np.arange(len(pool))
        top = top[np.argsort(-fused[top], kind="stable")]
        return top, pooled, fused, pool

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

    def _matched_terms(self, query: str, doc_id: int) -> list[str]:
        tok = self._tokens[int(doc_id)]
        found: list[str] = []
        for term in self._query_terms(query):
            if term in tok.word_set and term not in found:
                found.append(term)
        longer = [t for t in found if len(t) > 1]
        # A single shared character explains little when word matches exist.
        found = longer or found
        # Drop a term contained in a longer matched term (jieba search mode yields both).
        found = [t for t in found if not any(t != o and t in o for o in found)]
        return found[:MAX_MATCHED_TERMS]

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
            order = np.argsort(-probs, kind="stable")[:k]
            return [self._hit(query, pool[top[o]], float(probs[o]), pooled, top[o], learned=float(probs[o]))
                    for o in order]
        top, pooled, fused, pool = self._rank_pool(query, mask, k)
        return [self._hit(query, pool[p], float(fused[p]), pooled, p) for p in top]

    def _hit(self, query: str, row: int, score: float, pooled: dict[str, np.ndarray], p: int,
             learned: float | None = None) -> Hit:
        doc_id = int(self._row_ids[row])
        channels = {name: float(s[p]) for name, s in pooled.items()}
        if learned is not None:
            channels["learned"] = learned
        return Hit(doc_id, score, channels, self._matched_terms(query, doc_id))

    def similar(self, doc_id: int, k: int = 10, allowed_ids=None, excluded_ids=None) -> list[Hit]:
        """Look-alike firms of a document: its own profile used as the query (the document itself excluded)."""
        self._fresh()
        doc = self._docs.get(int(doc_id))
        if doc is None:
            return []
        excluded = set(int(i) for i in (excluded_ids or ())) | {int(doc_id)}
        weights = FusionWeights(**{**self.weights.as_dict(), "method": self.weights.method})
        if self.embedder is not None and self._vindex is not None:
            weights.dense = max(weights.dense, SIMILAR_DENSE_WEIGHT)
        mask = self._pool_mask(allowed_ids, excluded)
        top, pooled, fused, pool = self._rank_pool(doc.text, mask, k, weights)
        return [self._hit(doc.text, pool[p], float(fused[p]), pooled, p) for p in top]

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
