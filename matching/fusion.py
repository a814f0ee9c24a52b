"""Score fusion of the matching channels.

Method (default): weighted z-score fusion. Each channel's scores over the searchable pool are
standardised, z = (s - mean) / std, and the fused score is Σ_c w_c · z_c. z-scores put BM25 (unbounded)
and cosine similarities (0..1) on one scale and reward documents that stand out from the pool in
several channels. Reciprocal-rank fusion (Σ_c w_c / (k + rank_c)) is available for comparison; on the
ICKG dev benchmark it scored below z-score fusion (see docs/matching.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

RRF_K = 60  # the usual reciprocal-rank-fusion constant
_EPS = 1e-9


@dataclass
class FusionWeights:
    """Per-channel weights of the fused score (a weight of 0 switches the channel off)."""

    bm25: float = 0.5  # BM25 over jieba search-mode word tokens
    char: float = 0.5  # BM25 over character 1–2-grams
    tfidf: float = 0.0  # char 1–3-gram TF-IDF cosine (kept as a learning feature; no gain when fused)
    dense: float = 0.0  # embedder cosine; the built-in LSA embedder lowered nDCG when fused, so off by default
    method: str = "zscore"  # "zscore" or "rrf"
    extra: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FusionWeights":
        known = {k: v for k, v in (data or {}).items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def channel_weights(self) -> dict[str, float]:
        weights = {"bm25": self.bm25, "char": self.char, "tfidf": self.tfidf, "dense": self.dense}
        weights.update(self.extra)
        return weights


# Dense weight of a pretrained embedder, by how much the pool's profiles say (their median length in characters).
# Measured with multilingual-e5-small on the two dev benchmarks (docs/matching.md, "Fusion with the embedder"): on
# thin profiles (ICKG, patent titles, median 31 characters) lexical matches are precise and the best dense weight is
# 0.5–1 (4 lowers nDCG@10 by 0.011); on registered business scopes (SW3, median 208 characters) generic items dilute
# word matches and the best is 4–8 (0.75 leaves 0.046 nDCG@10 unused). Between the two lengths the weight follows
# the logarithm of the length.
PRETRAINED_DENSE_SHORT = 0.75
PRETRAINED_DENSE_LONG = 4.0
SHORT_PROFILE_CHARS = 40
LONG_PROFILE_CHARS = 160


def pretrained_dense_weight(profile_chars: float) -> float:
    """The dense channel's fusion weight for a pool whose median profile has `profile_chars` characters."""
    if profile_chars <= SHORT_PROFILE_CHARS:
        return PRETRAINED_DENSE_SHORT
    if profile_chars >= LONG_PROFILE_CHARS:
        return PRETRAINED_DENSE_LONG
    t = np.log(profile_chars / SHORT_PROFILE_CHARS) / np.log(LONG_PROFILE_CHARS / SHORT_PROFILE_CHARS)
    return round(float(PRETRAINED_DENSE_SHORT + t * (PRETRAINED_DENSE_LONG - PRETRAINED_DENSE_SHORT)), 3)


def median_profile_chars(texts: Sequence[str]) -> float:
    """The median length in characters of a pool's profile texts (what the pool rules read)."""
    return float(np.median([len(t) for t in texts])) if len(texts) else 0.0


def pretrained_weights(texts: Sequence[str]) -> "FusionWeights":
    """Default fusion weights for a pool of profile texts searched with a pretrained embedder."""
    return FusionWeights(dense=pretrained_dense_weight(median_profile_chars(texts)))


def zscore(scores: np.ndarray) -> np.ndarray:
    """Standardise along the last axis; a constant row becomes zeros."""
    scores = np.asarray(scores, dtype=np.float64)
    mean = scores.mean(axis=-1, keepdims=True)
    std = scores.std(axis=-1, keepdims=True)
    z: np.ndarray = (scores - mean) / (std + _EPS)
    return z


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
