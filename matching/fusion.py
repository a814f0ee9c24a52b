"""Score fusion of the matching channels.

Method (default): weighted z-score fusion. Each channel's scores over the searchable pool are
standardised, z = (s - mean) / std, and the fused score is Σ_c w_c · z_c. z-scores put BM25 (unbounded)
and cosine similarities (0..1) on one scale and reward documents that stand out from the pool in
several channels. Reciprocal-rank fusion (Σ_c w_c / (k + rank_c)) is available for comparison; on the
ICKG dev benchmark it scored below z-score fusion (see docs/matching.md).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

RRF_K = 60  # the usual reciprocal-rank-fusion constant
_EPS = 1e-9


@dataclass
class FusionWeights:
    """Per-channel weights of the fused score (a weight of 0 switches the channel off)."""

    bm25: float = 0.5      # BM25 over jieba search-mode word tokens
    char: float = 0.5      # BM25 over character 1–2-grams
    tfidf: float = 0.0     # char 1–3-gram TF-IDF cosine (kept as a learning feature; no gain when fused)
    dense: float = 0.0     # embedder cosine; the built-in LSA embedder lowered nDCG when fused, so off by default
    method: str = "zscore"  # "zscore" or "rrf"
    extra: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "FusionWeights":
        known = {k: v for k, v in (data or {}).items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def channel_weights(self) -> dict[str, float]:
        weights = {"bm25": self.bm25, "char": self.char, "tfidf": self.tfidf, "dense": self.dense}
        weights.update(self.extra)
        return weights


# Dense weight to use with a pretrained sentence-transformers embedder (not measured here: no model
# is bundled); callers opt in with FusionWeights(dense=PRETRAINED_DENSE_WEIGHT).
PRETRAINED_DENSE_WEIGHT = 0.3


def zscore(scores: np.ndarray) -> np.ndarray:
    """Standardise along the last axis; a constant row becomes zeros."""
    scores = np.asarray(scores, dtype=np.float64)
    mean = scores.mean(axis=-1, keepdims=True)
    std = scores.std(axis=-1, keepdims=True)
    return (scores - mean) / (std + _EPS)


def ranks(scores: np.ndarray) -> np.ndarray:
    """0-based rank of each entry along the last axis (0 = highest score)."""
    order = np.argsort(-np.asarray(scores), axis=-1, kind="stable")
    out = np.empty_like(order)
    np.put_along_axis(out, order, np.arange(order.shape[-1]), axis=-1)
    return out


def fuse(channels: dict[str, np.ndarray], weights: FusionWeights) -> np.ndarray:
    """Fused score for every pool entry from per-channel score arrays of equal length."""
    w = weights.channel_weights()
    used = [(name, s) for name, s in channels.items() if w.get(name, 0.0) and len(s)]
    if not channels:
        return np.zeros(0)
    n = len(next(iter(channels.values())))
    total = np.zeros(n, dtype=np.float64)
    for name, s in used:
        if weights.method == "rrf":
            total += w[name] / (RRF_K + ranks(s) + 1)
        else:
            total += w[name] * zscore(s)
    return total
