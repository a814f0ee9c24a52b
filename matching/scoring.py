"""The 0–100 match score users see, from an engine's fused score.

A fused score is Σ_c w_c·z_c, the weighted z-scores of the channels over the whole pool (matching.fusion). Divided
by the sum of the weights of the channels in use it is an average z-score: how many standard deviations a firm
stands out from every firm of the pool for this query. The match score maps it through a logistic:
score = 100 / (1 + exp(−(z − MATCH_SCORE_MID) / MATCH_SCORE_SCALE)), rounded. The statistics do not depend on
filters or pages, so a firm's score for a link is the same on the candidates page, the firm's page, in the supplier
finder and in the API. It ranks like the fused score; it is not a probability: on the dev benchmarks (docs/
matching.md) candidates scored 50–80 were relevant in 73 % of cases on registered business scopes (SW3) and 19 % on
patent-title profiles (ICKG).
"""

from __future__ import annotations

import math

from matching.fusion import FusionWeights

MATCH_SCORE_MID = 6.0  # average z-score that maps to 50
MATCH_SCORE_SCALE = 1.5  # z-score units per logistic unit (z 3 → 12, z 9 → 88, z 12 → 98)


def weight_total(weights: FusionWeights, dense_active: bool) -> float:
    """Sum of the weights of the channels a search uses (the dense weight only when vectors are in use)."""
    w = weights.channel_weights()
    return sum(v for name, v in w.items() if v > 0 and (name != "dense" or dense_active)) or 1.0


def match_score(fused: float, weights: FusionWeights, dense_active: bool) -> int:
    """0–100 match score of a fused z-score sum (see the module docstring)."""
    if fused is None or not math.isfinite(fused):
        return 0
    z = fused / weight_total(weights, dense_active)
    return int(round(100.0 / (1.0 + math.exp(-(z - MATCH_SCORE_MID) / MATCH_SCORE_SCALE))))
