"""What the matching probes share: a firms/queries benchmark read, the product's engine built over it, the dense
channel's z-scores at the pool's weight, and nDCG@10 of a score matrix (queries × pool rows)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from bench.profile_evidence_probes import z
from matching.engine import MatchEngine
from matching.engine.pool import indexed_text
from matching.evaluation import build_engine, read_firms, read_queries
from matching.fusion import FusionWeights, pretrained_weights
from matching.lexical import BM25Channel
from matching.metrics import score_rankings


@dataclass
class Probe:
    texts: list[str]  # the queries
    engine: MatchEngine
    dense_weight: float  # the pool rule's dense weight
    zd: np.ndarray  # dense channel z-scores, queries × rows
    bm25: BM25Channel
    char: BM25Channel
    ndcg: Callable[[np.ndarray], float]  # nDCG@10 of a score matrix


def benchmark_parser(description: str) -> argparse.ArgumentParser:
    """The probes' arguments: --firms, --queries, --models-dir, --vector-cache."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--firms", type=Path, required=True)
    ap.add_argument("--queries", type=Path, required=True)
    ap.add_argument("--models-dir", type=Path, default=Path("instance/models"))
    ap.add_argument("--vector-cache", type=Path, default=Path("instance/embedding-cache"))
    return ap


def probe_from_args(description: str) -> Probe:
    """Parse the probes' arguments (`benchmark_parser`) and build the probe."""
    args = benchmark_parser(description).parse_args()
    firms, queries = read_firms(args.firms), read_queries(args.queries)
    texts, relevant = [q["query"] for q in queries], [q["relevant"] for q in queries]
    ext = np.asarray(firms.external_ids)

    def ndcg(fused: np.ndarray) -> float:
        top = np.argsort(-fused, axis=1, kind="stable")[:, :100]
        return round(score_rankings([list(ext[t]) for t in top], relevant)["ndcg@10"], 4)

    engine = build_engine(
        firms, "", models_dir=args.models_dir, onnx_cache=args.models_dir / "onnx-cache", vector_cache=args.vector_cache
    )
    d = pretrained_weights([doc.text for doc in firms.docs]).dense
    zd = z(np.stack([engine.channel_scores(q, FusionWeights(bm25=0, char=0, dense=1))["dense"] for q in texts]))
    # The two BM25 channels counted by segment whatever the pool's share (the engine counts whole profiles when its
    # share is 0), so that a probe may re-weigh them with any share; the same rows and weights as the engine's.
    share = engine.channels["bm25"].segment_share
    indexed = [indexed_text(doc) for doc in firms.docs]
    bm25, char = BM25Channel("word", segment_share=share), BM25Channel("char12", segment_share=share)
    for channel in (bm25, char):
        channel.build(indexed, workers=None)
    probe_query = texts[0]
    assert np.allclose(bm25.scores(probe_query), engine.channel_scores(probe_query, FusionWeights(char=0))["bm25"])
    return Probe(texts, engine, d, zd, bm25, char, ndcg)
