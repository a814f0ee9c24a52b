"""MatchEngine: hybrid retrieval of enterprises for chain-link queries (lexical + optional dense + learned re-ranking).

Channels (see matching.fusion for how they are combined):
- "bm25":  BM25 over jieba search-mode word tokens;
- "char":  BM25 over character 1–2-grams;
- "tfidf": cosine of character 1–3-gram TF-IDF;
- "dense": inner product of embedder vectors (vector index from matching.vectors).
When a learned model is applied (matching.learning), the top candidates of the fused ranking are
re-ranked by a classifier over per-channel features and label-memory features.

The facade is matching.engine.facade.MatchEngine; the modules beside it hold the parts (pool, channels, dense,
ranking, explanation, features, lookalikes, query_sets, persistence). The constants below are re-exported for
callers; tests that change one change it in the module that reads it (e.g. matching.engine.channels.STATS_SAMPLE).
"""

from matching.engine.channels import LEXICAL_CHANNELS, STATS_SAMPLE
from matching.engine.dense import DENSE_CANDIDATES
from matching.engine.explanation import Hit
from matching.engine.facade import MatchEngine
from matching.engine.features import BASE_FEATURES, RERANK_CANDIDATES
from matching.engine.persistence import FORMAT_VERSION
from matching.engine.pool import Document

__all__ = [
    "BASE_FEATURES",
    "DENSE_CANDIDATES",
    "FORMAT_VERSION",
    "LEXICAL_CHANNELS",
    "RERANK_CANDIDATES",
    "STATS_SAMPLE",
    "Document",
    "Hit",
    "MatchEngine",
]
