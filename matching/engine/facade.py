"""MatchEngine: the one object the product and the benchmarks use; it holds the pool and delegates the work.

Parts (each module's docstring states its invariants): matching.engine.pool (documents, rows, pending changes),
.channels (lexical channels, per-query statistics), .dense (embedder + vector index), .ranking (search paths and
their total order), .explanation (Hits, matched terms), .features (re-ranker features), .lookalikes,
.query_sets and .persistence. Every public method that reads the pool first applies pending additions and
removals (`_fresh`), so one call works on one pool state; callers serialise updates against searches.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from matching import scoring
from matching.embedders.base import Embedder
from matching.engine.channels import LexicalChannels, pool_scores
from matching.engine.dense import DenseChannel, PreparedIndex, prepare
from matching.engine.explanation import Explainer, Hit
from matching.engine.features import RERANK_CANDIDATES, LearnedReranker, base_features
from matching.engine.hubness import HUB_RERANK_DEPTH, Hubness, compute_hubness
from matching.engine.lookalikes import LookAlikes
from matching.engine.persistence import Settings, load_learned, load_pool, read_settings, save_folder
from matching.engine.pool import Document, Pool
from matching.engine.query_sets import QuerySets
from matching.engine.ranking import Ranker
from matching.fusion import FusionWeights
from matching.lexical import BM25Channel, CharTfidfChannel
from matching.page_cache import prefetch, prefetch_budget
from matching.vectors import FieldFilter, VectorIndex

logger = logging.getLogger(__name__)


class MatchEngine:
    """Builds and searches one pool of enterprise profiles."""

    def __init__(
        self,
        embedder: Embedder | None = None,
        weights: FusionWeights | None = None,
        exact_max: int = 200_000,
        vector_backend: str = "faiss",
    ) -> None:
        self.weights = weights or FusionWeights()
        self.exact_max = exact_max
        self.vector_backend = vector_backend  # a name registered in matching.vectors (register_backend)
        self._pool = Pool()
        self._lexical = LexicalChannels(self._pool)
        self._dense = DenseChannel(self._pool, embedder)
        self._explainer = Explainer(self._pool, self._lexical)
        self._ranker = Ranker(self._pool, self._lexical, self._dense, self._explainer)
        self._lookalikes = LookAlikes(self._pool, self._lexical, self._dense, self._explainer, self._ranker)
        self._query_sets = QuerySets(self._pool, self._lexical, self._dense)
        self._learned: LearnedReranker | None = None
        self._hubness: Hubness | None = None  # over the query bank set by set_hubness (matching.engine.hubness)
        self._built_at = 0.0
        self._build_seconds = 0.0

    @property
    def embedder(self) -> Embedder | None:
        """The dense channel's embedder (None: no dense channel)."""
        return self._dense.embedder

    @embedder.setter
    def embedder(self, embedder: Embedder | None) -> None:
        self._dense.embedder = embedder

    @property
    def workers(self) -> int | None:
        """Analysis processes for large builds (None: one per core)."""
        return self._lexical.workers

    @workers.setter
    def workers(self, workers: int | None) -> None:
        self._lexical.workers = workers

    # ---- building -------------------------------------------------------------------------------
    def build(
        self,
        docs: Sequence[Document],
        progress: Callable[[int, int], None] | None = None,
        vectors: np.ndarray | None = None,
    ) -> None:
        """Index a fresh pool (replaces anything indexed before).

        `vectors` (one row per document, encoded by this engine's already fitted embedder) skip fitting and
        encoding, e.g. when they come from a resumable embedding store (matching.embedding_store)."""
        start = time.time()
        self._pool.reset(docs)
        self._lexical.index(list(self._pool.docs.values()), progress, tfidf=self._wants_tfidf())
        if self.embedder is not None:
            if vectors is None:
                self._dense.fit()
            self._dense.build(vectors, self.exact_max, self.vector_backend)
        self._built_at = time.time()
        self._build_seconds = self._built_at - start

    def attach_embedder(self, embedder: Embedder, vectors: np.ndarray | None = None) -> None:
        """Use another embedder for the dense channel without re-analysing the lexical channels. `vectors` (one row
        per pooled document in document order, from this embedder, already fitted) skip fitting and encoding."""
        self._fresh()
        self.embedder = embedder
        if vectors is None:
            self._dense.fit()
        self._dense.build(vectors, self.exact_max, self.vector_backend)

    def add(self, docs: Sequence[Document], vectors: np.ndarray | None = None) -> None:
        """Insert or update documents (same id replaces); lexical channels refresh on the next search. `vectors`
        (one row per document, from this engine's embedder) skip encoding them."""
        self._pool.add(docs)
        if self.embedder is not None and docs:
            if self._dense.index is None:
                self._dense.fit()
                self._fresh()
                self._dense.build(None, self.exact_max, self.vector_backend)
            else:
                self._dense.add(docs, vectors)

    def build_vector_index(self, embedder: Embedder, ids: np.ndarray, vectors: np.ndarray) -> PreparedIndex:
        """A vector index of `embedder`'s vectors of the documents `ids`, built without touching this engine (so
        searches go on meanwhile); `use_vector_index` then swaps it in."""
        docs = [self._pool.docs[int(i)] for i in ids]
        return prepare(embedder, ids, vectors, [d.text for d in docs], self.exact_max, self.vector_backend, docs)

    def use_vector_index(self, prepared: PreparedIndex) -> None:
        """Search the dense channel with a `build_vector_index` result, which must hold exactly the pooled
        documents."""
        self._fresh()
        self._dense.use(prepared)

    def remove(self, ids: Sequence[int]) -> None:
        """Remove documents by id (unknown ids are ignored)."""
        gone = self._pool.remove(ids)
        if gone and self._dense.index is not None:
            self._dense.delete(gone)

    def _wants_tfidf(self) -> bool:
        return bool(self.weights.tfidf or self._learned is not None)

    def _fresh(self) -> None:
        """Apply pending additions and removals to the lexical channels: only new documents are analysed."""
        self._lexical.refresh(tfidf=self._wants_tfidf())

    # ---- reading the pool -----------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._pool.docs)

    def __contains__(self, doc_id: int) -> bool:
        return int(doc_id) in self._pool.docs

    def document(self, doc_id: int) -> Document | None:
        return self._pool.docs.get(int(doc_id))

    @property
    def row_ids(self) -> np.ndarray:
        """Document id of each pool row, the row order of channel_scores (read-only)."""
        self._fresh()
        view = self._pool.row_ids.view()
        view.flags.writeable = False
        return view

    def row_of(self, doc_id: int) -> int:
        """Pool row of a pooled document (KeyError when it is not pooled)."""
        self._fresh()
        return self._pool.row_of[int(doc_id)]

    @property
    def channels(self) -> Mapping[str, BM25Channel | CharTfidfChannel]:
        """The lexical channels by name ("bm25", "char", "tfidf"), as they are (TF-IDF maybe not analysed)."""
        self._fresh()
        return MappingProxyType(self._lexical.by_name())

    @property
    def vector_index(self) -> VectorIndex | None:
        """The dense channel's vector index (None without an embedder or before vectors are built)."""
        return self._dense.index

    # ---- searching ------------------------------------------------------------------------------
    def channel_scores(
        self, query: str, weights: FusionWeights | None = None, need_all: bool = False
    ) -> dict[str, np.ndarray]:
        """Raw per-channel scores of the whole pool (row order); channels with weight 0 are skipped unless need_all."""
        self._fresh()
        return pool_scores(self._lexical, self._dense, query, weights or self.weights, need_all)

    def search(
        self,
        query: str,
        k: int = 100,
        allowed_ids: Collection[int] | None = None,
        excluded_ids: Collection[int] | None = None,
        where: FieldFilter | None = None,
    ) -> list[Hit]:
        """The k best documents for a query text, best first, among `allowed_ids` (None: all) less `excluded_ids`
        and, given `where`, those whose Document.fields pass it (matching.engine.fields). A vector index that
        stores the fields (Milvus) applies `where` in its own candidate search; the ranking is the same either way."""
        self._fresh()
        if not self._pool.docs or k <= 0:
            return []
        hubness = None if self._learned is not None and self._learned.ranker is not None else self._hubness
        if hubness is None:  # an adopted re-ranker orders by its own probabilities
            return self._ranker.search(query, k, self.weights, self._learned, allowed_ids, excluded_ids, where)
        depth = max(k, HUB_RERANK_DEPTH)
        return hubness.rerank(
            self._ranker.search(query, depth, self.weights, None, allowed_ids, excluded_ids, where), k
        )

    def filters_fields(self, where: FieldFilter | None) -> bool:
        """Whether the vector index applies `where` itself (it stores every field `where` reads, as Milvus does),
        which also means the pooled documents were given those fields (a saved index from before fields were
        stored has none: callers then keep filtering by id sets)."""
        return self._dense.filters_fields(where)

    def rank_whole_pool(
        self,
        query: str,
        k: int,
        allowed_ids: Collection[int] | None = None,
        excluded_ids: Collection[int] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(document ids best first, fused scores) of the k best, scoring every pooled document: the reference
        ranking the pruned search must equal (no learned re-ranking)."""
        self._fresh()
        top, _, fused, pool_rows = self._ranker.rank_pool(
            query, self._pool.mask(allowed_ids, excluded_ids), k, self.weights
        )
        return self._pool.row_ids[pool_rows[top]], fused[top]

    def matched_terms(self, query: str, doc_id: int) -> list[str]:
        """The query words a pooled document contains, as its Hit shows them (empty when not pooled)."""
        self._fresh()
        return self._explainer.matched_terms(query, doc_id)

    def similar(
        self,
        doc_id: int,
        k: int = 10,
        allowed_ids: Collection[int] | None = None,
        excluded_ids: Collection[int] | None = None,
        where: FieldFilter | None = None,
    ) -> list[Hit]:
        """Look-alike firms of a document: its own profile used as the query (the document itself excluded);
        `where` restricts them by their fields as in `search`."""
        self._fresh()
        return self._lookalikes.similar(doc_id, k, self.weights, allowed_ids, excluded_ids, where)

    def best_look_alikes(self, doc_ids: Sequence[int], allowed_ids: Collection[int]) -> list[Hit | None]:
        """For each document, its single best look-alike among `allowed_ids` (itself excluded), scored as
        `similar(doc, k=1, allowed_ids)` scores it; None where nothing is allowed or the document is not pooled."""
        self._fresh()
        return self._lookalikes.best(doc_ids, allowed_ids, self.weights)

    def query_scores(self, queries: Sequence[str], doc_ids: Sequence[int], hubness: bool = True) -> np.ndarray:
        """Fused scores (len(queries), len(doc_ids)) with every channel standardised over the whole pool, so
        one document's scores compare across queries; NaN for documents not in the pool.

        The queries' term vectors, vectors and pool statistics are prepared once per query set and pool
        state (cached), so scoring a page of documents against a chain's links is one small product each."""
        self._fresh()
        scores = self._query_sets.scores(queries, doc_ids, self.weights)
        if hubness and self._hubness is not None:  # as searches score (hubness=False: the plain fused scores)
            scores = scores - self._hubness.penalty(doc_ids)[None, :]
        return scores

    # ---- hubness --------------------------------------------------------------------------------
    def compute_hubness(self, queries: Sequence[str], lock: Any = None) -> Hubness:
        """Every pooled document's hubness over a query bank (the links matched against), uncorrected scores;
        `lock` is held per chunk of documents. Install it with set_hubness."""
        self._fresh()
        ids = [int(i) for i in self._pool.row_ids]

        def scorer(bank: Sequence[str], chunk: np.ndarray) -> np.ndarray:
            self._fresh()
            return self._query_sets.scores(bank, chunk.tolist(), self.weights)

        return compute_hubness(scorer, queries, ids, lock)

    def set_hubness(self, hubness: Hubness | None) -> None:
        """Correct searches and query_scores by this hubness (None: no correction)."""
        self._hubness = hubness

    @property
    def hubness(self) -> Hubness | None:
        """The hubness searches and query_scores are corrected by (None: none)."""
        return self._hubness

    @property
    def hubness_key(self) -> str | None:
        """The fingerprint of the query bank the correction uses (None: no correction)."""
        return None if self._hubness is None else self._hubness.key

    # ---- learning -------------------------------------------------------------------------------
    def candidate_features(
        self,
        query: str,
        n: int = RERANK_CANDIDATES,
        allowed_ids: Collection[int] | None = None,
        excluded_ids: Collection[int] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(candidate doc ids best-first by fused score, their BASE_FEATURES matrix)."""
        self._fresh()
        mask = self._pool.mask(allowed_ids, excluded_ids)
        top, pooled, fused, pool_rows = self._ranker.rank_pool(query, mask, n, self.weights, need_all=True)
        return self._pool.row_ids[pool_rows[top]], self.base_features(query, top, pooled, fused, pool_rows)

    def base_features(
        self, query: str, top: np.ndarray, pooled: dict[str, np.ndarray], fused: np.ndarray, pool: np.ndarray
    ) -> np.ndarray:
        """Per-candidate features (BASE_FEATURES) for the learned re-ranker; `top` indexes the pool."""
        return base_features(self._pool, self._lexical, query, top, pooled, fused, pool)

    def apply_learning(self, model: LearnedReranker | None) -> bool:
        """Use a matching.learning.LearnedModel for re-ranking when it was adopted; returns whether it is in use."""
        self._learned = model if (model is not None and model.adopted) else None
        if self._learned is not None:
            self._fresh()
            self._lexical.ensure_tfidf()  # a re-ranker feature: analysed now, not inside the first search
        return self._learned is not None

    @property
    def learned(self) -> LearnedReranker | None:
        """The learned model in use (adopted), or None."""
        return self._learned

    # ---- scores users read -------------------------------------------------------------------------
    def match_score(self, fused: float) -> int:
        """0–100 match score of a fused score of this engine's searches (matching.scoring)."""
        return scoring.match_score(fused, self.weights, self._dense.active)

    def similarity_score(self, fused: float) -> int:
        """0–100 score of a look-alike's fused score (the look-alike weights: matching.engine.lookalikes)."""
        return scoring.match_score(fused, self._lookalikes.weights(self.weights), self._dense.active)

    # ---- persistence ----------------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        """Write the pool, lexical channels, vectors, embedder and learned model into `folder`."""
        self._fresh()
        settings = Settings(self.weights, self.exact_max, self.vector_backend, self._built_at, self._build_seconds)
        save_folder(folder, self._pool, self._lexical, self._dense, self._learned, settings)

    @classmethod
    def load(cls, folder: Path, mmap: bool = False) -> "MatchEngine":
        """Read a saved engine; nothing is tokenised again. With `mmap`, the lexical matrices stay in their files
        (read-only pages the OS shares between processes, e.g. several web workers)."""
        settings, embedder = read_settings(folder)
        engine = cls(embedder, settings.weights, settings.exact_max, settings.vector_backend)
        load_pool(folder, engine._pool, engine._lexical, engine._dense, mmap)
        learned = load_learned(folder)
        if learned is not None:
            engine.apply_learning(learned)
        engine._built_at, engine._build_seconds = settings.built_at, settings.build_seconds
        return engine

    def warm_up(self) -> dict[str, Any]:
        """Do now what the first searches after a load would otherwise pay for: read the memory-mapped files into
        the page cache (matching.page_cache) and code the field columns the vector index filters on. Returns what
        it did. Safe beside searches (`warm_up_in_background`).

        The vector rows come first, then the fields, then the lexical matrices: a filtered search scores scattered
        rows (a disk read each when cold) and codes its fields' columns on first use, while the posting lists it
        reads are contiguous runs."""
        started = time.perf_counter()
        index = self._dense.index
        budget = prefetch_budget()
        vector_files = index.mapped_files() if index is not None else []
        read = prefetch(vector_files, budget)
        fields = sorted(index.field_names()) if index is not None and index.stores_fields else []
        self._ranker.prepare_fields(fields)
        lexical_files = self._lexical.mapped_files()
        read += prefetch(lexical_files, budget - read)
        return {
            "files": vector_files + lexical_files,
            "bytes_read": read,
            "fields": fields,
            "seconds": time.perf_counter() - started,
        }

    def warm_up_in_background(self) -> threading.Thread:
        """`warm_up` on a daemon thread (started): a loaded engine serves searches meanwhile."""
        thread = threading.Thread(target=self._warm_up_logged, name="engine-warm-up", daemon=True)
        thread.start()
        return thread

    def _warm_up_logged(self) -> None:
        try:
            done = self.warm_up()
        except Exception:  # noqa: BLE001 - warming is an optimisation: searches work without it
            logger.exception("engine warm-up failed")
            return
        logger.info(
            "engine warmed up in %.1f s: %.1f MB of %d mapped files read, fields coded: %s",
            done["seconds"],
            done["bytes_read"] / 1e6,
            len(done["files"]),
            ", ".join(done["fields"]) or "none",
        )

    def info(self) -> dict[str, Any]:
        """Embedder, size, weights, build time, vector backend and learned-model summary, for status pages."""
        return {
            "embedder": getattr(self.embedder, "name", None),
            "dim": getattr(self.embedder, "dim", 0) if self.embedder is not None else 0,
            "count": len(self._pool.docs),
            "weights": self.weights.as_dict(),
            "built_at": self._built_at,
            "build_seconds": round(self._build_seconds, 3),
            "vector_backend": self.vector_backend,
            "learned": None if self._learned is None else self._learned.summary(),
        }
