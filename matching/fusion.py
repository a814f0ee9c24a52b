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
    name: float = 0.0  # BM25 over the firm name's jieba words (the pool rule: pool_name_weight)
    method: str = "zscore"  # "zscore" or "rrf"
    extra: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FusionWeights":
        known = {k: v for k, v in (data or {}).items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def channel_weights(self) -> dict[str, float]:
        weights = {"bm25": self.bm25, "char": self.char, "tfidf": self.tfidf, "dense": self.dense, "name": self.name}
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


# The name channel's weight, by the same lengths (docs/matching.md, "The firm name as a channel"). In a long profile
# the name is a few characters among hundreds, so BM25's length normalisation drowns what it states (平安银行,
# 贵州茅台酒); on SW3 a name channel at 0.1 gained 0.006 nDCG@10 beside the dense channel. In short profiles (ICKG)
# the name is already a large part of every title's segment and more of it costs 0.003–0.03.
NAME_WEIGHT_SHORT = 0.0
NAME_WEIGHT_LONG = 0.1


def by_profile_length(profile_chars: float, short: float, long: float) -> float:
    """`short` up to SHORT_PROFILE_CHARS, `long` from LONG_PROFILE_CHARS, following the logarithm of the length
    between (the pool rules' one interpolation)."""
    if profile_chars <= SHORT_PROFILE_CHARS:
        return short
    if profile_chars >= LONG_PROFILE_CHARS:
        return long
    t = np.log(profile_chars / SHORT_PROFILE_CHARS) / np.log(LONG_PROFILE_CHARS / SHORT_PROFILE_CHARS)
    return round(float(short + t * (long - short)), 3)


def pretrained_dense_weight(profile_chars: float) -> float:
    """The dense channel's fusion weight for a pool whose median profile has `profile_chars` characters."""
    return by_profile_length(profile_chars, PRETRAINED_DENSE_SHORT, PRETRAINED_DENSE_LONG)


def pool_name_weight(profile_chars: float) -> float:
    """The name channel's fusion weight for a pool whose median profile has `profile_chars` characters."""
    return by_profile_length(profile_chars, NAME_WEIGHT_SHORT, NAME_WEIGHT_LONG)


def median_profile_chars(texts: Sequence[str]) -> float:
    """The median length in characters of a pool's profile texts (what the pool rules read)."""
    return float(np.median([len(t) for t in texts])) if len(texts) else 0.0


def pool_weights(texts: Sequence[str], pretrained: bool) -> "FusionWeights":
    """Default fusion weights for a pool of profile texts: the name channel's by the pool rule, and the dense
    channel's by the pool rule with a pretrained embedder (0 without one: the built-in LSA lowered nDCG@10)."""
    chars = median_profile_chars(texts)
    return FusionWeights(dense=pretrained_dense_weight(chars) if pretrained else 0.0, name=pool_name_weight(chars))


def pretrained_weights(texts: Sequence[str]) -> "FusionWeights":
    """Default fusion weights for a pool of profile texts searched with a pretrained embedder."""
    return pool_weights(texts, pretrained=True)


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
