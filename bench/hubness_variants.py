"""Hubness corrections compared over the full score matrix of a benchmark's labels (docs/matching.md, "Hubness").

Scores every label against every firm with the product's fusion (no correction), then ranks by: the plain fused
score; the product's correction (fused − HUB_WEIGHT × the mean of a firm's HUB_TOP_K best scores over the labels);
the inverted softmax in log form (fused − w × logsumexp_q(β × score) ÷ β, Smith et al. 2017); the product's correction
only for the firms in some label's top 10 (the activation set of dynamic inverted softmax, Bogolin et al. 2022); and
the top-k mean less the firm's mean over the labels. Prints nDCG@10 of each. Nothing here is in the product's ranking.

    CHAINMATCH_INSTANCE_PATH=/work/eval/instance .venv/bin/python bench/hubness_variants.py \\
        --firms ../shared/benchmarks/ickg/firms.csv --queries ../shared/benchmarks/ickg/dev_queries.jsonl \\
        --models-dir /work/eval/instance/models --vector-cache /work/eval/instance/embedding-cache
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ickg_query_types import per_query_ndcg  # noqa: E402
from bench.probe_harness import benchmark_parser  # noqa: E402
from matching.engine.hubness import HUB_TOP_K, HUB_WEIGHT  # noqa: E402
from matching.evaluation import build_engine, read_firms, read_queries  # noqa: E402

BETAS = (0.1, 0.3, 1.0)
WEIGHTS = (0.1, 0.25, 0.5)
ACTIVE_TOP = 10


def log_sum_exp(scores: np.ndarray, beta: float) -> np.ndarray:
    """Per firm (column): logsumexp over the labels of β × score, ÷ β (a soft maximum of its scores)."""
    peak = scores.max(axis=0)
    return peak + np.log(np.exp(beta * (scores - peak)).sum(axis=0)) / beta


def main() -> None:
    args = benchmark_parser(__doc__.splitlines()[0]).parse_args()
    firms, queries = read_firms(args.firms), read_queries(args.queries)
    texts, relevant = [q["query"] for q in queries], [set(q["relevant"]) for q in queries]
    ext = np.asarray(firms.external_ids)
    engine = build_engine(
        firms, "", models_dir=args.models_dir, onnx_cache=args.models_dir / "onnx-cache", vector_cache=args.vector_cache
    )
    ids = list(range(len(firms.docs)))
    scores = np.nan_to_num(np.asarray(engine.query_scores(texts, ids, hubness=False), np.float64), nan=0.0)

    def show(label: str, ranked: np.ndarray) -> None:
        print(f"{label:36s} nDCG@10 {per_query_ndcg(ranked, ext, relevant).mean():.4f}", flush=True)

    show("plain fused", scores)
    hubness = np.sort(scores, axis=0)[::-1][:HUB_TOP_K].mean(axis=0)
    show(f"product: top-{HUB_TOP_K} mean × {HUB_WEIGHT}", scores - HUB_WEIGHT * hubness)
    for beta in BETAS:
        soft_max = log_sum_exp(scores, beta)
        for w in WEIGHTS:
            show(f"inverted softmax β {beta} w {w}", scores - w * soft_max)
    top = np.argsort(-scores, axis=1)[:, :ACTIVE_TOP]
    active = np.zeros(scores.shape[1], bool)
    active[np.unique(top)] = True
    for w in (HUB_WEIGHT, 2 * HUB_WEIGHT):
        show(f"activation set only, w {w}", scores - w * hubness * active)
        show(f"top-{HUB_TOP_K} mean − mean, w {w}", scores - w * (hubness - scores.mean(axis=0)))


if __name__ == "__main__":
    main()
