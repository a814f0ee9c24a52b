"""Per-candidate features of the learned re-ranker (matching.learning): one row of BASE_FEATURES per candidate.

Invariants: features are computed over the candidates' pool (the rows a search may return), from the same raw
channel scores the fused ranking used; coverage features are read from the candidates' channel rows (their
distinct words and character bigrams), never by tokenising their text again. matching.learning appends its
label-memory features after these, so the order of BASE_FEATURES is part of a saved model.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import numpy as np

from matching.engine.channels import LexicalChannels
from matching.engine.pool import Pool, indexed_text
from matching.fusion import zscore
from matching.text import char_ngrams, normalize, tokenize

RERANK_CANDIDATES = 200  # candidates re-ranked by a learned model (measured: recall@200 covers most gains)
BASE_FEATURES = (
    "z_bm25",
    "z_char",
    "z_tfidf",
    "z_fused",
    "log_rank",
    "rel_bm25",
    "rel_char",
    "cover_bigrams",
    "cover_words",
    "cover_name",
    "log_doc_len",
    "query_len",
    "z_dense",
    "dense",
)


class LearnedReranker(Protocol):
    """What the engine uses of a learned model (matching.learning.LearnedModel; that module imports this package)."""

    ranker: Any  # the fitted re-ranker, or None
    adopted: bool

    def score(self, query: str, doc_ids: np.ndarray, base: np.ndarray) -> np.ndarray: ...

    def summary(self) -> dict[str, Any]: ...


def _query_bigrams(query: str) -> set[str]:
    grams = set(char_ngrams(query, 2, 2))
    return grams or set(char_ngrams(query, 1, 1))


def base_features(
    pool: Pool,
    lexical: LexicalChannels,
    query: str,
    top: np.ndarray,
    pooled: dict[str, np.ndarray],
    fused: np.ndarray,
    pool_rows: np.ndarray,
) -> np.ndarray:
    """(len(top), len(BASE_FEATURES)) features; `top` indexes `pool_rows`, whose channel scores are `pooled` and
    fused scores `fused`."""
    qb = _query_bigrams(query)
    qw = set(tokenize(query))
    zs = {
        name: zscore(pooled[name]) if name in pooled else np.zeros(len(pool_rows))
        for name in ("bm25", "char", "tfidf", "dense")
    }
    dense = pooled.get("dense", np.zeros(len(pool_rows)))  # the embedder's cosine (0 without a dense channel)
    zf = zscore(fused)
    mx = {
        name: (pooled[name] / (pooled[name].max() + 1e-9)) if name in pooled else np.zeros(len(pool_rows))
        for name in ("bm25", "char")
    }
    char, bm25 = lexical.char, lexical.bm25
    bigram_ids = {char.vocab.ids[g] for g in qb if len(g) == 2 and g in char.vocab.ids}
    word_ids = {bm25.vocab.ids[t] for t in qw if t in bm25.vocab.ids}
    feats = np.zeros((len(top), len(BASE_FEATURES)), np.float32)
    for a, p in enumerate(top):
        row = int(pool_rows[p])
        doc = pool.docs[int(pool.row_ids[row])]
        name = normalize(doc.name)
        feats[a] = (
            zs["bm25"][p],
            zs["char"][p],
            zs["tfidf"][p],
            zf[p],
            math.log1p(a),
            mx["bm25"][p],
            mx["char"][p],
            len(bigram_ids.intersection(char.row_terms(row).tolist())) / max(len(qb), 1),
            len(word_ids.intersection(bm25.row_terms(row).tolist())) / max(len(qw), 1),
            sum(1 for g in qb if g in name) / max(len(qb), 1),
            math.log1p(len(indexed_text(doc))),
            len(normalize(query)),
            zs["dense"][p],
            dense[p],
        )
    return feats
