"""Ranking metrics with binary relevance: nDCG@k, Recall@k, MAP@k (pure functions)."""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Sequence


def ndcg_at_k(ranked: Sequence[object], relevant: Collection[object], k: int = 10) -> float:
    """Binary nDCG@k: DCG of the ranking over the ideal DCG of min(|relevant|, k) hits at the top."""
    if not relevant:
        return 0.0
    rel = set(relevant)
    dcg = sum(1.0 / math.log2(i + 2) for i, doc in enumerate(ranked[:k]) if doc in rel)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(rel), k)))
    return dcg / ideal


def recall_at_k(ranked: Sequence[object], relevant: Collection[object], k: int = 50) -> float:
    """Share of the relevant items found in the top k."""
    if not relevant:
        return 0.0
    rel = set(relevant)
    return len(rel.intersection(ranked[:k])) / len(rel)


def average_precision_at_k(ranked: Sequence[object], relevant: Collection[object], k: int = 100) -> float:
    """AP@k: mean of precision at each relevant hit in the top k, over min(|relevant|, k)."""
    if not relevant:
        return 0.0
    rel = set(relevant)
    hits, total = 0, 0.0
    for i, doc in enumerate(ranked[:k]):
        if doc in rel:
            hits += 1
            total += hits / (i + 1)
    return total / min(len(rel), k)


def mean(values: Iterable[float]) -> float:
    values = list(values)
    return sum(values) / len(values) if values else 0.0


def score_rankings(rankings: Sequence[Sequence[object]], relevants: Sequence[Collection[object]]) -> dict[str, float]:
    """Mean nDCG@10, Recall@50 and MAP@100 over queries that have relevance labels."""
    pairs = [(r, rel) for r, rel in zip(rankings, relevants) if rel]
    return {
        "ndcg@10": mean(ndcg_at_k(r, rel, 10) for r, rel in pairs),
        "recall@50": mean(recall_at_k(r, rel, 50) for r, rel in pairs),
        "map@100": mean(average_precision_at_k(r, rel, 100) for r, rel in pairs),
        "queries": len(pairs),
    }
